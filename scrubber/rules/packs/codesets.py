"""Code sets: the diagnosis and procedure codes exist, are billable and in force on the date.

Source: CMS's ICD-10-CM releases (the April 1, 2026 release ships in
``simple-icd-10-cm``; other fiscal years come from the user's CMS files,
``--icd10cm``), CMS's HCPCS Level II quarterly file (``--hcpcs``) and a
licensed user's CPT list (``--cpt``); scrubber.codesets indexes them and the
engine hands them to the rules as the resource "codesets". Without files the
bundled ICD-10-CM release is used, so diagnoses are checked out of the box.

Dates: an 837I claim's diagnoses are judged on the statement period's
through date (DTP*434), as CMS picks the ICD-10-CM version of an institutional
claim; an 837P diagnosis on the date of each line that points at it (SV107),
an unpointed one on every line's date. A date no loaded release covers is
judged by the nearest release, as a warning only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import date

from scrubber.codesets import (
    NOT_BILLABLE,
    NOT_IN_FORCE,
    OK,
    UNKNOWN,
    CodeSets,
    DxVerdict,
    HcpcsVerdict,
    bundled,
    dotted,
    fiscal_year,
)
from scrubber.codesets.files import CPT, HCPCS, ICD10CM
from scrubber.model.claims import Diagnosis, ServiceLine, procedure_element
from scrubber.rules.context import ClaimContext
from scrubber.rules.packs.snip import ICD10_QUALIFIERS, ICD10_START
from scrubber.rules.registry import REJECT, WARN, Hit, rule
from scrubber.rules.resources import ResourceError, ResourceKind, ResourceOption, resource_kind

ORDER = 40  # where this pack comes in `scrub rules` (scrubber.rules.registry.Pack)
FIXTURES = "codesets"  # its rules' fixtures, scrubbed with the files beside them

_SHOWN = 12  # billable codes named in a message; the rest are counted


def _load(given: Mapping[str, tuple[str, ...]]) -> CodeSets | None:
    """The code sets the options name, with the bundled release; None when none is named."""
    from scrubber.codesets import CodeSetError, load_codesets

    if not any(given.values()):
        return None
    try:
        return load_codesets(icd10cm=given["icd10cm"], hcpcs=given["hcpcs"], cpt=given["cpt"])
    except CodeSetError as exc:
        raise ResourceError(f"code sets: {exc}") from None


resource_kind(ResourceKind("codesets", (
    ResourceOption("icd10cm", "CMS ICD-10-CM 'code descriptions in tabular order' file (zip "
                              "or icd10cm_order_YYYY.txt) of a fiscal year the bundled "
                              "release does not cover; repeatable. See docs/codesets.md."),
    ResourceOption("hcpcs", "CMS HCPCS Level II quarterly file (zip or HCPC20xx_..._ANWEB "
                            ".txt); repeatable. See docs/codesets.md."),
    ResourceOption("cpt", "a licensed CPT code list, one code a line; without it CPT codes "
                          "are checked by form only."),
), _load, label="code sets (ICD-10-CM, HCPCS, CPT)"))

ICD_SOURCE = ("CMS ICD-10-CM, the release of the date of service (April 1, 2026 bundled by "
              "simple-icd-10-cm; other years from --icd10cm, see docs/codesets.md)")


def code_sets(ctx: ClaimContext) -> CodeSets | None:
    """The run's code sets, else the bundled ICD-10-CM release (opened once per process)."""
    return ctx.resource("codesets", CodeSets) or bundled()


def _line_day(ctx: ClaimContext, line: ServiceLine) -> date | None:
    """The line's from date; on an 837I line without one, the statement period's through date."""
    if line.date_from is not None:
        return line.date_from
    return _statement_through(ctx) if ctx.kind == "837I" else None


def _statement_through(ctx: ClaimContext) -> date | None:
    period = ctx.claim.date("434")
    return period.end if period is not None else None


