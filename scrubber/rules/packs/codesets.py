"""Code sets: the diagnosis and procedure codes exist, are billable and in force on the date.

Source: CMS's ICD-10-CM releases (the April 1, 2026 update ships in
``simple-icd-10-cm``; other fiscal years and updates come from the user's CMS
files), CMS's HCPCS Level II quarterly files and a licensed user's CPT list,
installed with ``scrub data add`` (or named for one run: ``--icd10cm``,
``--hcpcs``, ``--cpt``); scrubber.codesets indexes them and the engine hands
them to the rules as the resource "codesets". Without files the bundled
ICD-10-CM release is used, so diagnoses are checked out of the box.

Dates: an 837I claim's diagnoses are judged on the statement period's
through date (DTP*434), as CMS picks the ICD-10-CM version of an institutional
claim; an 837P diagnosis on the date of each line that points at it (SV107),
an unpointed one on every line's date. A date no installed release covers is
judged by the nearest release: ``codeset-uncovered`` reports what it finds
(a warning by default), and the run says once which dates are not covered.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import date
from pathlib import Path

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
from scrubber.codesets.files import (
    CPT,
    HCPCS,
    ICD10CM,
    LIBRARY,
    CodeSetError,
    bundled_code_list,
    bundled_release,
    quarter_of,
    recognize_cpt,
    recognize_hcpcs,
    recognize_icd10cm,
)
from scrubber.model.claims import Diagnosis, ServiceLine, procedure_element
from scrubber.rules.context import ClaimContext
from scrubber.rules.findings import Notice
from scrubber.rules.packs.snip import ICD10_QUALIFIERS, ICD10_START
from scrubber.rules.registry import REJECT, WARN, Hit, rule
from scrubber.rules.resources import (
    Release,
    ResourceError,
    ResourceKind,
    ResourceOption,
    resource_kind,
)

ORDER = 40  # where this pack comes in `scrub rules` (scrubber.rules.registry.Pack)
FIXTURES = "codesets"  # its rules' fixtures, scrubbed with the files beside them

_SHOWN = 12  # billable codes named in a message; the rest are counted


def _load(given: Mapping[str, tuple[str, ...]]) -> CodeSets | None:
    """The code sets the options name, with the bundled release; None when none is named."""
    from scrubber.codesets import load_codesets

    if not any(given.values()):
        return None
    try:
        return load_codesets(icd10cm=given["icd10cm"], hcpcs=given["hcpcs"], cpt=given["cpt"])
    except CodeSetError as exc:
        raise ResourceError(f"code sets: {exc}") from None


def _told(tell: Callable[[Path], Release | None]) -> Callable[[Path], Release | None]:
    """A recognizer whose CodeSetError (a code-set file that cannot be used) is a
    ResourceError, as ``scrub data add`` expects."""
    def recognize(path: Path) -> Release | None:
        try:
            return tell(path)
        except CodeSetError as exc:
            raise ResourceError(f"code sets: {exc}") from None

    return recognize


def _icd10cm_release(path: Path) -> Release | None:
    found = recognize_icd10cm(path)
    return Release("icd10cm", found.name, found.start, found.end) if found else None


def hcpcs_label(window: tuple[date, date]) -> str:
    """"HCPCS 2025 January quarter": how a quarterly file is named for people."""
    return f"HCPCS {window[0].year} {window[0]:%B} quarter"


def _hcpcs_release(path: Path) -> Release | None:
    window = recognize_hcpcs(path)
    return Release("hcpcs", hcpcs_label(window), *window) if window else None


def _cpt_release(path: Path) -> Release | None:
    return Release("cpt", f"CPT code list {path.name}", None) if recognize_cpt(path) else None


def _bundled_releases() -> tuple[Release, ...]:
    """The ICD-10-CM release simple-icd-10-cm ships (none when the library is missing)."""
    try:
        found = bundled_release(*bundled_code_list())
    except CodeSetError:
        return ()
    return (Release("icd10cm", f"{found.name} (bundled: {found.source})", found.start,
                    found.end),)


def _in_use(loaded: object | None) -> tuple[str, ...]:
    """The releases the rules judge by: the run's code sets, else the bundled release."""
    sets = loaded if isinstance(loaded, CodeSets) else bundled()
    if sets is None:
        return ()
    said = [f"{r.name} ({'bundled with ' if r.source.startswith(LIBRARY) else ''}"
            f"{Path(r.source).name})" for r in sets.releases]
    said += [hcpcs_label(window) for window in sets.hcpcs_windows]
    return (*said, *(["CPT code list"] if sets.has_cpt else []))


resource_kind(ResourceKind("codesets", (
    ResourceOption("icd10cm", "CMS ICD-10-CM 'code descriptions in tabular order' file (zip "
                              "or icd10cm_order_YYYY.txt) of a fiscal year the bundled "
                              "release does not cover; repeatable. See docs/codesets.md.",
                   recognize=_told(_icd10cm_release), bundled=_bundled_releases),
    ResourceOption("hcpcs", "CMS HCPCS Level II quarterly file (zip or HCPC20xx_..._ANWEB "
                            ".txt); repeatable. See docs/codesets.md.",
                   recognize=_told(_hcpcs_release)),
    ResourceOption("cpt", "a licensed CPT code list, one code a line; without it CPT codes "
                          "are checked by form only.", recognize=_told(_cpt_release)),
), _load, label="code sets (ICD-10-CM, HCPCS, CPT)", in_use=_in_use))

