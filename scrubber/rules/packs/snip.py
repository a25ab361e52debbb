"""SNIP 3-5 checks the implementation-guide walk cannot make: balancing, identifiers, dates.

The IG check (``scrubber.ig``, SNIP 1-2) validates structure and element
syntax. A payer's front end also checks that the claim adds up (SNIP 3), that
related values agree (SNIP 4: diagnosis pointers, date ranges, NPI check
digits, duplicates) and that codes have the form of their code sets (SNIP 5,
form only: no code list ships here, see docs/rules.md). Each rejects with the
277CA status a payer would send.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from functools import lru_cache

from scrubber.model.claims import (
    CHANGE_FREQUENCIES,
    DateValue,
    ServiceLine,
    procedure_element,
    service_element,
)
from scrubber.rules.context import ClaimContext
from scrubber.rules.registry import REJECT, Hit, rule

ORDER = 20  # where this pack comes in `scrub rules` (scrubber.rules.registry.Pack)

_SNIP = "WEDI SNIP Type {}: {}"
ICD10_START = date(2015, 10, 1)  # HHS: ICD-10-CM for services from this date
_ICD10 = re.compile(r"[A-Z][0-9][0-9A-Z][0-9A-Z]{0,4}")
ICD10_QUALIFIERS = frozenset(("ABK", "ABF", "ABJ", "APR", "ABN"))
_ICD9_QUALIFIERS = frozenset(("BK", "BF", "BJ", "PR", "BN"))
_PROCEDURE = re.compile(r"[0-9]{4}[0-9FTU]|[A-V][0-9]{4}")
_MODIFIER = re.compile(r"[0-9A-Z]{2}")
_REVENUE = re.compile(r"0[0-9]{3}")
_ANESTHESIA = re.compile(r"0[01][0-9]{3}")  # CPT 00100-01999: time-based, units in minutes
_ACCOMMODATION = re.compile(r"01[0-9]{2}|02[01][0-9]")  # NUBC room and board: units in days
_BASES = {"837P": ("UN", "MJ"), "837I": ("UN", "DA")}
# NM101 of the claim and line providers, in words for the message
_ROLES = {"82": "rendering", "71": "attending", "72": "operating", "ZZ": "other operating",
          "DN": "referring", "P3": "primary care", "DK": "ordering", "DQ": "supervising",
          "77": "service facility", "QB": "purchased service", "FA": "service facility"}


@lru_cache(maxsize=4096)  # the same few NPIs come back on every claim
def npi_is_valid(npi: str) -> bool:
    """10 digits whose last is the Luhn check digit over "80840" + the first nine."""
    if len(npi) != 10 or not (npi.isascii() and npi.isdigit()):
        return False
    total = 0
    for i, ch in enumerate(reversed("80840" + npi[:9])):
        d = int(ch)
        if i % 2 == 0:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return (10 - total % 10) % 10 == int(npi[9])


def _dates(ctx: ClaimContext) -> list[tuple[DateValue, ServiceLine | None]]:
    """Every DTP of the claim and its lines, with its line (a list: no nested generators)."""
    claim = ctx.claim
    found: list[tuple[DateValue, ServiceLine | None]] = [(value, None) for value in claim.dates]
    for line in claim.lines:
        for value in line.dates:
            found.append((value, line))
    return found


def _first_service_day(ctx: ClaimContext) -> date | None:
    days = [v.start for v, _ in _dates(ctx) if v.qualifier in ("472", "434") and v.start]
    return min(days) if days else None


@rule("snip-claim-balance", severity=REJECT, stc=("A7", "400"),
      summary="CLM02 is not the sum of the line charges",
      source=_SNIP.format(3, "claim total charge equals the sum of its service lines"),
      fix="unsafe: CLM02 set to the sum of the line charges")
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


@rule("snip-npi-check-digit", severity=REJECT, stc=("A7", "562"),
      summary="an NPI on the claim fails its check digit",
      source=_SNIP.format(4, "NPI check digit, Luhn over 80840 + NPI (45 CFR 162.406)"))
def npi_check_digit(ctx: ClaimContext) -> Iterator[Hit]:
    """Every NPI on the claim (billing, rendering, attending, referring ...) has its check digit.

    Fails: NM1*DN*1*REFERRER*PAT****XX*1234567890
    Passes: NM1*DN*1*REFERRER*PAT****XX*1234567893
    """
    billing = ctx.record.billing_provider
    people = []
    if billing is not None and billing.npi:
        people.append(("billing provider", billing.npi, billing.location, None))
    people += [(f"{_ROLES.get(p.role, p.role)} provider (NM1*{p.role})", p.npi, p.location,
                None) for p in ctx.claim.providers if p.npi]
    people += [(f"line {line.number} {_ROLES.get(p.role, p.role)} provider (NM1*{p.role})",
                p.npi, p.location, line)
               for line in ctx.claim.lines for p in line.providers if p.npi]
    for who, npi, location, line in people:
        if not npi_is_valid(npi):
            yield Hit(f"the {who} NPI {npi} fails its check digit (Luhn over 80840 and the "
                      "first nine digits)", "Correct the NPI: copy it from NPPES.",
                      line=line, segment=location, element="NM109")


@rule("snip-diagnosis-pointer", severity=REJECT, stc=("A7", "477"), claim_kinds=("837P",),
      summary="a line points at a diagnosis the claim does not list",
      source=_SNIP.format(4, "837P SV107 points into the claim's HI list"))
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


@rule("snip-date-valid", severity=REJECT, stc=("A7", "187"),
      summary="a date is not a real calendar date, or a range ends before it starts",
      source=_SNIP.format(4, "DTP dates are calendar dates; RD8 is start-end"))
def dates_valid(ctx: ClaimContext) -> Iterator[Hit]:
    """Every DTP date is a real calendar date, and a range (RD8) does not end before it starts.

    Fails: DTP*472*D8*20261131, DTP*472*RD8*20261105-20261101
    Passes: DTP*472*D8*20261130, DTP*472*RD8*20261101-20261105
    """
    for value, line in _dates(ctx):
        if value.start is None or value.end is None:
            yield Hit(f"DTP*{value.qualifier} {value.text} is not a real calendar date",
                      "Send the date as CCYYMMDD (a range as CCYYMMDD-CCYYMMDD) with a real "
                      "month and day.", line=line, segment=value.location, element="DTP03")
        elif value.end < value.start:
            yield Hit(f"DTP*{value.qualifier} range {value.text} ends before it starts",
                      "Put the earlier date first: CCYYMMDD-CCYYMMDD.", line=line,
                      segment=value.location, element="DTP03")


@rule("snip-future-date", severity=REJECT, stc=("A7", "510"),
      summary="a service date is after the file was created (or after today)",
      source=_SNIP.format(4, "no future dates of service"))
def future_dates(ctx: ClaimContext) -> Iterator[Hit]:
    """Services (DTP*472, statement DTP*434) end no later than the 837's creation (BHT04) and today.

    Fails: BHT04 20261110 and DTP*472*D8*20261125
    Passes: BHT04 20261110 and DTP*472*D8*20261102
    """
    created = ctx.record.transaction.created
    limit = min(created, date.today()) if created else date.today()
    for value, line in _dates(ctx):
        if value.qualifier in ("472", "434") and value.end and value.end > limit:
            yield Hit(f"DTP*{value.qualifier} {value.text} is after the day the file was "
                      f"created ({limit:%Y%m%d}): a claim cannot bill future services",
                      "Bill the service once it has been provided; correct the date if it is "
                      "a typing error.", line=line, segment=value.location, element="DTP03")


@rule("snip-statement-period", severity=REJECT, stc=("A7", "187"), claim_kinds=("837I",),
      summary="an 837I line date falls outside the statement period",
      source=_SNIP.format(4, "837I service line dates lie within DTP*434"))
def statement_period(ctx: ClaimContext) -> Iterator[Hit]:
    """On an 837I, every line's service date (DTP*472) lies within the statement period (DTP*434).

    Fails: DTP*434*RD8*20261102-20261103 and a line DTP*472*D8*20261105
    Passes: DTP*434*RD8*20261102-20261103 and a line DTP*472*D8*20261103
    """
    period = ctx.claim.date("434") if ctx.kind == "837I" else None
    if period is None or period.start is None or period.end is None:
        return
    for line in ctx.claim.lines:
        for value in line.dates:
            if value.qualifier != "472" or value.start is None or value.end is None:
                continue
            if value.start < period.start or value.end > period.end:
                yield Hit(f"line {line.number} date {value.text} lies outside the statement "
                          f"period {period.text}",
                          "Correct the line date, or widen the statement period (DTP*434) "
                          "to cover every line.", line=line, segment=value.location,
                          element="DTP03")


@rule("snip-diagnosis-code", severity=REJECT, stc=("A7", "255"),
      summary="a diagnosis code has the wrong form or the wrong ICD revision for its date",
      source=_SNIP.format(5, "ICD-10-CM form; ICD-9 qualifiers only before 2015-10-01"))
def diagnosis_codes(ctx: ClaimContext) -> Iterator[Hit]:
    """ICD-10-CM codes have their form; the qualifier's ICD revision fits the date of service.

    ICD-10-CM: a letter, a digit, a letter or digit, then up to four more, no
    dot. ICD-9 qualifiers (BK, BF ...) are for services before 2015-10-01,
    ICD-10 ones (ABK, ABF ...) from that day on.
    Fails: HI*ABK:250.00, or HI*BK:25000 for a 2026 service
    Passes: HI*ABK:E119
    """
    day = _first_service_day(ctx)
    for dx in ctx.claim.diagnoses:
        element = f"HI{dx.position:02d}-2" if dx.position <= 12 else "HI"
        if dx.qualifier in ICD10_QUALIFIERS and not _ICD10.fullmatch(dx.code):
            yield Hit(f"diagnosis {dx.code} ({dx.qualifier}) is not an ICD-10-CM code "
                      "(a letter, a digit, then up to five more letters or digits, no dot)",
                      "Send the ICD-10-CM code without its dot.", segment=dx.location,
                      element=element)
        elif dx.qualifier in _ICD9_QUALIFIERS and day is not None and day >= ICD10_START:
            yield Hit(f"diagnosis {dx.code} is sent as ICD-9 ({dx.qualifier}) for a service "
                      f"on {day:%Y-%m-%d}: ICD-10-CM applies from 2015-10-01",
                      f"Code the diagnosis in ICD-10-CM with qualifier A{dx.qualifier}.",
                      segment=dx.location, element=element)
        elif dx.qualifier in ICD10_QUALIFIERS and day is not None and day < ICD10_START:
            yield Hit(f"diagnosis {dx.code} is sent as ICD-10-CM ({dx.qualifier}) for a "
                      f"service on {day:%Y-%m-%d}, before ICD-10 took effect (2015-10-01)",
                      f"Code the diagnosis in ICD-9-CM with qualifier {dx.qualifier[1:]}.",
                      segment=dx.location, element=element)


@rule("snip-procedure-code", severity=REJECT, stc=("A7", "454"),
      summary="a procedure or revenue code has the wrong form",
      source=_SNIP.format(5, "CPT/HCPCS and NUBC revenue code forms"))
def procedure_codes(ctx: ClaimContext) -> Iterator[Hit]:
    """HC procedure codes have a CPT or HCPCS form; 837I revenue codes are four digits from 0.

    Fails: SV1*HC:9921*100, SV2*300*HC:85025
    Passes: SV1*HC:99213*100, SV1*HC:J1100*20, SV2*0300*HC:85025
    """
    for line in ctx.claim.lines:
        if line.procedure_qualifier == "HC" and line.procedure and \
                not _PROCEDURE.fullmatch(line.procedure):
            yield Hit(f"line {line.number} procedure {line.procedure} is not a CPT or HCPCS "
                      "code (five digits, four digits and F/T/U, or a letter and four digits)",
                      "Correct the procedure code.", line=line,
                      element=procedure_element(ctx.kind))
        if ctx.kind == "837I" and line.revenue_code and not _REVENUE.fullmatch(line.revenue_code):
            yield Hit(f"line {line.number} revenue code {line.revenue_code} is not four digits "
                      "starting with 0", "Correct the revenue code (SV201).", line=line,
                      element="SV201")


@rule("snip-modifier", severity=REJECT, stc=("A7", "453"),
      summary="a procedure modifier has the wrong form",
      source=_SNIP.format(5, "CPT/HCPCS modifiers are two letters or digits"))
def modifiers(ctx: ClaimContext) -> Iterator[Hit]:
    """Each procedure modifier is two letters or digits.

    Fails: SV1*HC:99213:5-*100
    Passes: SV1*HC:99213:25*100
    """
    for line in ctx.claim.lines:
        for n, modifier in enumerate(line.modifiers, 3):
            if not _MODIFIER.fullmatch(modifier):
                yield Hit(f"line {line.number} modifier {modifier!r} is not a modifier (two "
                          "letters or digits)", "Correct or remove the modifier.", line=line,
                          element=procedure_element(ctx.kind, n))


@rule("snip-units", severity=REJECT, stc=("A7", "476"),
      summary="units are not positive, or the unit basis does not fit the line",
      source=_SNIP.format(4, "service units and their basis (SV103/SV104, SV204/SV205)"))
def units(ctx: ClaimContext) -> Iterator[Hit]:
    """Units are above zero; minutes (MJ) only for anesthesia, days (DA) only for room and board.

    Fails: SV1*HC:99213*100*UN*0, SV1*HC:99213*100*MJ*15
    Passes: SV1*HC:99213*100*UN*1, SV1*HC:00840*900*MJ*95
    """
    basis_element = service_element(ctx.kind, "unit_basis")
    units_element = service_element(ctx.kind, "units")
    for line in ctx.claim.lines:
        if line.units is not None and line.units <= 0:
            yield Hit(f"line {line.number} bills {line.units_text} units: units must be above "
                      "zero", "Send the number of units provided (at least 1).", line=line,
                      element=units_element)
        basis = line.unit_basis
        if basis not in _BASES[ctx.kind]:
            continue  # not a code of the guide: the IG check reports it
        if basis == "MJ" and not _ANESTHESIA.fullmatch(line.procedure or ""):
            yield Hit(f"line {line.number} counts minutes (MJ) for {line.procedure}, which is "
                      "not an anesthesia code", "Bill units (UN) for this service; minutes "
                      "are for anesthesia codes 00100-01999.", line=line,
                      element=basis_element)
        elif basis == "DA" and not _ACCOMMODATION.fullmatch(line.revenue_code or ""):
            yield Hit(f"line {line.number} counts days (DA) under revenue code "
                      f"{line.revenue_code}, which is not room and board",
                      "Bill units (UN) for this service; days are for accommodation revenue "
                      "codes 0100-0219.", line=line, element=basis_element)


@rule("snip-duplicate-claim", severity=REJECT, stc=("A7", "21"),
      summary="a CLM01 repeats an earlier claim of the same provider in the submission",
      source=_SNIP.format(4, "claim identifiers are unique per provider and submission"))
def clm01_repeats_in_submission(ctx: ClaimContext) -> Iterator[Hit]:
    """A claim id (CLM01) is not used twice by one billing provider in one submission.

    A replacement or void (CLM05-3 7/8) names an earlier claim on purpose and
    is not a duplicate.
    Fails: two CLM*PCN1 claims of billing NPI 1234567893 in one interchange
    Passes: CLM*PCN1 and CLM*PCN2
    """
    if ctx.claim.frequency in CHANGE_FREQUENCIES:
        return
    earlier = ctx.twins()
    if earlier:
        yield Hit(f"claim id {ctx.claim.id} already appears earlier in this submission for "
                  f"the same billing provider (claim #{earlier[0]} of the file): the payer "
                  "rejects the later one as a duplicate",
                  "Give each claim its own patient control number (CLM01); if this is the "
                  "same claim, send it once.", segment=ctx.claim.location, element="CLM01")


@rule("snip-implementation-reference", severity=REJECT, stc=("A7", "21"),
      summary="ST03 names another implementation guide than GS08",
      source=_SNIP.format(4, "ST03 implementation convention reference equals GS08"))
def implementation_reference(ctx: ClaimContext) -> Iterator[Hit]:
    """ST03 names the same implementation guide as GS08.

    Fails: GS08 005010X222A1 and ST03 005010X222A2
    Passes: GS08 005010X222A1 and ST03 005010X222A1
    """
    st03 = ctx.record.transaction.version
    gs08 = ctx.record.group.version if ctx.record.group is not None else ""
    if st03 and gs08 and st03 != gs08:
        yield Hit(f"ST03 {st03} differs from GS08 {gs08}", "Send ST03 equal to GS08.",
                  segment=ctx.record.transaction.location, element="ST03")