def _dx_days(ctx: ClaimContext) -> dict[int, tuple[date, ...]]:
    """{diagnosis position: the dates it is judged on}."""
    if ctx.kind == "837I":
        through = _statement_through(ctx)
        if through is None:
            days = [line.date_to for line in ctx.claim.lines if line.date_to is not None]
            through = max(days) if days else None
        return {dx.position: (through,) for dx in ctx.claim.diagnoses} if through else {}
    pointed: dict[int, set[date]] = {}
    every = set()
    for line in ctx.claim.lines:
        if line.date_from is None:
            continue
        every.add(line.date_from)
        for pointer in line.diagnosis_pointers:
            pointed.setdefault(pointer, set()).add(line.date_from)
    return {dx.position: tuple(sorted(pointed.get(dx.position) or every))
            for dx in ctx.claim.diagnoses if pointed.get(dx.position) or every}


def dx_verdicts(ctx: ClaimContext) -> tuple[tuple[Diagnosis, DxVerdict], ...]:
    """Each ICD-10-CM diagnosis with its first failing verdict; worked out once per claim.

    A verdict on a date some release covers (a reject) wins over one judged by
    the nearest release (a warning). Codes without the ICD-10-CM form or dated
    before ICD-10 are the ``snip-diagnosis-code`` rule's to report.
    """
    def compute() -> tuple[tuple[Diagnosis, DxVerdict], ...]:
        sets = code_sets(ctx)
        if sets is None:
            return ()
        days = _dx_days(ctx)
        out = []
        for dx in ctx.claim.diagnoses:
            if dx.qualifier not in ICD10_QUALIFIERS or not ICD10CM.fullmatch(dx.code):
                continue
            failed = [v for v in (sets.diagnosis(dx.code, day)
                                  for day in days.get(dx.position, ()) if day >= ICD10_START)
                      if v.status != OK]
            if failed:
                out.append((dx, min(failed, key=lambda v: not v.covered)))
        return tuple(out)

    return ctx.once("codesets-dx", compute)


def _element(dx: Diagnosis) -> str:
    return f"HI{dx.position:02d}-2" if dx.position <= 12 else "HI"


def _uncovered(verdict: DxVerdict) -> str:
    """The note a warning carries when no loaded release covers the date."""
    year = fiscal_year(verdict.day)
    return (f" No loaded ICD-10-CM release covers {verdict.day:%Y-%m-%d}: checked against the "
            f"nearest, {verdict.release.label()}, so this is a warning. For a verdict, add "
            f"CMS's FY{year} ICD-10-CM file with --icd10cm (docs/codesets.md).")


def _dx_hits(ctx: ClaimContext, status: str, words: Callable[[DxVerdict], str],
             fix: str) -> Iterator[Hit]:
    for dx, verdict in dx_verdicts(ctx):
        if verdict.status != status:
            continue
        message = (f"diagnosis {dotted(dx.code)} ({dx.qualifier}) on "
                   f"{verdict.day:%Y-%m-%d}: {words(verdict)}")
        if verdict.covered:
            yield Hit(message, fix, segment=dx.location, element=_element(dx))
        else:
            yield Hit(message + _uncovered(verdict), fix, segment=dx.location,
                      element=_element(dx), ceiling=WARN)


@rule("dx-unknown", severity=REJECT, stc=("A7", "255"),
      summary="a diagnosis code is in no ICD-10-CM release", source=ICD_SOURCE)
def unknown_diagnosis(ctx: ClaimContext) -> Iterator[Hit]:
    """A diagnosis code that no loaded ICD-10-CM release has is rejected.

    The code has the form of ICD-10-CM but is not a code: a typing error, or a
    code made up from a category. Judged by the release of the date of service.
    Fails: HI*ABK:E1199 on a 20260504 service
    Passes: HI*ABK:E1165 on a 20260504 service
    """
    yield from _dx_hits(
        ctx, UNKNOWN,
        lambda v: f"no such code in {v.release.name}, nor in any other loaded release.",
        "Correct the diagnosis code: look it up in the ICD-10-CM tabular list for the date "
        "of service.")


