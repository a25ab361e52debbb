"""Build small X12 texts in tests: an ISA padded to its fixed width, any delimiters.

Test helper only. The people and providers are fictional; NPIs carry valid
check digits (see ``npi``).
"""

from __future__ import annotations

from collections.abc import Sequence


def luhn_npi_ok(npi: str) -> bool:
    """NPI check digit: Luhn over "80840" + the first nine digits."""
    if len(npi) != 10 or not npi.isdigit():
        return False
    digits = "80840" + npi[:9]
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return (10 - total % 10) % 10 == int(npi[9])


def npi(stem: str) -> str:
    """A valid NPI from nine digits (adds the check digit)."""
    for check in "0123456789":
        if luhn_npi_ok(stem + check):
            return stem + check
    raise AssertionError("unreachable")


def isa(control: str = "000000001", *, element: str = "*", component: str = ":",
        repetition: str = "^", terminator: str = "~", sender: str = "SENDERID",
        receiver: str = "RECEIVERID", version: str = "00501", usage: str = "T") -> str:
    """An ISA segment of exactly 106 characters (terminator included)."""
    fields = [
        "ISA", "00", " " * 10, "00", " " * 10, "ZZ", sender.ljust(15), "ZZ",
        receiver.ljust(15), "261101", "1200", repetition, version, control.rjust(9, "0"),
        "0", usage, component,
    ]
    text = element.join(fields) + terminator
    assert len(text) == 106, len(text)
    return text


def interchange(segments: list[str], control: str = "000000001", *, element: str = "*",
                component: str = ":", repetition: str = "^", terminator: str = "~",
                after: str = "\n", version: str = "00501") -> str:
    """ISA + the given body segments (written with '*' and ':') + IEA, re-delimited."""
    body = [s.replace("*", "\x00").replace(":", "\x01").replace("^", "\x02") for s in segments]
    body = [s.replace("\x00", element).replace("\x01", component).replace("\x02", repetition)
            for s in body]
    groups = sum(1 for s in segments if s.startswith("GS*"))
    out = isa(control, element=element, component=component, repetition=repetition,
              terminator=terminator, version=version) + after
    for seg in body:
        out += seg + terminator + after
    out += element.join(["IEA", str(groups), control.rjust(9, "0")]) + terminator + after
    return out


def claim_837p(claim_id: str = "PCN001", *, lines: list[tuple[str, str, str, str]] | None = None,
               billing_npi: str | None = None, member: str = "MBR123456",
               patient: tuple[str, str, str] = ("TESTER", "ALEX", "19800101"),
               notes: Sequence[str] = (), control: str = "0001") -> list[str]:
    """The body segments (GS..GE) of a one-claim 837P, counts right.

    ``lines`` are (procedure, charge, units, date CCYYMMDD).
    """
    lines = lines or [("99213", "100", "1", "20261102")]
    billing = billing_npi or npi("123456789")
    total = sum(float(c) for _, c, _, _ in lines)
    st = [
        f"ST*837*{control}*005010X222A1",
        "BHT*0019*00*BATCH1*20261103*1200*CH",
        "NM1*41*2*FICTIONAL BILLING SERVICE*****46*TESTSUB",
        "PER*IC*PAT PERSON*TE*5555550100",
        "NM1*40*2*FICTIONAL PAYER*****46*PAYER01",
        "HL*1**20*1",
        f"NM1*85*2*EXAMPLE CLINIC*****XX*{billing}",
        "N3*1 MAIN ST",
        "N4*SPRINGFIELD*IL*627010001",
        "REF*EI*123456789",
        "HL*2*1*22*0",
        "SBR*P*18*******CI",
        f"NM1*IL*1*{patient[0]}*{patient[1]}****MI*{member}",
        f"DMG*D8*{patient[2]}*F",
        "NM1*PR*2*FICTIONAL PAYER*****PI*PAYER01",
        f"CLM*{claim_id}*{total:g}***11:B:1*Y*A*Y*Y",
        *[f"NTE*ADD*{text}" for text in notes],
        "HI*ABK:Z452",
    ]
    for n, (proc, charge, units, day) in enumerate(lines, 1):
        st += [f"LX*{n}", f"SV1*HC:{proc}*{charge}*UN*{units}***1", f"DTP*472*D8*{day}"]
    st.append(f"SE*{len(st) + 1}*{control}")
    return ["GS*HC*SENDER*RECEIVER*20261103*1200*1*X*005010X222A1", *st, "GE*1*1"]
