"""Generate valid 5010 837P/837I files of any size, streaming, for the benchmark.

    python bench/gen837.py OUT --claims 100000 --kind P

Deterministic for a seed; fictional people and providers; NPIs with valid
check digits; SE/GE/IEA counts, HL parents, LX numbers and CLM02 balance all
right, so pyx12's validator accepts the output (tested in
tests/test_bench_generator.py). Written as it goes: memory stays flat.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path
from typing import BinaryIO

LAST = ["FAKENAME", "TESTPERSON", "SAMPLEY", "PLACEHOLD", "EXAMPLAR", "MOCKSON", "DUMMER"]
FIRST = ["ALEX", "SAM", "JORDAN", "TAYLOR", "CASEY", "RILEY", "MORGAN", "JAMIE"]
PROCS_P = [("99213", "85"), ("36415", "15"), ("99214", "120"), ("87070", "35"),
           ("96523", "60"), ("36591", "30"), ("90471", "25")]
PROCS_I = [("0300", "85025", "40"), ("0450", "99283", "310"), ("0260", "96523", "75"),
           ("0510", "99213", "120"), ("0250", "J1644", "12")]
MAX_CLAIMS_PER_SUBSCRIBER = 3  # pyx12: 2300 repeats at most 100 under one parent


def npi(stem: str) -> str:
    """Nine digits plus the Luhn check digit computed over "80840" + stem."""
    digits = "80840" + stem
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return stem + str((10 - total % 10) % 10)


def _isa(control: int) -> str:
    return ("ISA*00*          *00*          *ZZ*BENCHSUBMITTER *ZZ*BENCHRECEIVER  "
            f"*261120*0930*^*00501*{control:09d}*0*T*:~\n")


def _transaction(rng: random.Random, kind: str, st_control: int, claims: int,
                 first_claim: int) -> tuple[list[str], int]:
    """One ST..SE with ``claims`` claims; returns the segments and the line count."""
    version = "005010X222A1" if kind == "P" else "005010X223A2"
    segs = [f"ST*837*{st_control:04d}*{version}",
            f"BHT*0019*00*B{st_control:06d}*20261120*0930*CH",
            "NM1*41*2*BENCH BILLING SERVICE*****46*BENCHSUB",
            "PER*IC*BENCH CONTACT*TE*5555550100",
            "NM1*40*2*BENCH HEALTH PLAN*****46*BENCHPAYER"]
    hl = 0
    lines_total = 0
    claim_no = first_claim
    remaining = claims
    providers = 0
    while remaining:
        providers += 1
        hl += 1
        provider_hl = hl
        stem = f"{1 + rng.randrange(8)}{rng.randrange(10**8):08d}"
        segs += [f"HL*{hl}**20*1",
                 f"NM1*85*2*BENCH CLINIC {providers}*****XX*{npi(stem)}",
                 "N3*100 IMAGINARY AVENUE", "N4*ANYTOWN*PA*170009999", "REF*EI*990000001"]
        for _ in range(min(remaining, rng.randint(5, 40))):
            if not remaining:
                break
            dependent = rng.random() < 0.3
            hl += 1
            sub_hl = hl
            member = f"MBR{rng.randrange(10**9):09d}"
            last, first = rng.choice(LAST), rng.choice(FIRST)
            segs += [f"HL*{hl}*{provider_hl}*22*{1 if dependent else 0}",
                     f"SBR*P*{'' if dependent else '18'}*GRP0001******CI",
                     f"NM1*IL*1*{last}*{first}****MI*{member}"]
            if not dependent:
                segs += ["N3*1 PRETEND PLACE", "N4*ANYTOWN*PA*170009999",
                         f"DMG*D8*19{rng.randrange(40, 99)}0{rng.randrange(1, 10)}15*F"]
            segs.append("NM1*PR*2*BENCH HEALTH PLAN*****PI*99999")
            if dependent:
                hl += 1
                segs += [f"HL*{hl}*{sub_hl}*23*0", "PAT*19",
                         f"NM1*QC*1*{last}*{rng.choice(FIRST)}",
                         "N3*1 PRETEND PLACE", "N4*ANYTOWN*PA*170009999",
                         f"DMG*D8*20{rng.randrange(10, 20)}0{rng.randrange(1, 10)}10*M"]
            for _ in range(min(remaining, rng.randint(1, MAX_CLAIMS_PER_SUBSCRIBER))):
                claim_no += 1
                remaining -= 1
                day = f"202610{rng.randrange(1, 29):02d}"
                count = rng.randint(1, 4)
                lines_total += count
                segs += (_claim_p if kind == "P" else _claim_i)(rng, claim_no, day, count)
    segs.append(f"SE*{len(segs) + 1}*{st_control:04d}")
    return segs, lines_total


def _claim_p(rng: random.Random, claim_no: int, day: str, count: int) -> list[str]:
    picks = [rng.choice(PROCS_P) for _ in range(count)]
    total = sum(int(charge) for _, charge in picks)
    segs = [f"CLM*PCN{claim_no:08d}*{total}***11:B:1*Y*A*Y*Y"]
    if any(code == "96523" for code, _ in picks):
        segs.append("NTE*ADD*PORT-A-CATH FLUSHED WITH 10 ML NS AND 5 ML HEPARIN 100 U/ML")
    segs.append("HI*ABK:Z452*ABF:I10")
    for n, (code, charge) in enumerate(picks, 1):
        segs += [f"LX*{n}", f"SV1*HC:{code}*{charge}*UN*1***1:2", f"DTP*472*D8*{day}",
                 f"REF*6R*L{claim_no:08d}{n}"]
    return segs


def _claim_i(rng: random.Random, claim_no: int, day: str, count: int) -> list[str]:
    picks = [rng.choice(PROCS_I) for _ in range(count)]
    total = sum(int(charge) for _, _, charge in picks)
    segs = [f"CLM*ICN{claim_no:08d}*{total}***13:A:1**A*Y*Y",
            f"DTP*434*RD8*{day}-{day}", "CL1*3**01", "HI*ABK:Z452",
            f"NM1*71*1*MADEUP*MORGAN****XX*{npi('181726354')}"]
    for n, (rev, code, charge) in enumerate(picks, 1):
        segs += [f"LX*{n}", f"SV2*{rev}*HC:{code}*{charge}*UN*1", f"DTP*472*D8*{day}",
                 f"REF*6R*L{claim_no:08d}{n}"]
    return segs


def generate(out: str | Path | BinaryIO, claims: int, kind: str = "P", seed: int = 0,
             claims_per_transaction: int = 5000) -> dict:
    """Write one interchange with ``claims`` claims; return the counts written."""
    if kind not in ("P", "I"):
        raise ValueError("kind is P or I")
    rng = random.Random(seed)
    stream = open(out, "wb") if isinstance(out, (str, Path)) else out
    written = lines = transactions = 0
    try:
        version = "005010X222A1" if kind == "P" else "005010X223A2"
        head = _isa(1) + f"GS*HC*BENCHSUB*BENCHRCV*20261120*0930*1*X*{version}~\n"
        stream.write(head.encode())
        size = len(head)
        done = 0
        while done < claims:
            batch = min(claims_per_transaction, claims - done)
            transactions += 1
            segs, count = _transaction(rng, kind, transactions, batch, done)
            lines += count
            done += batch
            text = "".join(s + "~\n" for s in segs).encode()
            stream.write(text)
            size += len(text)
        tail = f"GE*{transactions}*1~\nIEA*1*000000001~\n".encode()
        stream.write(tail)
        size += len(tail)
        written = done
    finally:
        if stream is not out:
            stream.close()
    return {"claims": written, "lines": lines, "transactions": transactions, "bytes": size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--claims", type=int, default=10000)
    parser.add_argument("--kind", choices=["P", "I"], default="P")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(generate(args.out, args.claims, args.kind, args.seed))


if __name__ == "__main__":
    main()
