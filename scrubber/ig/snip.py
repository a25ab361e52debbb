"""SNIP 3-5 checks the implementation-guide walk cannot make: balancing, identifiers, dates.

pyx12 (and so ``scrubber.ig.check``) validates structure and element syntax
(SNIP 1-2). A payer's front end also checks that the claim adds up (SNIP 3),
that related values agree within the guide's rules (SNIP 4: diagnosis
pointers, date ranges, the implementation reference) and that codes have the
form of their code sets (SNIP 5, form only: no code list ships here). Each
check is a rule in the house style, a generator of ``Hit``s over a
``ClaimContext``; nothing is registered on import. ``register()`` adds them to
the rule registry (the lead calls it from the registry's pack list).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Iterator

from scrubber.rules.context import ClaimContext
from scrubber.rules.registry import REJECT, Hit, Severity, rule

SNIP = "WEDI SNIP Type {}; {}"
_ICD10 = re.compile(r"[A-TV-Z][0-9][0-9AB][0-9A-Z]{0,4}")
_PROCEDURE = re.compile(r"[0-9]{4}[0-9FTU]|[A-V][0-9]{4}")
_REVENUE = re.compile(r"0[0-9]{3}")
_DIAGNOSIS_QUALIFIERS = frozenset(("ABK", "ABF", "ABJ", "APR"))


def npi_is_valid(npi: str) -> bool:
    """10 digits whose last is the Luhn check digit over "80840" + the first nine."""
    if len(npi) != 10 or not npi.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed("80840" + npi[:9])):
        d = int(ch)
        if i % 2 == 0:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return (10 - total % 10) % 10 == int(npi[9])


def claim_balance(ctx: ClaimContext) -> Iterator[Hit]:
    """The claim's total charge (CLM02) is the sum of its line charges (SV102 / SV203).

    Fails: CLM*A1*150 with SV1*HC:99213*100 and SV1*HC:36415*25
    Passes: CLM*A1*125 with SV1*HC:99213*100 and SV1*HC:36415*25
    """
    claim = ctx.claim
    charges = [line.charge for line in claim.lines]
    if claim.charge is None or not claim.lines or any(c is None for c in charges):
        return  # a non-number is the element check's to report
    total = sum(charges)
    if total != claim.charge:
        yield Hit(f"the claim total CLM02 {claim.charge_text} is not the sum of its "
                  f"{len(claim.lines)} line charges ({total})",
                  "Make CLM02 the sum of the service line charges, or correct the line "
                  "charges.", segment=claim.location, element="CLM02")


def npi_check_digit(ctx: ClaimContext) -> Iterator[Hit]:
    """Every NPI on the claim (billing, claim and line providers) has a valid check digit.

    Fails: NM1*85*2*CLINIC*****XX*1234567890
    Passes: NM1*85*2*CLINIC*****XX*1234567893
    """
    billing = ctx.record.billing_provider
    people = []
    if billing is not None and billing.npi:
        people.append(("billing provider", billing.npi, billing.location, None))
    for provider in ctx.claim.providers:
        if provider.npi:
            people.append((f"provider {provider.role}", provider.npi, provider.location, None))
    for line in ctx.claim.lines:
        for provider in line.providers:
            if provider.npi:
                people.append((f"line provider {provider.role}", provider.npi, provider.location,
                               line))
    for who, npi, location, line in people:
        if not npi_is_valid(npi):
            yield Hit(f"the {who} NPI {npi} fails its check digit (Luhn over 80840 and the "
                      "first nine digits)", "Correct the NPI: copy it from NPPES.",
                      line=line, segment=location, element="NM109")


def diagnosis_pointers(ctx: ClaimContext) -> Iterator[Hit]:
    """Each 837P line's diagnosis pointers (SV107) name a diagnosis of the claim's HI.

    Fails: HI*ABK:E119 and SV1*HC:99213*100*UN*1***2
    Passes: HI*ABK:E119*ABF:I10 and SV1*HC:99213*100*UN*1***2
    """
    if ctx.kind != "837P":
        return
    count = len(ctx.claim.diagnoses)
    for line in ctx.claim.lines:
        bad = [p for p in line.diagnosis_pointers if not 1 <= p <= count]
        if bad:
            yield Hit(f"line {line.number} points at diagnosis "
                      f"{', '.join(map(str, bad))}, but the claim lists {count}",
                      "Point SV107 at diagnoses listed in the claim's HI segment (1 is the "
                      "first).", line=line, element="SV107")


def _dates(ctx: ClaimContext):
    yield from ((value, None) for value in ctx.claim.dates)
    for line in ctx.claim.lines:
        yield from ((value, line) for value in line.dates)


def date_ranges(ctx: ClaimContext) -> Iterator[Hit]:
    """A date range (RD8) does not end before it starts.

    Fails: DTP*472*RD8*20261105-20261101
    Passes: DTP*472*RD8*20261101-20261105
    """
    for value, line in _dates(ctx):
        if value.format == "RD8" and value.start and value.end and value.end < value.start:
            yield Hit(f"DTP*{value.qualifier} range {value.text} ends before it starts",
                      "Put the earlier date first: CCYYMMDD-CCYYMMDD.", line=line,
                      segment=value.location, element="DTP03")


def future_dates(ctx: ClaimContext) -> Iterator[Hit]:
    """Services (DTP*472, statement DTP*434) are not after the day the 837 was created (BHT04).

    Fails: BHT04 20261120 and DTP*472*D8*20261125
    Passes: BHT04 20261120 and DTP*472*D8*20261118
    """
    created = ctx.record.transaction.created
    if created is None:
        return
    for value, line in _dates(ctx):
        if value.qualifier in ("472", "434") and value.end and value.end > created:
            yield Hit(f"DTP*{value.qualifier} {value.text} is after the file was created "
                      f"({created:%Y%m%d}): a claim cannot bill future services",
                      "Bill the service once it has been provided; correct the date if it is "
                      "a typing error.", line=line, segment=value.location, element="DTP03")


def implementation_reference(ctx: ClaimContext) -> Iterator[Hit]:
    """ST03 names the same implementation guide as GS08.

    Fails: GS08 005010X222A1 and ST03 005010X223A2
    Passes: GS08 005010X222A1 and ST03 005010X222A1
    """
    st03 = ctx.record.transaction.version
    gs08 = ctx.record.group.version
    if st03 and gs08 and st03 != gs08:
        yield Hit(f"ST03 {st03} differs from GS08 {gs08}", "Send ST03 equal to GS08.",
                  segment=ctx.record.transaction.location, element="ST03")


def code_forms(ctx: ClaimContext) -> Iterator[Hit]:
    """Codes have the form of their code set: ICD-10-CM diagnoses, CPT/HCPCS, revenue codes.

    Fails: HI*ABK:250.00 (ICD-9 with a dot), SV1*HC:9921*100
    Passes: HI*ABK:E119, SV1*HC:99213*100, SV2*0300*HC:85025
    """
    for dx in ctx.claim.diagnoses:
        if dx.qualifier in _DIAGNOSIS_QUALIFIERS and not _ICD10.fullmatch(dx.code):
            yield Hit(f"diagnosis {dx.code} ({dx.qualifier}) is not an ICD-10-CM code "
                      "(a letter, a digit, then up to five more, no dot)",
                      "Send the ICD-10-CM code without its dot.", segment=dx.location,
                      element="HI01-2")
    for line in ctx.claim.lines:
        if line.procedure_qualifier == "HC" and line.procedure and \
                not _PROCEDURE.fullmatch(line.procedure):
            yield Hit(f"line {line.number} procedure {line.procedure} is not a CPT or HCPCS "
                      "code (five digits, four digits and F/T/U, or a letter and four digits)",
                      "Correct the procedure code.", line=line,
                      element="SV101-2" if ctx.kind == "837P" else "SV202-2")
        if ctx.kind == "837I" and line.revenue_code and not _REVENUE.fullmatch(line.revenue_code):
            yield Hit(f"line {line.number} revenue code {line.revenue_code} is not four digits "
                      "starting with 0", "Correct the revenue code (SV201).", line=line,
                      element="SV201")


@dataclass(frozen=True, slots=True)
class SnipRule:
    """A SNIP check with what the registry needs to know about it."""

    id: str
    severity: Severity
    summary: str
    source: str
    stc: tuple[str, str]
    check: Callable[[ClaimContext], Iterator[Hit]]


RULES: tuple[SnipRule, ...] = (
    SnipRule("snip-claim-balance", REJECT, "CLM02 is not the sum of the line charges",
             SNIP.format(3, "balancing: claim total equals the line charges"), ("A7", "400"),
             claim_balance),
    SnipRule("snip-npi-check-digit", REJECT, "an NPI on the claim fails its check digit",
             SNIP.format(4, "NPI check digit (45 CFR 162.406; Luhn over 80840 + NPI)"),
             ("A7", "562"), npi_check_digit),
    SnipRule("snip-diagnosis-pointer", REJECT, "a line points at a diagnosis the claim lacks",
             SNIP.format(4, "837P SV107 points into the claim's HI list"), ("A7", "255"),
             diagnosis_pointers),
    SnipRule("snip-date-range", REJECT, "a date range ends before it starts",
             SNIP.format(4, "RD8 is start-end"), ("A7", "187"), date_ranges),
    SnipRule("snip-future-date", REJECT, "a service date is after the file was created",
             SNIP.format(4, "no future dates of service"), ("A7", "187"), future_dates),
    SnipRule("snip-implementation-reference", REJECT, "ST03 differs from GS08",
             SNIP.format(4, "ST03 implementation convention reference equals GS08"),
             ("A7", "21"), implementation_reference),
    SnipRule("snip-code-form", REJECT, "a diagnosis, procedure or revenue code has the wrong form",
             SNIP.format(5, "code set forms: ICD-10-CM, CPT/HCPCS, NUBC revenue codes"),
             ("A7", "454"), code_forms),
)


def register() -> None:
    """Add the SNIP rules to the rule registry (once; the registry refuses a second time)."""
    for r in RULES:
        rule(r.id, severity=r.severity, summary=r.summary, source=r.source, stc=r.stc)(r.check)