def _billable_words(verdict: DxVerdict) -> str:
    code = dotted(verdict.code)
    shown = ", ".join(verdict.children[:_SHOWN])
    more = len(verdict.children) - _SHOWN
    listed = shown + (f" and {more} more" if more > 0 else "")
    seventh = (" (the 7th character is missing)"
               if verdict.children and all(len(c.replace(".", "").rstrip("-")) == 7
                                           for c in verdict.children) else "")
    return (f"{code} is a category, not a billable code, in {verdict.release.name}"
            f"{seventh}: {code} has billable codes {listed}.")


@rule("dx-not-billable", severity=REJECT, stc=("A7", "255"),
      summary="a diagnosis code is a category or header, not a billable code",
      source=ICD_SOURCE)
def not_billable(ctx: ClaimContext) -> Iterator[Hit]:
    """A diagnosis must be a billable (leaf) code, not a category with codes below it.

    E11.6 has billable codes below it (E11.65 ...); an injury code needs its
    7th character (S72.001A). The message names the next codes down; one
    ending in "-" has codes below it too.
    Fails: HI*ABK:E116 on a 20260504 service
    Passes: HI*ABK:E1165 on a 20260504 service
    """
    yield from _dx_hits(ctx, NOT_BILLABLE, _billable_words,
                        "Code to the full specificity the record supports: pick one of the "
                        "billable codes named (a code ending in - needs more characters).")


def _in_force_words(verdict: DxVerdict) -> str:
    release = verdict.release
    names = ", ".join(r.name for r in verdict.elsewhere)
    if all(r.start > release.end for r in verdict.elsewhere):
        return (f"not yet in ICD-10-CM on that date ({release.name}); it was added later, "
                f"in {names}.")
    if all(r.end < release.start for r in verdict.elsewhere):
        return (f"no longer in ICD-10-CM on that date ({release.name}); it was deleted "
                f"after {verdict.elsewhere[-1].name}.")
    return f"not in {release.name}, the release of that date; it is in {names}."


@rule("dx-not-in-force", severity=REJECT, stc=("A7", "255"),
      summary="a diagnosis code is not in force on the date (added later or deleted before)",
      source=ICD_SOURCE)
def not_in_force(ctx: ClaimContext) -> Iterator[Hit]:
    """A diagnosis code must be in the ICD-10-CM release of the date of service.

    A code added on October 1 (or in an April update) cannot be billed for
    services before it; a deleted code not for services after. Needs a release
    on each side: the bundled one and the user's CMS file of another year.
    Fails: HI*ABK:E11A on a 20250501 service, with FY2025 loaded (E11.A came in FY2026)
    Passes: HI*ABK:E119 on a 20250501 service, with FY2025 loaded
    """
    yield from _dx_hits(ctx, NOT_IN_FORCE, _in_force_words,
                        "Code the diagnosis with the code set of the date of service (the "
                        "replacement code, or the one in force then).")


# -- procedures ------------------------------------------------------------------------------

HCPCS_SOURCE = "CMS HCPCS Level II quarterly file (the user's, --hcpcs; see docs/codesets.md)"


def _hcpcs_lines(ctx: ClaimContext, status: str
                 ) -> Iterator[tuple[ServiceLine, HcpcsVerdict]]:
    """The Level II lines whose verdict is ``status``; none without a HCPCS file."""
    sets = ctx.resource("codesets", CodeSets)
    if sets is None or not sets.has_hcpcs:
        return
    for line in ctx.claim.lines:
        day = _line_day(ctx, line)
        if line.procedure_qualifier != "HC" or day is None or \
                not HCPCS.fullmatch(line.procedure):
            continue
        verdict = sets.hcpcs(line.procedure, day)
        if verdict is not None and verdict.status == status:
            yield line, verdict