ICD_SOURCE = ("CMS ICD-10-CM, the release of the date of service (April 1, 2026 bundled by "
              "simple-icd-10-cm; other years and updates from scrub data add, see "
              "docs/codesets.md)")


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

    A verdict on a date some release covers (the dx-* rules') wins over one judged
    by the nearest release (``codeset-uncovered``'s). Codes without the ICD-10-CM
    form or dated before ICD-10 are the ``snip-diagnosis-code`` rule's to report.
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


def _dx_message(dx: Diagnosis, verdict: DxVerdict) -> str:
    words, _ = _DX_WORDS[verdict.status]
    return f"diagnosis {dotted(dx.code)} ({dx.qualifier}) on {verdict.day:%Y-%m-%d}: " \
           f"{words(verdict)}"


def _dx_hits(ctx: ClaimContext, status: str) -> Iterator[Hit]:
    """The hits of one dx-* rule: its verdicts on dates an installed release covers (the
    others are codeset-uncovered's)."""
    for dx, verdict in dx_verdicts(ctx):
        if verdict.status == status and verdict.covered:
            yield Hit(_dx_message(dx, verdict), _DX_WORDS[status][1], segment=dx.location,
                      element=_element(dx))


@rule("dx-unknown", severity=REJECT, stc=("A7", "255"),
      summary="a diagnosis code is in no ICD-10-CM release", source=ICD_SOURCE)
def unknown_diagnosis(ctx: ClaimContext) -> Iterator[Hit]:
    """A diagnosis code that no loaded ICD-10-CM release has is rejected.

    The code has the form of ICD-10-CM but is not a code: a typing error, or a
    code made up from a category. Judged by the release of the date of service.
    Fails: HI*ABK:E1199 on a 20260504 service
    Passes: HI*ABK:E1165 on a 20260504 service
    """
    yield from _dx_hits(ctx, UNKNOWN)


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
    yield from _dx_hits(ctx, NOT_BILLABLE)


def _in_force_words(verdict: DxVerdict) -> str:
    release = verdict.release
    names = ", ".join(r.name for r in verdict.elsewhere)
    if all(r.start > min(release.end, verdict.day) for r in verdict.elsewhere):
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
    yield from _dx_hits(ctx, NOT_IN_FORCE)


# what each verdict says of a diagnosis, and what to do about it
_DX_WORDS: dict[str, tuple[Callable[[DxVerdict], str], str]] = {
    UNKNOWN: (lambda v: f"no such code in {v.release.name}, nor in any other installed "
                        "release.",
              "Correct the diagnosis code: look it up in the ICD-10-CM tabular list for the "
              "date of service."),
    NOT_BILLABLE: (_billable_words,
                   "Code to the full specificity the record supports: pick one of the billable "
                   "codes named (a code ending in - needs more characters)."),
    NOT_IN_FORCE: (_in_force_words,
                   "Code the diagnosis with the code set of the date of service (the "
                   "replacement code, or the one in force then)."),
}


# -- procedures ------------------------------------------------------------------------------

HCPCS_SOURCE = ("CMS HCPCS Level II quarterly files (the user's, scrub data add or --hcpcs; "
                "see docs/codesets.md)")


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

    Only with HCPCS files installed (or ``--hcpcs``). A line dated outside the
    quarters of the files is ``codeset-uncovered``'s: the code may be newer
    than the files.
    Fails: SV1*HC:A9999 on 20250203, with the HCPCS file of January 2025
    Passes: SV1*HC:J1100 on 20250203, with the HCPCS file of January 2025
    """
    for line, verdict in _hcpcs_lines(ctx, UNKNOWN):
        if verdict.covered:
            yield Hit(f"line {line.number} procedure {line.procedure} is not a HCPCS code in "
                      "CMS's HCPCS file.", "Correct the procedure code.", line=line,
                      element=procedure_element(ctx.kind))


@rule("hcpcs-not-in-force", severity=REJECT, stc=("A7", "454"),
      summary="a HCPCS Level II code was added after, or terminated before, the line's date",
      source=HCPCS_SOURCE)
def hcpcs_not_in_force(ctx: ClaimContext) -> Iterator[Hit]:
    """A Level II code is billable from its added date through its termination date.

    Only with HCPCS files installed (or ``--hcpcs``); the dates are the file's (code
    added date, termination date), of the newest quarter on or before the line's date
    that lists the code.
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
      source="AMA CPT, the user's licensed code list (scrub data add or --cpt; we ship "
             "none, see docs/codesets.md)")
