"""Small valid 837s and deterministic single-defect mutants of them.

``build_837(kind, seed, claims)`` writes a fictional, guide-valid 837P or 837I
with 1-3 claims (made-up names, NPIs with valid check digits). ``mutants(n,
seed)`` turns such files into ``n`` files with one defect each -- a dropped,
swapped or repeated segment, a blanked element, a bad code, a bad date, a long
value, a wrong count -- the same files for the same seed. SE01 is recounted
after every mutation except the count mutations, so the defect is the only
thing wrong. The differential test feeds them to our checker and to pyx12.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

FIRST = ("AVERY", "BLAIR", "CASEY", "DARCY", "EMERY", "FINLEY", "GRAY", "HOLLIS", "INDIGO", "JUNO")
LAST = ("QUILLFEATHER", "MOSSGROVE", "TINDERLY", "BRAMBLEWICK", "ASHCOMBE", "VELLUMORE")
CPT_P = ("99213", "99214", "36415", "85025", "80053", "93000", "96523", "90471")
REVENUE = (("0300", "85025"), ("0260", "96523"), ("0450", "99284"), ("0510", "G0463"),
           ("0250", ""), ("0730", "93005"))
ICD = ("E119", "I10", "Z00129", "J029", "R05", "M545", "K219")
ENVELOPE = ("ISA", "GS", "ST", "SE", "GE", "IEA")


def npi(rng: random.Random) -> str:
    """A 10-digit NPI with a valid Luhn check digit over "80840" + its first nine digits."""
    first9 = "1" + "".join(rng.choice("0123456789") for _ in range(8))
    digits = [int(d) for d in "80840" + first9]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 0:
            d *= 2
            d = d - 9 if d > 9 else d
        total += d
    return first9 + str((10 - total % 10) % 10)


def _date(rng: random.Random) -> str:
    return f"2026{rng.randint(1, 10):02d}{rng.randint(1, 28):02d}"


def build_837(kind: str, seed: int, claims: int = 1) -> bytes:
    """A valid 837P ("P") or 837I ("I") interchange with ``claims`` claims."""
    rng = random.Random(f"{kind}-{seed}-{claims}")
    impl = "005010X222A1" if kind == "P" else "005010X223A2"
    ctrl = 500000 + seed * 10 + claims
    segs = [
        f"ST*837*0001*{impl}",
        f"BHT*0019*00*MUT{seed:05d}*20261120*0930*CH",
        "NM1*41*2*MUTATION TEST SUBMITTER*****46*MUTSUB01",
        "PER*IC*PAT TESTWELL*TE*5555550188"
        + ("*EM*EDI@EXAMPLE.TEST" if rng.random() < 0.5 else ""),
        "NM1*40*2*IMAGINARY PAYER CO*****46*IMAGPAY1",
        "HL*1**20*1",
    ]
    if rng.random() < 0.5:
        segs.append("PRV*BI*PXC*207Q00000X")
    segs += [
        f"NM1*85*2*PRETEND CARE {'CLINIC' if kind == 'P' else 'HOSPITAL'}*****XX*{npi(rng)}",
        f"N3*{rng.randint(10, 999)} FICTION WAY",
        "N4*MADEUPVILLE*OH*430109999",
        f"REF*EI*99{rng.randint(1000000, 9999999)}",
    ]
    dependent = rng.random() < 0.4
    last, first = rng.choice(LAST), rng.choice(FIRST)
    segs += [
        f"HL*2*1*22*{1 if dependent else 0}",
        f"SBR*P*{'' if dependent else '18'}*GRP{rng.randint(100, 999)}******CI",
        f"NM1*IL*1*{last}*{first}****MI*MUT{rng.randint(10**7, 10**8 - 1)}",
    ]
    if not dependent:
        segs += ["N3*12 PRETEND LANE", "N4*MADEUPVILLE*OH*43010",
                 f"DMG*D8*19{rng.randint(40, 99)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}*"
                 f"{rng.choice('FMU')}"]
    segs.append("NM1*PR*2*IMAGINARY PAYER CO*****PI*IMAGPAY1")
    if dependent:
        segs += ["HL*3*2*23*0", "PAT*19", f"NM1*QC*1*{last}*{rng.choice(FIRST)}",
                 "N3*12 PRETEND LANE", "N4*MADEUPVILLE*OH*43010",
                 f"DMG*D8*20{rng.randint(10, 20)}0{rng.randint(1, 9)}1{rng.randint(0, 9)}*F"]
    for c in range(claims):
        segs += _claim(kind, rng, seed, c)
    segs.append(f"SE*{len(segs) + 1}*0001")
    head = (f"ISA*00*          *00*          *ZZ*MUTSENDER      *ZZ*MUTRECEIVER    *261120*0930*^*"
            f"00501*{ctrl:09d}*0*T*:")
    body = [head, f"GS*HC*MUTSENDER*MUTRECEIVER*20261120*0930*{ctrl}*X*{impl}"] + segs + \
        [f"GE*1*{ctrl}", f"IEA*1*{ctrl:09d}"]
    return ("~\n".join(body) + "~\n").encode("ascii")


def _claim(kind: str, rng: random.Random, seed: int, c: int) -> list[str]:
    lines = rng.randint(1, 3)
    charges = [rng.randint(20, 400) for _ in range(lines)]
    total = sum(charges)
    cid = f"M{seed:04d}C{c}"
    day = _date(rng)
    out: list[str] = []
    if kind == "P":
        out.append(f"CLM*{cid}*{total}***11:B:1*Y*A*Y*Y")
        if rng.random() < 0.3:
            out.append(f"DTP*431*D8*{day}")
        if rng.random() < 0.3:
            out.append(f"REF*G1*PA{rng.randint(1000, 9999)}")
        if rng.random() < 0.3:
            out.append("NTE*ADD*FICTIONAL NOTE FOR TESTING")
        principal = rng.choice(ICD)  # drawn first, as before: the seeds give the same files
        other = "*ABF:" + rng.choice(ICD) if rng.random() < 0.5 else ""
        out.append("HI*ABK:" + principal + other)
        if rng.random() < 0.4:
            out += [f"NM1*82*1*{rng.choice(LAST)}*{rng.choice(FIRST)}****XX*{npi(rng)}",
                    "PRV*PE*PXC*207Q00000X"]
        for i, charge in enumerate(charges, 1):
            out += [f"LX*{i}", f"SV1*HC:{rng.choice(CPT_P)}*{charge}*UN*1***1", f"DTP*472*D8*{day}"]
            if rng.random() < 0.3:
                out.append(f"REF*6R*LINE{i:03d}")
    else:
        out += [f"CLM*{cid}*{total}***13:A:1**A*Y*Y", f"DTP*434*RD8*{day}-{day}", "CL1*3**01",
                "HI*ABK:" + rng.choice(ICD)]
        if rng.random() < 0.5:
            out.append("HI*ABF:" + rng.choice(ICD))
        out.append(f"NM1*71*1*{rng.choice(LAST)}*{rng.choice(FIRST)}****XX*{npi(rng)}")
        for i, charge in enumerate(charges, 1):
            rev, code = rng.choice(REVENUE)
            proc = f"*HC:{code}" if code else "*"
            out += [f"LX*{i}", f"SV2*{rev}{proc}*{charge}*UN*1", f"DTP*472*D8*{day}"]
    return out


# -- mutations ------------------------------------------------------------------------

@dataclass(frozen=True)
class Mutant:
    """One defective file: what was done, to which segment, and the bytes."""

    name: str
    kind: str  # the mutation, e.g. "drop-segment"
    target: str  # the segment (or element) mutated, e.g. "N4" or "DMG02"
    data: bytes
    envelope: bool  # the defect is in ISA/GS/ST/SE/GE/IEA elements (pyx12's blind spot)


def _split(data: bytes) -> tuple[list[list[str]], str, str, str]:
    text = data.decode("ascii")
    sep, comp, term = text[3], text[104], text[105]
    segs = [s.strip("\r\n") for s in text.split(term)]
    return [s.split(sep) for s in segs if s], sep, comp, term


def _join(segs: list[list[str]], sep: str, term: str) -> bytes:
    return ("".join(sep.join(s) + term + "\n" for s in segs)).encode("ascii")


def _recount(segs: list[list[str]]) -> None:
    start = None
    for i, s in enumerate(segs):
        if s[0] == "ST":
            start = i
        elif s[0] == "SE" and start is not None:
            s[1] = str(i - start + 1)


def _body(segs) -> list[int]:
    return [i for i, s in enumerate(segs) if s[0] not in ENVELOPE]


def mutate(data: bytes, rng: random.Random) -> tuple[str, str, bytes, bool]:
    """Apply one random defect; return (kind, target, bytes, touches an envelope element)."""
    segs, sep, comp, term = _split(data)
    body = _body(segs)
    kind = rng.choice(("drop-segment", "swap-segments", "repeat-segment", "blank-element",
                       "bad-code", "bad-date", "long-value", "wrong-count", "extra-element",
                       "bad-number", "unknown-segment", "bad-qualifier", "blank-element",
                       "drop-segment", "bad-code"))
    recount = True
    envelope = False
    target = ""
    if kind == "drop-segment":
        i = rng.choice(body)
        target = segs[i][0]
        del segs[i]
    elif kind == "swap-segments":
        i = rng.choice(body[:-1])
        j = i + 1 if segs[i + 1][0] not in ENVELOPE else i - 1
        target = f"{segs[i][0]}<->{segs[j][0]}"
        segs[i], segs[j] = segs[j], segs[i]
    elif kind == "repeat-segment":
        i = rng.choice(body)
        target = segs[i][0]
        segs.insert(i + 1, list(segs[i]))
    elif kind == "blank-element":
        i = rng.choice(body)
        seg = segs[i]
        filled = [k for k in range(1, len(seg)) if seg[k]]
        k = rng.choice(filled)
        target = f"{seg[0]}{k:02d}"
        seg[k] = ""
        while len(seg) > 1 and seg[-1] == "":
            seg.pop()
    elif kind in ("bad-code", "bad-qualifier"):
        candidates = [(i, k) for i in body for k in range(1, len(segs[i]))
                      if 1 <= len(segs[i][k]) <= 3 and segs[i][k].isalnum()
                      and not segs[i][k].isdigit()
                      and (kind == "bad-code" or k == 1)]
        i, k = rng.choice(candidates)
        target = f"{segs[i][0]}{k:02d}"
        segs[i][k] = rng.choice(("ZZQ", "Q9", "XX"))
    elif kind == "bad-date":
        candidates = [(i, k) for i in body for k in range(1, len(segs[i]))
                      if len(segs[i][k]) >= 8 and segs[i][k][:8].isdigit()
                      and segs[i][k][:2] in ("19", "20")]
        i, k = rng.choice(candidates)
        target = f"{segs[i][0]}{k:02d}"
        bad = rng.choice(("20261331", "20260230", "20260000", "2026011", "19000431"))
        segs[i][k] = bad + segs[i][k][8:]
    elif kind == "long-value":
        candidates = [(i, k) for i in body for k in range(1, len(segs[i]))
                      if segs[i][k] and comp not in segs[i][k]]
        i, k = rng.choice(candidates)
        target = f"{segs[i][0]}{k:02d}"
        segs[i][k] = segs[i][k] + "X" * rng.choice((20, 60, 90))
    elif kind == "extra-element":
        i = rng.choice(body)
        target = segs[i][0]
        segs[i] = segs[i] + [""] * rng.randint(0, 12) + ["EXTRA"]
    elif kind == "bad-number":
        candidates = [(i, k) for i in body for k in range(1, len(segs[i]))
                      if segs[i][k].replace(".", "").isdigit()
                      and segs[i][0] in ("CLM", "SV1", "SV2", "LX", "HL")]
        i, k = rng.choice(candidates)
        target = f"{segs[i][0]}{k:02d}"
        segs[i][k] = rng.choice(("12.3.4", "1O0", "-", "7" * 20))
    elif kind == "unknown-segment":
        i = rng.choice(body)
        target = "ZZZ"
        segs.insert(i, ["ZZZ", "1"])
    elif kind == "wrong-count":
        recount = False
        which = rng.choice(("SE01", "SE02", "GE01", "GE02", "IEA01", "HL01", "HL02", "LX01"))
        target = which
        _recount(segs)
        if which in ("HL01", "HL02", "LX01"):
            idx = [i for i, s in enumerate(segs) if s[0] == which[:2] and len(s) > int(which[2:])
                   and s[int(which[2:])]]
            i = rng.choice(idx)
            k = int(which[2:])
            segs[i][k] = str(int(segs[i][k]) + rng.choice((1, 2, 5)))
        else:
            envelope = True
            seg = next(s for s in segs if s[0] == which[:-2])
            k = int(which[-2:])
            seg[k] = str(int(seg[k]) + 1) if seg[k].isdigit() else seg[k] + "1"
    if recount:
        _recount(segs)
    return kind, target, _join(segs, sep, term), envelope


def base_files() -> list[tuple[str, bytes]]:
    """Our own small valid 837s: 837P and 837I, 1-3 claims, several seeds."""
    out = []
    for seed in range(6):
        for kind in ("P", "I"):
            claims = 1 + seed % 3
            out.append((f"{kind.lower()}-s{seed}-c{claims}", build_837(kind, seed, claims)))
    return out


def mutants(n: int, seed: int = 0) -> list[Mutant]:
    """``n`` single-defect files, the same ones for the same seed."""
    rng = random.Random(seed)
    bases = base_files()
    out = []
    for i in range(n):
        name, data = bases[i % len(bases)]
        kind, target, bad, envelope = mutate(data, rng)
        out.append(Mutant(f"{name}-m{i:03d}-{kind}-{target}", kind, target, bad, envelope))
    return out
