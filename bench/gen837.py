"""Generate valid, synthetic 5010 837 files for benchmarks and tests.

    python bench/gen837.py OUT --claims N --kind P|I [--seed S]

``generate()`` writes an 837P (005010X222A1) or 837I (005010X223A2)
interchange with exactly ``claims`` claims, streaming: segments go out in
~1 MB batches, so memory stays flat however big the file is. Output is
deterministic for a seed. Everything in it is fictional: made-up names and
addresses, random NPIs that carry a valid check digit (Luhn over
"80840" + the first nine digits), 2026 dates before 2026-11-28.

What a file contains (so the scrubber has something to chew on):
- several billing providers (2000A), each with a run of subscribers;
- about 65% of subscribers are the patient (SBR02=18, claims under 2000B),
  the rest carry one or two dependents (2000C, PAT, NM1*QC) with claims;
- 1 to 3 claims per patient (pyx12 allows 100 per 2000B/2000C parent) and
  ``lines_per_claim`` service lines per claim (pyx12 allows 50 per claim);
- CLM02 = sum of line charges; ICD-10-CM diagnoses as ABK/ABF (no dot);
  REF*6R line item control number on every line;
- about 8% of claims carry CPT 96523 (half of them as the sole service),
  most of those with NTE documentation, some with a PWK attachment;
- a few replacement claims (frequency 7) with REF*F8;
- 837P: CLM05 = POS:B:1, SV1, DTP*472 on every line, 2310B rendering provider
  on some claims; 837I: CLM05 = 13:A:1, DTP*434 RD8 statement period, CL1,
  HI ABK (+APR, ABF), 2310A attending provider, SV2 with revenue codes and
  DTP*472 on lines.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from datetime import date, timedelta
from typing import BinaryIO

IMPL = {"P": "005010X222A1", "I": "005010X223A2"}
MAX_LINES = 50  # pyx12: loop 2400 repeats at most 50 times per claim (837P map)
FLUSH_AT = 1 << 20

CREATED = date(2026, 11, 27)  # interchange/BHT date; every service date is on or before it
FIRST_SERVICE = date(2026, 1, 2)
LAST_SERVICE = date(2026, 11, 20)

FIRST_NAMES = (
    "AVA", "BEN", "CARA", "DEV", "ELLA", "FINN", "GIA", "HUGO", "IRIS", "JONAH",
    "KAI", "LENA", "MILO", "NORA", "OWEN", "PIA", "QUINN", "RUBY", "SETH", "TESS",
    "UMA", "VIC", "WREN", "XAN", "YARA", "ZEKE",
)
SURNAME_HEAD = (
    "BRAM", "CALD", "DORN", "ELVER", "FENN", "GARRO", "HOLLEN", "KESTR", "LANNO", "MORV",
    "NORRI", "PELLAN", "QUILL", "ROSTEN", "SALVE", "TARRIN", "VANTE", "WEXLO",
)
SURNAME_TAIL = ("BECK", "DALE", "FIELD", "GROVE", "HART", "MERE", "STONE", "THORPE", "WICK", "WOOD")
STREETS = ("MAPLE", "CEDAR", "ORCHARD", "HARBOR", "MILL", "RIDGE", "WILLOW", "LANTERN", "QUARRY",
           "SUMMIT")
STREET_KIND = ("ST", "AVE", "RD", "LN", "DR", "CT")
CITIES = (
    ("NORTHVALE", "OH", "43"), ("EASTBRIDGE", "PA", "17"), ("LAKEMONT", "NY", "14"),
    ("PINEHOLLOW", "TX", "75"), ("SILVERBAY", "CA", "93"), ("OAKHAVEN", "IL", "61"),
    ("RIVERGATE", "MI", "49"), ("STONEFORD", "NC", "27"),
)
ORG_WORDS = ("VALLEY", "SUMMIT", "HARBOR", "MERIDIAN", "CEDAR", "BLUE RIVER", "NORTHSTAR", "LAUREL")
ORG_KINDS_P = ("ONCOLOGY ASSOCIATES", "FAMILY MEDICINE", "INFUSION CENTER",
               "INTERNAL MEDICINE GROUP")
ORG_KINDS_I = ("REGIONAL HOSPITAL", "MEDICAL CENTER", "COMMUNITY HOSPITAL", "CANCER INSTITUTE")
TAXONOMY_P = ("207RH0003X", "207Q00000X", "207R00000X", "208D00000X")
TAXONOMY_I = ("282N00000X",)
TAXONOMY_PERSON = ("207RH0003X", "207R00000X", "207Q00000X")
PAYERS = (
    ("EXAMPLE HEALTH PLAN", "EXH01", "CI"),
    ("SAMPLE MUTUAL INSURANCE", "SMI22", "CI"),
    ("FICTIONAL BLUE PLAN", "FBP33", "BL"),
    ("DEMO HMO", "DHM44", "HM"),
    ("STATE MEDICAID TEST", "SMT55", "MC"),
)
PRINCIPAL_DX = ("Z452", "T827XXA", "T82868A", "C50919", "C3490", "C189", "E119", "I10", "J449",
                "N390", "Z5111")
OTHER_DX = ("D649", "E785", "Z95828", "Z9221", "K219", "R5383", "F329", "R0602", "M545", "Z23",
            "E119", "I10")
REASON_DX = ("R5383", "R0602", "R509", "R112")
# (code, modifier or "", min cents, max cents, revenue code for 837I)
PROCS = (
    ("99213", "", 9000, 14000, "0510"),
    ("99214", "", 14000, 21000, "0510"),
    ("96413", "", 25000, 42000, "0335"),
    ("96365", "", 15000, 26000, "0260"),
    ("96375", "", 5000, 9000, "0260"),
    ("36591", "", 3000, 6000, "0300"),
    ("85025", "", 1500, 4000, "0300"),
    ("80053", "", 2000, 5000, "0301"),
    ("36415", "", 1000, 2500, "0300"),
    ("71046", "", 8000, 16000, "0320"),
    ("J1642", "", 200, 1200, "0636"),
    ("J7050", "", 100, 900, "0636"),
)
PORT_CODE = "96523"
PORT_REVENUE = ("0260", "0510", "0761")
PORT_NOTES = (
    "IRRIGATION OF IMPLANTED PORT 10 ML NS 5 ML HEPARIN 100 UNITS/ML SOLE SERVICE",
    "PORT-A-CATH FLUSHED WITH 10 ML SALINE AND 5 ML HEPARIN 100 U/ML ONLY SERVICE",
    "HICKMAN CATHETER IRRIGATION 10ML NS; NO OTHER SERVICE THIS DATE",
    "IMPLANTED VENOUS ACCESS DEVICE FLUSH, SALINE 10 ML, HEPARIN LOCK 5 ML",
)
PWK_TYPES = ("09", "NN", "OZ", "M1")
POS = ("11", "11", "11", "22", "19")


def npi_check_digit(first9: str) -> int:
    """Luhn check digit over "80840" + the first nine digits of an NPI."""
    total = 0
    for i, ch in enumerate(reversed("80840" + first9)):
        d = ord(ch) - 48
        if i % 2 == 0:  # rightmost payload digit is doubled (check digit goes after it)
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return (10 - total % 10) % 10


def npi_is_valid(npi: str) -> bool:
    return len(npi) == 10 and npi.isdigit() and npi_check_digit(npi[:9]) == int(npi[9])


def make_npi(rng: random.Random) -> str:
    first9 = str(rng.choice((1, 2))) + "".join(str(rng.randrange(10)) for _ in range(8))
    return first9 + str(npi_check_digit(first9))


def money(cents: int) -> str:
    """X12 R value without trailing zeros: 12500 -> "125", 12550 -> "125.5"."""
    whole, frac = divmod(cents, 100)
    if frac == 0:
        return str(whole)
    if frac % 10 == 0:
        return f"{whole}.{frac // 10}"
    return f"{whole}.{frac:02d}"


class _Sink:
    """Batches segment text and writes it out as bytes."""

    def __init__(self, stream: BinaryIO, terminator: str):
        self.stream = stream
        self.term = terminator
        self.buf: list[str] = []
        self.size = 0
        self.bytes = 0
        self.count = 0  # segments since the last reset (for SE01)

    def seg(self, text: str) -> None:
        self.buf.append(text)
        self.count += 1
        self.size += len(text)
        if self.size >= FLUSH_AT:
            self.flush()

    def flush(self) -> None:
        if self.buf:
            data = (self.term.join(self.buf) + self.term).encode("ascii")
            self.stream.write(data)
            self.bytes += len(data)
            self.buf.clear()
            self.size = 0


class _Gen:
    def __init__(self, sink: _Sink, kind: str, seed: int, lines: tuple[int, int]):
        self.out = sink
        self.kind = kind
        self.seed = seed
        self.rng = random.Random(f"gen837:{kind}:{seed}")
        self.lines_range = lines
        rng = self.rng
        span = (LAST_SERVICE - FIRST_SERVICE).days
        self.days = [FIRST_SERVICE + timedelta(days=i) for i in range(span + 1)]
        self.day_str = [d.strftime("%Y%m%d") for d in self.days]
        org_kinds = ORG_KINDS_P if kind == "P" else ORG_KINDS_I
        self.providers = []
        for i in range(8):
            city, state, zp = CITIES[i % len(CITIES)]
            self.providers.append((
                f"{ORG_WORDS[i]} {org_kinds[i % len(org_kinds)]}",
                make_npi(rng),
                f"{rng.randint(100, 9899)} {rng.choice(STREETS)} {rng.choice(STREET_KIND)}",
                f"{city}*{state}*{zp}{rng.randint(100, 999)}{rng.randint(1000, 9999)}",
                f"{rng.randint(10, 99)}{rng.randint(1000000, 9999999)}",
                rng.choice(TAXONOMY_P if kind == "P" else TAXONOMY_I),
            ))
        self.clinicians = [
            (self.surname(), rng.choice(FIRST_NAMES), make_npi(rng), rng.choice(TAXONOMY_PERSON))
            for _ in range(40)
        ]
        self.claim_no = 0
        self.lines = 0
        self.n96523 = 0
        self.dependent_claims = 0

    # -- pieces -----------------------------------------------------------
    def surname(self) -> str:
        return self.rng.choice(SURNAME_HEAD) + self.rng.choice(SURNAME_TAIL)

    def address(self) -> None:
        rng = self.rng
        city, state, zp = rng.choice(CITIES)
        self.out.seg(f"N3*{rng.randint(1, 9899)} {rng.choice(STREETS)} {rng.choice(STREET_KIND)}")
        self.out.seg(f"N4*{city}*{state}*{zp}{rng.randint(100, 999)}{rng.randint(1000, 9999)}")

    def dmg(self, lo: int, hi: int) -> None:
        rng = self.rng
        born = f"{rng.randint(lo, hi)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
        self.out.seg(f"DMG*D8*{born}*{rng.choice('FM')}")

    # -- envelope ---------------------------------------------------------
    def isa(self, ctrl: int) -> str:
        isa = (
            f"ISA*00*{'':10}*00*{'':10}*ZZ*{'SYNTHSUBMIT':<15}*ZZ*{'EXAMPLECH':<15}*"
            f"{CREATED:%y%m%d}*1200*^*00501*{ctrl:09d}*0*T*:"
        )
        assert len(isa) + 1 == 106, len(isa)
        return isa

    def transaction(self, st_no: int, n_claims: int) -> None:
        out, rng, kind = self.out, self.rng, self.kind
        out.count = 0
        st = f"{st_no:04d}"
        out.seg(f"ST*837*{st}*{IMPL[kind]}")
        out.seg(f"BHT*0019*00*B{self.seed}X{st_no}*{CREATED:%Y%m%d}*1200*CH")
        out.seg("NM1*41*2*SYNTHETIC BILLING SERVICE*****46*SUB0001")
        out.seg("PER*IC*EDI DESK*TE*5555550100")
        out.seg("NM1*40*2*EXAMPLE CLEARINGHOUSE*****46*RCV0001")
        hl = 0
        remaining = n_claims
        while remaining:
            name, npi, street, cityline, ein, taxo = rng.choice(self.providers)
            hl += 1
            bp_hl = hl
            out.seg(f"HL*{bp_hl}**20*1")
            out.seg(f"PRV*BI*PXC*{taxo}")
            out.seg(f"NM1*85*2*{name}*****XX*{npi}")
            out.seg(f"N3*{street}")
            out.seg(f"N4*{cityline}")
            out.seg(f"REF*EI*{ein}")
            group = min(remaining, rng.randint(20, 300))
            remaining -= group
            while group:
                payer, payer_id, filing = rng.choice(PAYERS)
                member = f"M{rng.randint(10000000, 99999999)}"
                sub_last = self.surname()
                hl += 1
                sub_hl = hl
                if rng.random() < 0.65:  # subscriber is the patient
                    out.seg(f"HL*{sub_hl}*{bp_hl}*22*0")
                    out.seg(f"SBR*P*18*GRP{rng.randint(1000, 9999)}******{filing}")
                    out.seg(f"NM1*IL*1*{sub_last}*{rng.choice(FIRST_NAMES)}****MI*{member}")
                    self.address()
                    self.dmg(1940, 2005)
                    out.seg(f"NM1*PR*2*{payer}*****PI*{payer_id}")
                    n = min(group, rng.randint(1, 3))
                    group -= n
                    for _ in range(n):
                        self.claim()
                else:  # dependents: subscriber without claims, 2000C patients with claims
                    out.seg(f"HL*{sub_hl}*{bp_hl}*22*1")
                    out.seg(f"SBR*P**GRP{rng.randint(1000, 9999)}******{filing}")
                    # subscriber N3/N4/DMG: only when the subscriber is the patient
                    out.seg(f"NM1*IL*1*{sub_last}*{rng.choice(FIRST_NAMES)}****MI*{member}")
                    out.seg(f"NM1*PR*2*{payer}*****PI*{payer_id}")
                    for _ in range(rng.randint(1, 2)):
                        if not group:
                            break
                        hl += 1
                        out.seg(f"HL*{hl}*{sub_hl}*23*0")
                        rel = rng.choice(("19", "19", "01"))  # child, child, spouse
                        out.seg(f"PAT*{rel}")
                        out.seg(f"NM1*QC*1*{sub_last}*{rng.choice(FIRST_NAMES)}")
                        self.address()
                        if rel == "19":
                            self.dmg(2008, 2024)
                        else:
                            self.dmg(1950, 2000)
                        n = min(group, rng.randint(1, 3))
                        group -= n
                        self.dependent_claims += n
                        for _ in range(n):
                            self.claim()
        out.seg(f"SE*{out.count + 1}*{st}")

    # -- claim ------------------------------------------------------------
    def claim(self) -> None:
        out, rng, kind = self.out, self.rng, self.kind
        self.claim_no += 1
        pcn = f"{kind}{self.seed % 1000:03d}C{self.claim_no:09d}"
        lo, hi = self.lines_range
        port = rng.random() < 0.08
        sole = port and (hi < 2 or rng.random() < 0.5)
        n_lines = 1 if sole else rng.randint(lo, hi)
        if port and not sole and n_lines < 2:
            n_lines = 2  # 96523 billed with another service
        procs = [rng.choice(PROCS) for _ in range(n_lines)]
        port_at = -1
        if port:
            port_at = 0 if sole else rng.randrange(n_lines)
        charges = [rng.randint(p[2], p[3]) for p in procs]
        if port:
            charges[port_at] = rng.randint(6000, 12000)
        di = rng.randrange(len(self.days) - 4)
        freq = "7" if rng.random() < 0.02 else "1"
        total = money(sum(charges))
        if port:
            self.n96523 += 1
        note = rng.choice(PORT_NOTES) if port and rng.random() < 0.7 else None
        note_on_line = note is not None and kind == "P" and rng.random() < 0.6
        n_other = rng.randint(0, 3)
        principal = "Z452" if port and rng.random() < 0.7 else rng.choice(PRINCIPAL_DX)
        others = rng.sample(OTHER_DX, n_other)
        if kind == "P":
            out.seg(f"CLM*{pcn}*{total}***{rng.choice(POS)}:B:{freq}*Y*A*Y*Y")
            if port and rng.random() < 0.15:
                out.seg(f"PWK*{rng.choice(PWK_TYPES)}*FX***AC*ATT{self.claim_no:09d}")
            if freq == "7":
                out.seg(f"REF*F8*PAYERICN{rng.randint(10000000, 99999999)}")
            if note and not note_on_line:
                out.seg(f"NTE*ADD*{note}")
            out.seg("HI*ABK:" + principal + "".join(f"*ABF:{d}" for d in others))
            if rng.random() < 0.4:
                last, first, npi, taxo = rng.choice(self.clinicians)
                out.seg(f"NM1*82*1*{last}*{first}****XX*{npi}")
                out.seg(f"PRV*PE*PXC*{taxo}")
            n_dx = 1 + n_other
            day = self.day_str[di]
            for i in range(n_lines):
                code, _, _, _, _ = procs[i]
                if i == port_at:
                    code = PORT_CODE
                mod = ""
                if code in ("99213", "99214") and n_lines > 1:
                    mod = ":25"
                elif i == port_at and not sole and rng.random() < 0.3:
                    mod = ":59"
                ptr = "1" if n_dx == 1 else f"1:{rng.randint(2, n_dx)}"
                out.seg(f"LX*{i + 1}")
                out.seg(f"SV1*HC:{code}{mod}*{money(charges[i])}*UN*1***{ptr}")
                out.seg(f"DTP*472*D8*{day}")
                out.seg(f"REF*6R*{pcn}L{i + 1}")
                if note_on_line and i == port_at:
                    out.seg(f"NTE*ADD*{note}")
        else:
            end = di + rng.randint(0, 3)
            out.seg(f"CLM*{pcn}*{total}***13:A:{freq}**A*Y*Y")
            out.seg(f"DTP*434*RD8*{self.day_str[di]}-{self.day_str[end]}")
            out.seg("CL1*3*1*01")
            if port and rng.random() < 0.15:
                out.seg(f"PWK*{rng.choice(PWK_TYPES)}*FX***AC*ATT{self.claim_no:09d}")
            if freq == "7":
                out.seg(f"REF*F8*PAYERICN{rng.randint(10000000, 99999999)}")
            if note:
                out.seg(f"NTE*ADD*{note}")
            out.seg(f"HI*ABK:{principal}")
            if rng.random() < 0.3:
                out.seg(f"HI*APR:{rng.choice(REASON_DX)}")
            if others:
                out.seg("HI*" + "*".join(f"ABF:{d}" for d in others))
            last, first, npi, taxo = rng.choice(self.clinicians)
            out.seg(f"NM1*71*1*{last}*{first}****XX*{npi}")
            out.seg(f"PRV*AT*PXC*{taxo}")
            for i in range(n_lines):
                code, _, _, _, rev = procs[i]
                if i == port_at:
                    code, rev = PORT_CODE, rng.choice(PORT_REVENUE)
                out.seg(f"LX*{i + 1}")
                out.seg(f"SV2*{rev}*HC:{code}*{money(charges[i])}*UN*1")
                out.seg(f"DTP*472*D8*{self.day_str[rng.randint(di, end)]}")
                out.seg(f"REF*6R*{pcn}L{i + 1}")
        self.lines += n_lines


def generate(
    out,
    claims: int,
    kind: str = "P",
    seed: int = 0,
    claims_per_transaction: int = 5000,
    lines_per_claim: tuple[int, int] = (1, 4),
    *,
    newline: bool = True,
) -> dict:
    """Write an 837 with exactly ``claims`` claims to a path or binary stream.

    Returns counts: claims, lines, bytes, transactions (and segments,
    claims_96523, dependent_claims). ``newline`` puts "\\n" after each "~".
    """
    kind = kind.upper()
    if kind not in IMPL:
        raise ValueError("kind must be 'P' or 'I'")
    if claims < 1:
        raise ValueError("claims must be >= 1")
    lo, hi = lines_per_claim
    if not 1 <= lo <= hi <= MAX_LINES:
        raise ValueError(f"lines_per_claim must satisfy 1 <= min <= max <= {MAX_LINES}")
    if claims_per_transaction < 1:
        raise ValueError("claims_per_transaction must be >= 1")

    if hasattr(out, "write"):
        return _generate(out, claims, kind, seed, claims_per_transaction, (lo, hi), newline)
    with open(out, "wb") as fh:
        return _generate(fh, claims, kind, seed, claims_per_transaction, (lo, hi), newline)


def _generate(stream, claims, kind, seed, per_txn, lines, newline) -> dict:
    sink = _Sink(stream, "~\n" if newline else "~")
    gen = _Gen(sink, kind, seed, lines)
    ctrl = seed % 999_999_999 + 1
    group_ctrl = seed % 999_999 + 1
    sink.seg(gen.isa(ctrl))
    sink.seg(f"GS*HC*SYNTHSUBMIT*EXAMPLECH*{CREATED:%Y%m%d}*1200*{group_ctrl}*X*{IMPL[kind]}")
    segments = 2
    txns = 0
    left = claims
    while left:
        n = min(left, per_txn)
        left -= n
        txns += 1
        gen.transaction(txns, n)
        segments += sink.count
    sink.seg(f"GE*{txns}*{group_ctrl}")
    sink.seg(f"IEA*1*{ctrl:09d}")
    sink.flush()
    return {
        "kind": kind,
        "claims": gen.claim_no,
        "lines": gen.lines,
        "bytes": sink.bytes,
        "transactions": txns,
        "segments": segments + 2,
        "claims_96523": gen.n96523,
        "dependent_claims": gen.dependent_claims,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Generate a valid synthetic 5010 837P/837I file.")
    ap.add_argument("out", help="output path ('-' for stdout)")
    ap.add_argument("--claims", type=int, required=True)
    ap.add_argument("--kind", choices=("P", "I"), default="P")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--claims-per-transaction", type=int, default=5000)
    ap.add_argument("--lines", type=int, nargs=2, default=(1, 4), metavar=("MIN", "MAX"),
                    help="service lines per claim (max 50)")
    ap.add_argument("--no-newline", action="store_true",
                    help="no newline after the segment terminator")
    a = ap.parse_args(argv)
    target = sys.stdout.buffer if a.out == "-" else a.out
    counts = generate(target, a.claims, a.kind, a.seed, a.claims_per_transaction, tuple(a.lines),
                      newline=not a.no_newline)
    print(json.dumps(counts), file=sys.stderr if a.out == "-" else sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