def unknown_cpt(ctx: ClaimContext) -> Iterator[Hit]:
    """A CPT code (five digits, or four and F/T/U) must be in the user's CPT list.

    CPT is the AMA's copyright, so no list ships: only with the user's list installed
    (``scrub data add``, or ``--cpt``); without
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
                      "the CPT list (scrub data add).", line=line,
                      element=procedure_element(ctx.kind))


# -- dates no installed release covers ---------------------------------------------------------

def _quarter_words(day: date) -> tuple[str, date, date]:
    """("2026 October", first day, last day) of the calendar quarter of ``day``."""
    start, end = quarter_of(day)
    return f"{start:%B} {start.year}", start, end


def _uncovered_days(ctx: ClaimContext, sets: CodeSets) -> dict[str, tuple[date, ...]]:
    """{"ICD-10-CM" / "HCPCS": the claim's dates of service that no installed release of
    that code set covers}; a code set the run has no file of is not asked."""
    out: dict[str, tuple[date, ...]] = {}
    icd = {dx.position for dx in ctx.claim.diagnoses if dx.qualifier in ICD10_QUALIFIERS}
    days = {day for position, found in _dx_days(ctx).items() if position in icd
            for day in found if day >= ICD10_START and not sets.release_for(day)[1]}
    if days:
        out["ICD-10-CM"] = tuple(sorted(days))
    if sets.has_hcpcs:
        lines = {day for line in ctx.claim.lines
                 if line.procedure_qualifier == "HC" and HCPCS.fullmatch(line.procedure)
                 and (day := _line_day(ctx, line)) is not None
                 and not any(start <= day <= end for start, end in sets.hcpcs_windows)}
        if lines:
            out["HCPCS"] = tuple(sorted(lines))
    return out


def _notice(code_set: str, day: date) -> Notice:
    """What the run says once for each fiscal year (ICD-10-CM) or quarter (HCPCS) no
    installed release covers."""
    if code_set == "ICD-10-CM":
        year = fiscal_year(day)
        return Notice(
            f"codeset-uncovered-icd10cm-FY{year}",
            f"No installed ICD-10-CM release covers dates of service in FY{year} "
            f"({year - 1}-10-01 to {year}-09-30): the diagnoses of claims dated then were "
            "checked against the nearest installed release (what it finds wrong: "
            f"codeset-uncovered). Add CMS's FY{year} ICD-10-CM file (the code descriptions "
            "in tabular order zip, as downloaded) with: scrub data add FILE "
            "(docs/codesets.md).",
            source="codeset-uncovered")
    name, start, end = _quarter_words(day)
    return Notice(
        f"codeset-uncovered-hcpcs-{start:%Y-%m}",
        f"No installed HCPCS file is of the {name} quarter ({start:%Y-%m-%d} to "
        f"{end:%Y-%m-%d}): Level II codes on lines dated then were checked against the files "
        "of other quarters (what they miss: codeset-uncovered). Add that quarter's HCPCS "
        "file (the zip, as downloaded) with: scrub data add FILE (docs/codesets.md).",
        source="codeset-uncovered")


@rule("codeset-uncovered", severity=WARN, stc=("A7", "21"),
      summary="on a date no installed code-set release covers, the nearest release finds a "
              "code wrong",
      source="the installed code-set releases (scrub data status; docs/data.md)")
def uncovered(ctx: ClaimContext) -> Iterator[Hit | Notice]:
    """On a date no installed release covers, the nearest release finds a code wrong.

    No installed ICD-10-CM release (or HCPCS file, when any is installed) covers a
    date of service, so the codes are checked against the nearest release: what it
    finds is likely, not certain, and this rule reports it (a warning by default; a
    payer profile may reject it: ``<rule id="codeset-uncovered" severity="reject"/>``).
    That the date is not covered is said once for the run, in a notice per fiscal
    year or quarter with the claims counted, not on every claim.
    Fails: HI*ABK:E116 on a 20261102 service, after every installed ICD-10-CM release
    Passes: HI*ABK:I10 on a 20261102 service (the run's notice alone)
    """
    sets = code_sets(ctx)
    if sets is None:
        return
    notices: dict[str, Notice] = {}
    for code_set, days in _uncovered_days(ctx, sets).items():
        for day in days:
            notice = _notice(code_set, day)
            notices.setdefault(notice.key, notice)
    if not notices:
        return
    yield from notices.values()
    for dx, verdict in dx_verdicts(ctx):
        if not verdict.covered:
            yield Hit(f"{_dx_message(dx, verdict)} No installed release covers "
                      f"{verdict.day:%Y-%m-%d}: judged by the nearest, {verdict.release.name}.",
                      _DX_WORDS[verdict.status][1] + " Install the release of the date for a "
                      "verdict (scrub data add).", segment=dx.location, element=_element(dx))
    for line, found in _hcpcs_lines(ctx, UNKNOWN):
        if not found.covered:
            yield Hit(f"line {line.number} procedure {line.procedure} is not in the installed "
                      f"HCPCS files, none of which is of the quarter of {found.day:%Y-%m-%d}.",
                      "Correct the procedure code, or install the HCPCS file of that quarter "
                      "(scrub data add): the code may be newer than the files.", line=line,
                      element=procedure_element(ctx.kind))
