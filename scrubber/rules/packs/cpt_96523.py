"""The CPT 96523 rule pack: irrigation of an implanted venous access device.

Source: the seed text (shared/seeds/000_8270676562d9688b.txt) and
docs/domain.md. 96523 is reported only when it is the sole service for the
patient that day by that provider; a blood draw from the device is 36591
(36592 from a catheter), declotting is 36593, and drug administration
(96360-96549) includes the flush. Documentation names the device, the
solution and its amount. Every code and term list comes from the profile.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal
from functools import lru_cache

from scrubber.model.claims import ServiceLine, service_element
from scrubber.rules.context import LEDGER, ClaimContext, DayService
from scrubber.rules.registry import INFO, OR_LEDGER, REJECT, WARN, Hit, rule

ORDER = 10  # where this pack comes in `scrub rules` (scrubber.rules.registry.Pack)

# The coding reference page for CPT 96523 the pack is built from (kept as
# shared/seeds/000_8270676562d9688b.txt); sources name the reference, not the file.
SEED = ("CPT 96523 coding reference (2025 CPT code 96523: irrigation of implanted venous "
        "access device)")
_ONE = Decimal(1)
# Every rule of the pack is about the claim's own 96523 lines (``irrigation_lines``), so the
# engine runs it only on claims that bill a code of this profile list; 96523-sole-service also
# warns on a service whose date has a 96523 in the ledger, so it reaches there too.
IRRIGATION = "irrigation-codes"


# -- helpers: which lines, which words -----------------------------------------------------

def irrigation_lines(ctx: ClaimContext) -> tuple[ServiceLine, ...]:
    """The claim's 96523 lines; none on a void (CLM05-3 = 8), which only cancels.

    Every rule of the pack asks, so the claim's context works it out once.
    """
    def find() -> tuple[ServiceLine, ...]:
        if ctx.claim.frequency == "8":
            return ()
        codes = ctx.profile.list(IRRIGATION)
        return tuple(line for line in ctx.claim.lines if line.procedure in codes)

    return ctx.once("96523-lines", find)


@lru_cache(maxsize=512)
def _term_pattern(term: str) -> re.Pattern[str]:
    # Words match whole, ignoring case, spacing and punctuation between their parts:
    # "port-a-cath" matches "Port A Cath" and "PORTACATH"; "NS" never matches "INSTRUCTIONS".
    parts = re.findall(r"[A-Za-z0-9]+", term)
    body = r"[\W_]*".join(re.escape(p) for p in parts)
    return re.compile(rf"(?<![A-Za-z0-9]){body}(?![A-Za-z0-9])", re.IGNORECASE)


@lru_cache(maxsize=64)
def _amount_pattern(units: tuple[str, ...]) -> re.Pattern[str]:
    # A unit counts only right after a number ("10ML", "10 mL", "5cc", "100 U").
    alternatives = "|".join(re.escape(u) for u in sorted(set(units), key=len, reverse=True))
    return re.compile(
        rf"(?<![A-Za-z0-9.])\d+(?:[.,]\d+)?\s?(?:{alternatives})(?![A-Za-z])", re.IGNORECASE)


def find_terms(text: str, terms) -> tuple[str, ...]:
    """The terms of ``terms`` that occur in ``text`` as words."""
    return tuple(term for term in terms if _term_pattern(term).search(text))


def documentation(ctx: ClaimContext, line: ServiceLine) -> str:
    """Claim and line notes together: NTE02 holds 80 characters, so notes are split."""
    return " ".join(note.text for note in (*ctx.claim.notes, *line.notes))


def documented_by_attachment(ctx: ClaimContext, line: ServiceLine) -> str | None:
    """The PWK01 report type of a claim or line attachment that documents the service."""
    types = ctx.profile.list("attachment-types")
    for attachment in (*line.attachments, *ctx.claim.attachments):
        if attachment.report_type in types:
            return attachment.report_type
    return None


def _bypass_note(ctx: ClaimContext, line: ServiceLine) -> str:
    bypass = [m for m in line.modifiers if m in ctx.profile.list("bypass-modifiers")]
    if not bypass:
        return ""
    return (f" Modifier {', '.join(bypass)} on 96523 does not lift this: a CPT 'do not report "
            "with' instruction cannot be bypassed with 59/XE/XS/XP/XU.")


def _conflict_hits(ctx: ClaimContext, category: str, what: str, fix_837p: str
                   ) -> Iterator[Hit]:
    """One hit per 96523 line that shares its day with services of ``category``."""
    for line in irrigation_lines(ctx):
        found = [s for s in ctx.others(line) if _category(ctx, s) == category]
        if not found:
            continue
        services = "; ".join(s.label() for s in found)
        related = tuple(dict.fromkeys(s.reference() for s in found if s.claim_ordinal
                                      != ctx.ordinal or s.where == LEDGER))
        if ctx.kind == "837I":
            message = (f"96523 on {ctx.service_date(line):%Y-%m-%d} is billed with {what}: "
                       f"{services}. On a facility claim 96523 is packaged with the other "
                       "services of the day; expect no separate payment for it.")
            fix = ("Keep reporting every service of the day on the facility claim; do not "
                   "expect 96523 to be paid separately.")
        else:
            message = (f"96523 on {ctx.service_date(line):%Y-%m-%d} is billed with {what}: "
                       f"{services}. 96523 is reported only when it is the sole service that "
                       "day." + _bypass_note(ctx, line))
            fix = fix_837p
        yield Hit(message, fix, line=line, element=service_element(ctx.kind, "procedure"),
                  related=related)


def _category(ctx: ClaimContext, service: DayService) -> str:
    code = service.procedure
    lists = ctx.profile.list
    if code in lists(IRRIGATION):
        return "irrigation"
    if code in lists("blood-draw-codes"):
        return "blood-draw"
    if code in lists("declot-codes"):
        return "declot"
    if code in lists("drug-admin-codes"):
        return "drug-admin"
    return "other"


# -- the day rules ---------------------------------------------------------------------------

@rule("96523-sole-service", severity=REJECT, kinds={"837I": WARN}, stc=("A8", "454"),
      procedures=IRRIGATION, reach=OR_LEDGER,
      summary="96523 is billed with another service for the same patient and date",
      source=f"{SEED}: report 96523 only when it is the sole service on the date")
def sole_service(ctx: ClaimContext) -> Iterator[Hit]:
    """96523 must be the only service of the patient that day, by that provider.

    Other services count on the same claim, another claim of the submission,
    or a claim already accepted in the ledger. Blood draws, declotting and drug
    administration have their own rules, which replace this one for them.

    When the 96523 went out in an earlier submission (it is in the ledger), the
    service in hand is what turns it into a denial: that service gets a warning
    naming the 96523 claim, since the fix is on the claim already sent.

    Fails: SV1*HC:96523*60*UN*1 and SV1*HC:99213*100*UN*1, both on 20261102
    Passes: SV1*HC:96523*60*UN*1 alone on 20261102
    """
    yield from _conflict_hits(
        ctx, "other", "other services",
        "Remove the 96523 line (or the claim) for this date: the irrigation is not reported "
        "with other services.")
    yield from _after_sent_irrigation(ctx)


def _after_sent_irrigation(ctx: ClaimContext) -> Iterator[Hit]:
    """A warning on a service whose day already has an accepted 96523 in the ledger."""
    if ctx.claim.frequency == "8":
        return
    codes = ctx.profile.list(IRRIGATION)
    warned: set = set()
    for line in ctx.claim.lines:
        if line.procedure in codes:
            continue
        day = ctx.service_date(line)
        if day is None or day in warned:
            continue
        sent = [s for s in ctx.ledger_day(day) if s.procedure in codes]
        if not sent:
            continue
        warned.add(day)
        earlier = "; ".join(s.reference() for s in sent)
        yield Hit(
            f"{line.procedure} on {day:%Y-%m-%d} is billed for a patient whose 96523 for that "
            f"date was already sent ({earlier}); with this service the 96523 is no longer the "
            "sole service of the day and will be denied or recouped.",
            "Void or correct the claim that carried 96523 for this date (remove the 96523 "
            "line), or hold this service if it was not performed.",
            line=line, element=service_element(ctx.kind, "procedure"),
            related=tuple(dict.fromkeys(s.reference() for s in sent)), ceiling=WARN)


@rule("96523-blood-draw", severity=REJECT, kinds={"837I": WARN}, stc=("A8", "454"),
      procedures=IRRIGATION,
      summary="96523 is billed with a blood draw from the device (36591/36592)",
      source=f"{SEED}: use 36591 for blood specimen collection")
def blood_draw(ctx: ClaimContext) -> Iterator[Hit]:
    """A blood draw from the device already includes the flush.

    Fails: SV1*HC:96523*60*UN*1 and SV1*HC:36591*30*UN*1 on 20261102
    Passes: SV1*HC:36591*30*UN*1 alone on 20261102
    """
    yield from _conflict_hits(
        ctx, "blood-draw", "a blood draw from the device",
        "Report the blood draw (36591/36592) alone and remove the 96523 line.")


@rule("96523-declot", severity=REJECT, kinds={"837I": WARN}, stc=("A8", "454"),
      procedures=IRRIGATION,
      summary="96523 is billed with declotting of the device (36593)",
      source=f"{SEED}: use 36593 for declotting a catheter or port")
def declot(ctx: ClaimContext) -> Iterator[Hit]:
    """Declotting the device includes the irrigation.

    Fails: SV1*HC:96523*60*UN*1 and SV1*HC:36593*90*UN*1 on 20261102
    Passes: SV1*HC:36593*90*UN*1 alone on 20261102
    """
    yield from _conflict_hits(
        ctx, "declot", "declotting of the device",
        "Report the declotting (36593) alone and remove the 96523 line.")


@rule("96523-drug-admin", severity=REJECT, kinds={"837I": WARN}, stc=("A8", "454"),
      procedures=IRRIGATION,
      summary="96523 is billed with drug administration (96360-96549)",
      source=f"{SEED}; CPT: infusion, injection and chemotherapy administration include "
             "the flush")
def drug_admin(ctx: ClaimContext) -> Iterator[Hit]:
    """Infusion, injection and chemotherapy administration include the flush at the end.

    Fails: SV1*HC:96523*60*UN*1 and SV1*HC:96413*300*UN*1 on 20261102
    Passes: SV1*HC:96413*300*UN*1 alone on 20261102
    """
    yield from _conflict_hits(
        ctx, "drug-admin", "drug administration, which includes the flush",
        "Remove the 96523 line: the flush is part of the drug administration.")


@rule("96523-units", severity=REJECT, stc=("A7", "476"),
      procedures=IRRIGATION, fix="unsafe: the line's units set to 1 (its charge is kept)",
      summary="96523 is billed with units other than 1, or more than once a day",
      source="CPT 96523: one irrigation a day (MUE 1, the common value)")
def units(ctx: ClaimContext) -> Iterator[Hit]:
    """96523 is reported once a day, with one unit.

    A second 96523 line for the same patient and date (on this claim, another
    claim of the submission, or in the ledger) is flagged on the later line.

    Fails: SV1*HC:96523*120*UN*2 on 20261102
    Passes: SV1*HC:96523*60*UN*1 on 20261102
    """
    element = service_element(ctx.kind, "units")
    for line in irrigation_lines(ctx):
        if line.units != _ONE:
            shown = line.units_text or "none"
            yield Hit(f"96523 is billed with {shown} units; it is reported with 1 unit a day.",
                      "Bill 96523 with 1 unit.", line=line, element=element)
        index = ctx.claim.lines.index(line)
        earlier = [s for s in ctx.others(line) if _category(ctx, s) == "irrigation"
                   and (s.where == LEDGER or (s.claim_ordinal, s.line_index)
                        < (ctx.ordinal, index))]
        if earlier:
            yield Hit(
                f"96523 is billed more than once for this patient on "
                f"{ctx.service_date(line):%Y-%m-%d}; already billed: "
                f"{'; '.join(s.label() for s in earlier)}.",
                "Bill 96523 once a day with 1 unit; remove this line.",
                line=line, element=element,
                related=tuple(dict.fromkeys(s.reference() for s in earlier
                                            if s.claim_ordinal != ctx.ordinal)))


@rule("96523-date", severity=REJECT, stc=("A6", "187"),
      procedures=IRRIGATION,
      summary="96523 has no single date of service",
      source=f"{SEED}: documentation includes the date of service")
def single_date(ctx: ClaimContext) -> Iterator[Hit]:
    """96523 is a one-day service: its line needs one date of service.

    The line's DTP*472 (a one-day RD8 range counts); on 837I without a line
    date, a one-day statement period (DTP*434).

    Fails: SV1*HC:96523*60*UN*1 with DTP*472*RD8*20261102-20261104
    Passes: SV1*HC:96523*60*UN*1 with DTP*472*D8*20261102
    """
    for line in irrigation_lines(ctx):
        if ctx.service_date(line) is not None:
            continue
        dtp = next((d for d in line.dates if d.qualifier == "472"), None)
        if dtp is None and ctx.kind == "837I":
            what = ("has no date of service (DTP*472) and the statement period (DTP*434) is "
                    "not a single day")
        elif dtp is None:
            what = "has no date of service (DTP*472)"
        elif dtp.start is None or dtp.end is None:
            what = f"has a date of service that is not a real date ({dtp.text})"
        else:
            what = f"has a date range of more than one day ({dtp.text})"
        yield Hit(f"96523 line {what}; 96523 is reported per day of service.",
                  "Give the line one date of service: DTP*472*D8*CCYYMMDD.",
                  line=line, segment=dtp.location if dtp else None,
                  element="DTP03" if dtp else None)


# -- the documentation rules -------------------------------------------------------------

def _documentation_hits(ctx: ClaimContext, what: str, fix: str, check) -> Iterator[Hit]:
    for line in irrigation_lines(ctx):
        text = documentation(ctx, line)
        problem = check(ctx, text)
        if problem is None:
            continue
        message, ceiling = problem
        report_type = documented_by_attachment(ctx, line)
        if report_type is not None and ceiling is None:
            yield Hit(f"{message} The PWK attachment (report type {report_type}) is taken to "
                      f"document the {what}.", "Make sure the attachment names the "
                      f"{what}.", line=line, ceiling=INFO)
            continue
        yield Hit(message, fix, line=line, ceiling=ceiling)


def _device_problem(ctx: ClaimContext, text: str):
    if find_terms(text, ctx.profile.list("device-words").terms):
        return None
    other = find_terms(text, ctx.profile.list("non-implanted-device-words").terms)
    if other:
        return (f"The notes name {', '.join(other)}, which is not an implanted device; 96523 "
                "is for implanted venous access devices (port, Hickman, Broviac ...).", WARN)
    return ("No device type is documented for 96523 in the claim or line notes (NTE).", None)


@rule("96523-device", severity=REJECT, stc=("A6", "294"),
      procedures=IRRIGATION,
      summary="96523 without the type of implanted device documented",
      source=f"{SEED}: documentation includes the type of venous access device")
def device(ctx: ClaimContext) -> Iterator[Hit]:
    """The notes name the implanted device (port, port-a-cath, Hickman, Broviac ...).

    A non-implanted line (PICC, peripheral IV) is a warning: 96523 is for
    implanted devices. A PWK attachment that documents the service gives info.

    Fails: NTE*ADD*FLUSHED WITH 10ML NS
    Passes: NTE*ADD*PORT-A-CATH FLUSHED WITH 10ML NS
    """
    yield from _documentation_hits(
        ctx, "device", "Name the device in a note, e.g. NTE*ADD*PORT-A-CATH FLUSHED ...",
        _device_problem)


def _solution_problem(ctx: ClaimContext, text: str):
    if find_terms(text, ctx.profile.list("solution-words").terms):
        return None
    return ("No irrigation solution (saline, heparin ...) is documented for 96523 in the "
            "claim or line notes (NTE).", None)


@rule("96523-solution", severity=REJECT, stc=("A6", "294"),
      procedures=IRRIGATION,
      summary="96523 without the irrigation solution documented",
      source=f"{SEED}: documentation includes the type of solution")
def solution(ctx: ClaimContext) -> Iterator[Hit]:
    """The notes name the solution (saline, normal saline, NS, heparin ...).

    Fails: NTE*ADD*PORT FLUSHED 10ML
    Passes: NTE*ADD*PORT FLUSHED 10ML NS
    """
    yield from _documentation_hits(
        ctx, "solution", "Name the solution in a note, e.g. NTE*ADD*PORT FLUSHED 10ML NS.",
        _solution_problem)


def _amount_problem(ctx: ClaimContext, text: str):
    units_ = tuple(ctx.profile.list("amount-units").terms)
    if units_ and _amount_pattern(units_).search(text):
        return None
    return ("No amount of solution (e.g. 10 mL, 5cc, 500 units) is documented for 96523 in "
            "the claim or line notes (NTE).", None)


@rule("96523-amount", severity=REJECT, stc=("A6", "294"),
      procedures=IRRIGATION,
      summary="96523 without the amount of solution documented",
      source=f"{SEED}: documentation includes the amount of solution")
def amount(ctx: ClaimContext) -> Iterator[Hit]:
    """The notes give the amount: a number with mL, cc, units or U.

    Fails: NTE*ADD*PORT FLUSHED WITH NS
    Passes: NTE*ADD*PORT FLUSHED WITH 10 ML NS
    """
    yield from _documentation_hits(
        ctx, "amount of solution", "Give the amount in a note, e.g. NTE*ADD*PORT FLUSHED "
        "10ML NS.", _amount_problem)


@rule("96523-diagnosis", severity=WARN, stc=None,
      procedures=IRRIGATION,
      summary="96523 without a diagnosis that supports device maintenance",
      source="ICD-10-CM: Z45.2 (management of a vascular access device), T82.7XX- and "
             "T82.868- (complications of vascular devices) support device maintenance "
             "(a profile list)")
def diagnosis(ctx: ClaimContext) -> Iterator[Hit]:
    """A diagnosis supports the irrigation (Z45.2, T82.7XX-, T82.868- by default).

    On 837P only the diagnoses the line points to (SV107) count; on 837I any
    diagnosis of the claim.

    Fails: HI*ABK:C50911 with SV1 ... ***1
    Passes: HI*ABK:Z452 with SV1 ... ***1
    """
    supporting = ctx.profile.list("supporting-diagnoses")
    for line in irrigation_lines(ctx):
        if ctx.kind == "837P":
            pointers = set(line.diagnosis_pointers)
            codes = [d.code for d in ctx.claim.diagnoses if d.position in pointers]
            where = "the diagnoses this line points to (SV107)"
        else:
            codes = [d.code for d in ctx.claim.diagnoses]
            where = "the claim's diagnoses"
        if any(supporting.prefixes(code) for code in codes):
            continue
        shown = ", ".join(codes) if codes else "none"
        yield Hit(f"None of {where} supports device maintenance ({shown}); expected e.g. "
                  f"{', '.join(supporting.terms)}.",
                  "Add a supporting diagnosis (e.g. Z452) and point the 96523 line at it.",
                  line=line, element="SV107" if ctx.kind == "837P" else None)