@rule("hcpcs-unknown", severity=REJECT, stc=("A7", "454"),
      summary="a HCPCS Level II code is not in the HCPCS file", source=HCPCS_SOURCE)
def unknown_hcpcs(ctx: ClaimContext) -> Iterator[Hit]:
    """A Level II code (a letter and four digits) must be in CMS's HCPCS file.

    Only with ``--hcpcs``. A line dated outside the quarters of the files given
    gets a warning: the code may be newer than the files.
    Fails: SV1*HC:A9999 on 20250203, with the HCPCS file of January 2025
    Passes: SV1*HC:J1100 on 20250203, with the HCPCS file of January 2025
    """
    for line, verdict in _hcpcs_lines(ctx, UNKNOWN):
        message = f"line {line.number} procedure {line.procedure} is not a HCPCS code"
        if verdict.covered:
            yield Hit(message + " in CMS's HCPCS file.", "Correct the procedure code.", line=line,
                      element=procedure_element(ctx.kind))
        else:
            yield Hit(f"{message} in the HCPCS files given, none of which is of the quarter "
                      f"of {verdict.day:%Y-%m-%d}, so this is a warning: add that quarter's "
                      "file with --hcpcs.",
                      "Correct the procedure code, or check it in the current HCPCS file.",
                      line=line, element=procedure_element(ctx.kind), ceiling=WARN)


@rule("hcpcs-not-in-force", severity=REJECT, stc=("A7", "454"),
      summary="a HCPCS Level II code was added after, or terminated before, the line's date",
      source=HCPCS_SOURCE)
def hcpcs_not_in_force(ctx: ClaimContext) -> Iterator[Hit]:
    """A Level II code is billable from its added date through its termination date.

    Only with ``--hcpcs``; the dates are the file's (code added date, termination date).
    Fails: SV1*HC:G0999 on 20250203, terminated 20241231 in the HCPCS file
    Passes: SV1*HC:G0008 on 20250203, in force in the HCPCS file
    """
    for line, verdict in _hcpcs_lines(ctx, NOT_IN_FORCE):
        if verdict.terminated is not None and verdict.terminated < verdict.day:
            when = f"was terminated on {verdict.terminated:%Y-%m-%d}"
        else:
            when = f"takes effect only on {verdict.added:%Y-%m-%d}" if verdict.added else \
                "is not in force"
        yield Hit(f"line {line.number} procedure {line.procedure} {when}; the line is dated "
                  f"{verdict.day:%Y-%m-%d}",
                  "Bill the code in force on the date of service (the HCPCS file names the "
                  "replacement of a terminated code), or correct the date.", line=line,
                  element=procedure_element(ctx.kind))


@rule("cpt-unknown", severity=REJECT, stc=("A7", "454"),
      summary="a CPT code is not in the licensed CPT list given",
      source="AMA CPT, the user's licensed code list (--cpt; we ship none, see "
             "docs/codesets.md)")
def unknown_cpt(ctx: ClaimContext) -> Iterator[Hit]:
    """A CPT code (five digits, or four and F/T/U) must be in the user's CPT list.

    CPT is the AMA's copyright, so no list ships: only with ``--cpt``; without
    it CPT codes are checked by form (``snip-procedure-code``).
    Fails: SV1*HC:99199 with a CPT list that does not have it
    Passes: SV1*HC:99213 with a CPT list that has it
    """
    sets = ctx.resource("codesets", CodeSets)
    if sets is None or not sets.has_cpt:
        return
    for line in ctx.claim.lines:
        if line.procedure_qualifier == "HC" and CPT.fullmatch(line.procedure) and \
                sets.cpt_known(line.procedure) is False:
            yield Hit(f"line {line.number} procedure {line.procedure} is not in the CPT code "
                      "list given", "Correct the procedure code; if the code is new, update "
                      "the CPT list (--cpt).", line=line, element=procedure_element(ctx.kind))
