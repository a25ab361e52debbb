"""NCCI edits from the user's own CMS files: procedure-to-procedure pairs and MUEs.

Source: CMS National Correct Coding Initiative (NCCI) PTP edits and Medically
Unlikely Edits, the quarterly files the user downloads (practitioner files for
837P, hospital outpatient files for 837I); ``scrubber.ncci`` indexes them and
the engine hands them to the rules as the resource "ncci". Without tables
these rules find nothing. Pairs and unit totals are taken over the day context:
the same patient, billing provider and date on this claim, the other claims of
the submission and the claims already accepted in the ledger.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping
from decimal import Decimal

from scrubber.model.claims import ServiceLine, service_element
from scrubber.ncci import MueLimit, NcciTables, PtpEdit
from scrubber.rules.context import LEDGER, SAME_CLAIM, ClaimContext, DayService
from scrubber.rules.registry import REJECT, WARN, Hit, rule
from scrubber.rules.resources import ResourceError, ResourceKind, ResourceOption, resource_kind

ORDER = 30  # where this pack comes in `scrub rules` (scrubber.rules.registry.Pack)
FIXTURES = "ncci"  # its rules' fixtures, scrubbed with the files beside them


def _load_tables(given: Mapping[str, tuple[str, ...]]) -> NcciTables | None:
    """The tables the options name (index built on first use), or None when none are named.

    An ``-837i`` option gives 837I claims their own files; the plain option
    then serves 837P alone.
    """
    from scrubber.ncci import NcciError, load_tables

    def plan(both: tuple[str, ...], institutional: tuple[str, ...]
             ) -> list[str] | dict[str, list[str]] | None:
        if not institutional:
            return list(both) or None
        return {"837P": list(both), "837I": list(institutional)}

    if not any(given.values()):
        return None
    try:
        return load_tables(ptp=plan(given["ncci-ptp"], given["ncci-ptp-837i"]),
                           mue=plan(given["mue"], given["mue-837i"]))
    except NcciError as exc:
        raise ResourceError(f"NCCI tables: {exc}") from None


resource_kind(ResourceKind("ncci", (
    ResourceOption("ncci-ptp", "CMS NCCI procedure-to-procedure file (zip, .txt or .csv), "
                               "repeatable; used for 837P and, unless --ncci-ptp-837i is "
                               "given, 837I. See docs/ncci.md."),
    ResourceOption("ncci-ptp-837i", "NCCI PTP file for 837I claims (hospital outpatient "
                                    "edits); with it, --ncci-ptp applies to 837P only."),
    ResourceOption("mue", "CMS MUE file (zip, .txt or .csv), repeatable; used for 837P and, "
                          "unless --mue-837i is given, 837I."),
    ResourceOption("mue-837i", "MUE file for 837I claims (e.g. the facility outpatient "
                               "table); with it, --mue applies to 837P only."),
), _load_tables, label="CMS NCCI PTP or MUE tables"))

SOURCE = "CMS NCCI {} (the user's CMS files, see docs/ncci.md)"
# The modifiers CMS lists as NCCI-associated (NCCI Policy Manual, chapter I): anatomic,
# global surgery and the others (27, 59, 91, XE/XS/XP/XU). A profile list
# "ncci-bypass-modifiers" replaces this one.
BYPASS_MODIFIERS = frozenset((
    "E1", "E2", "E3", "E4", "FA", *(f"F{n}" for n in range(1, 10)), "TA",
    *(f"T{n}" for n in range(1, 10)), "LT", "RT", "LC", "LD", "RC", "LM", "RI",
    "24", "25", "57", "58", "78", "79", "27", "59", "91", "XE", "XS", "XP", "XU"))
INDICATORS = {0: "0: no modifier allows the pair",
              1: "1: an NCCI-associated modifier allows both when the services were distinct",
              9: "9: no edit"}
MUE_KINDS = {1: "line edit", 2: "date of service edit: policy",
             3: "date of service edit: clinical"}


def bypass_modifiers(ctx: ClaimContext):
    """The profile's ``ncci-bypass-modifiers`` list when it has one, else CMS's list."""
    for name, values in ctx.profile.lists:
        if name == "ncci-bypass-modifiers":
            return values
    return BYPASS_MODIFIERS


def _element(ctx: ClaimContext, units: bool = False) -> str:
    return service_element(ctx.kind, "units" if units else "procedure")


def _related(ctx: ClaimContext, services) -> tuple[str, ...]:
    return tuple(dict.fromkeys(s.reference() for s in services if s.where != SAME_CLAIM))


# -- procedure-to-procedure --------------------------------------------------------------

def _applies(edit: PtpEdit, modifiers: tuple[str, ...], bypass) -> bool:
    """True when the edit denies the column 2 service: indicator 0, or 1 with no bypass."""
    if edit.modifier == 9:
        return False
    return edit.modifier == 0 or not any(m in bypass for m in modifiers)


def _edit_words(edit: PtpEdit, denied: bool = False) -> str:
    why = f" Rationale: {edit.rationale}." if edit.rationale else ""
    none = "; neither line carries one" if denied and edit.modifier == 1 else ""
    return (f"NCCI PTP edit {edit.column1}/{edit.column2} (column 1/column 2), in effect "
            f"since {edit.effective:%Y-%m-%d}, modifier indicator "
            f"{INDICATORS[edit.modifier]}{none}.{why}")


def _ptp_fix(edit: PtpEdit, column2: str) -> str:
    if edit.modifier == 0:
        return (f"Remove the {column2} line: it is not paid with {edit.column1} on the same "
                "day, and no modifier changes that.")
    return (f"Remove the {column2} line; or, only when it was a distinct service (another "
            "site, session or encounter) and the record shows it, add an NCCI-associated "
            f"modifier to it (59, XE, XS, XP, XU, or an anatomic one such as RT/LT).")


@rule("ncci-ptp", severity=REJECT, stc=("A8", "454"),
      summary="two services of the patient's day form an NCCI procedure-to-procedure pair",
      source=SOURCE.format("procedure-to-procedure (PTP) edits"), needs=("ncci",))
def ptp_pairs(ctx: ClaimContext) -> Iterator[Hit]:
    """A column 2 code is not paid with its column 1 code for the same patient and day.

    The pair counts on this claim, another claim of the submission, or a claim
    already accepted in the ledger, when the edit is in force on the date
    (effective on or before it, deletion date "*" or after it). Modifier
    indicator 0: the column 2 line is rejected whatever its modifiers; 1: it
    is rejected unless either line carries an NCCI-associated modifier (59,
    XE, XS, XP, XU, anatomic modifiers such as RT/LT, E1-E4, FA-F9, TA-T9); 9:
    no edit. When the column 2 service went out in an earlier submission, the
    column 1 service in hand gets a warning: the fix is on the claim already sent.

    Fails: SV1*HC:99213 and SV1*HC:36415 on 20261102, with the edit 99213/36415 (indicator 0)
    Passes: SV1*HC:20610 and SV1*HC:20550:XS on 20261102, with the edit 20610/20550 (indicator 1)
    """
    tables = ctx.resource("ncci", NcciTables)
    if tables is None or ctx.claim.frequency == "8":
        return
    bypass = bypass_modifiers(ctx)
    for line in ctx.claim.lines:
        day = ctx.service_date(line)
        if day is None:
            continue
        denied: dict[PtpEdit, list[DayService]] = defaultdict(list)
        sent: dict[PtpEdit, list[DayService]] = defaultdict(list)
        for other in ctx.others(line):
            modifiers = line.modifiers + other.modifiers
            edit = tables.ptp(other.procedure, line.procedure, day, ctx.kind)
            if edit is not None and _applies(edit, modifiers, bypass):
                denied[edit].append(other)
            elif other.where == LEDGER:
                edit = tables.ptp(line.procedure, other.procedure, day, ctx.kind)
                if edit is not None and _applies(edit, modifiers, bypass):
                    sent[edit].append(other)
        for edit, services in denied.items():
            yield Hit(f"{line.procedure} on {day:%Y-%m-%d} is billed with "
                      f"{'; '.join(s.label() for s in services)}: {_edit_words(edit, True)}",
                      _ptp_fix(edit, line.procedure), line=line, element=_element(ctx),
                      related=_related(ctx, services))
        for edit, services in sent.items():
            yield Hit(f"{line.procedure} on {day:%Y-%m-%d} pairs with "
                      f"{'; '.join(s.label() for s in services)}: {_edit_words(edit, True)} "
                      f"With this service the {edit.column2} already sent will be denied or "
                      "recouped.",
                      f"Correct the claim already sent (remove its {edit.column2} line), or "
                      "hold this service if it was not performed.", line=line,
                      element=_element(ctx), related=_related(ctx, services), ceiling=WARN)


# -- medically unlikely edits ------------------------------------------------------------

def _units(count: int) -> str:
    return f"{count} unit{'' if count == 1 else 's'}"


def _mue_words(limit: MueLimit) -> str:
    per = "line" if limit.indicator == 1 else "day"
    why = f" Rationale: {limit.rationale}." if limit.rationale else ""
    return (f"its MUE is {_units(limit.units)} per {per} "
            f"(MUE adjudication indicator {limit.indicator}, "
            f"{MUE_KINDS[limit.indicator]}).{why}")


def _mue_fix(limit: MueLimit, code: str) -> str:
    if limit.indicator == 1:
        return (f"Bill at most {_units(limit.units)} of {code} on a line; units of a repeat, "
                "another site or session go on their own line with the modifier that says so "
                "(76, 77, 91, 59, XS, RT/LT ...).")
    appeal = ("units above it are not paid, by policy" if limit.indicator == 2 else
              "units above it are denied; only records showing them necessary win an appeal")
    return (f"Bill at most {_units(limit.units)} of {code} for this patient and date, across "
            f"all claims: {appeal}.")


def _day_units(ctx: ClaimContext, line: ServiceLine) -> tuple[Decimal, list[DayService]]:
    same = [s for s in ctx.others(line) if s.procedure == line.procedure and s.units]
    total = sum((s.units or Decimal(0) for s in same), line.units or Decimal(0))
    return total, same


@rule("mue", severity=REJECT, stc=("A7", "476"),
      summary="units of a code exceed its Medically Unlikely Edit (per line or per day)",
      source=SOURCE.format("Medically Unlikely Edits (MUE)"), needs=("ncci",))
def mue_units(ctx: ClaimContext) -> Iterator[Hit]:
    """Units of service above the code's MUE are denied.

    Adjudication indicator 1 (line edit): the units of each line. Indicators 2
    and 3 (date of service edits, by policy or by clinical benchmark): the
    units of the code for the patient that day, summed over this claim, the
    other claims of the submission and the ledger; every line of the code that
    day is flagged, as a payer denies them all.

    Fails: SV1*HC:20610*450*UN*3 on 20261102, with an MUE of 2 (indicator 1)
    Passes: SV1*HC:20610*300*UN*2 on 20261102, with an MUE of 2 (indicator 1)
    """
    tables = ctx.resource("ncci", NcciTables)
    if tables is None or ctx.claim.frequency == "8":
        return
    for line in ctx.claim.lines:
        limit = tables.mue(line.procedure, ctx.kind)
        if limit is None or line.units is None:
            continue
        day = ctx.service_date(line)
        if limit.indicator == 1 or day is None:
            if limit.indicator == 1 and line.units > limit.units:
                yield Hit(f"{line.procedure} is billed with {line.units_text} units on this "
                          f"line; {_mue_words(limit)}", _mue_fix(limit, line.procedure),
                          line=line, element=_element(ctx, units=True))
            continue
        total, same = _day_units(ctx, line)
        if total > limit.units:
            also = f" (with {'; '.join(s.label() for s in same)})" if same else ""
            yield Hit(f"{line.procedure} is billed with {total.normalize():f} units for this "
                      f"patient on {day:%Y-%m-%d}{also}; {_mue_words(limit)}",
                      _mue_fix(limit, line.procedure), line=line,
                      element=_element(ctx, units=True), related=_related(ctx, same))
