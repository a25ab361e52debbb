"""Diagnosis coding conventions: the ICD-10-CM Tabular List's notes and the Medicare Code Editor.

Sources: the ICD-10-CM Tabular List (the release of the date of service: the
one simple-icd-10-cm bundles, or CMS's tabular XML the user adds with ``scrub
data add`` / ``--icd10cm-tabular``; scrubber.diagnoses reads it), the ICD-10-CM
Official Guidelines for Coding and Reporting (section I.A.12 Excludes1, I.A.13
etiology/manifestation, I.C.20 external causes) and, for inpatient 837I claims,
the edits of CMS's Medicare Code Editor (Definitions of Medicare Code Edits:
age and sex conflicts, unacceptable principal diagnosis) whose lists are profile
lists. The diagnoses read are the ICD-10-CM ones of the claim's HI segments
(principal ABK, others ABF), in their order.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import date
from functools import lru_cache
from pathlib import Path

from scrubber.diagnoses import Conventions, TabularError, Tabulars
from scrubber.diagnoses.tabular import dotted
from scrubber.model.claims import Diagnosis
from scrubber.rules.context import ClaimContext
from scrubber.rules.findings import Notice
from scrubber.rules.registry import REJECT, WARN, Hit, rule
from scrubber.rules.resources import (
    Release,
    ResourceError,
    ResourceKind,
    ResourceOption,
    resource_kind,
)

ORDER = 42  # after the code sets (scrubber.rules.registry.Pack)
FIXTURES = "diagnoses"  # its rules' fixtures, scrubbed with the bundled tabular
KIND = "icd10cm-tabular"
ICD10 = frozenset({"ABK", "ABF"})
INSTITUTIONAL = ("837I",)


def _load(given: Mapping[str, tuple[str, ...]]) -> Tabulars | None:
    from scrubber.diagnoses import load_tabulars

    if not given.get(KIND):
        return None
    try:
        return load_tabulars(given[KIND])
    except TabularError as exc:
        raise ResourceError(f"ICD-10-CM tabular: {exc}") from None


def recognize(path: Path) -> Release | None:
    """CMS's tabular XML (icd10cm-tabular-2026.xml) or the zip holding it, and its release."""
    from scrubber.diagnoses.tabular import looks_like, release_of

    if not looks_like(path):
        return None
    try:
        found = release_of(path)
    except TabularError as exc:
        raise ResourceError(str(exc)) from None
    return Release(KIND, f"{found.name} tabular", found.start, found.end)


@lru_cache(maxsize=1)
def bundled() -> Tabulars | None:
    """The bundled tabular, indexed once per process (None when the library is missing)."""
    from scrubber.diagnoses import load_tabulars

    try:
        return load_tabulars()
    except TabularError:
        return None


resource_kind(ResourceKind(KIND, (
    ResourceOption(KIND, "CMS ICD-10-CM Tabular List XML (icd10cm-tabular-YYYY.xml, or the "
                         "'Code Tables, Tabular and Index' zip holding it), repeatable; "
                         "without it the release simple-icd-10-cm bundles. See "
                         "docs/diagnoses.md.", recognize=recognize),
), _load, label="ICD-10-CM Tabular List", in_use=lambda found: _in_use(found)))


def _in_use(found: object | None) -> tuple[str, ...]:
    """The tabular releases the rules judge by: the run's, else the bundled one."""
    tabular = found if isinstance(found, Tabulars) else bundled()
    return (tabular.label(),) if tabular is not None else ()

SOURCE = "ICD-10-CM Official Guidelines {} and the Tabular List (see docs/diagnoses.md)"
MCE = ("CMS Medicare Code Editor, Definitions of Medicare Code Edits: {} (the profile list "
       "{}; see docs/diagnoses.md)")


def tabulars(ctx: ClaimContext) -> Tabulars | None:
    return ctx.resource(KIND, Tabulars) or bundled()


def _day(ctx: ClaimContext) -> date | None:
    days = [day for _, day in ctx.dated_lines()]
    if days:
        return min(days)
    statement = ctx.claim.date("434")
    return statement.start if statement is not None else None


def coded(ctx: ClaimContext) -> tuple[tuple[Diagnosis, Conventions | None], ...] | Notice:
    """The claim's ICD-10-CM diagnoses in order, each with its conventions; worked out once.
    A Notice when no tabular can be opened (the run says it once)."""
    def compute() -> tuple[tuple[Diagnosis, Conventions | None], ...] | Notice:
        found = tabulars(ctx)
        if found is None:
            return Notice("no-icd10cm-tabular", "not checked: the ICD-10-CM conventions (no "
                          "tabular: simple-icd-10-cm is not installed and none was added)",
                          source=KIND)
        tabular = found.for_day(_day(ctx))
        return tuple((dx, tabular.conventions(dx.code)) for dx in ctx.claim.diagnoses
                     if dx.qualifier in ICD10 and dx.code)

    return ctx.once("dx-conventions", compute)


def _element(dx: Diagnosis) -> str:
    return f"HI{dx.position:02d}-2" if dx.position <= 12 else "HI"


@rule("dx-excludes1", severity=WARN, stc=("A7", "255"),
      summary="two diagnoses of the claim exclude each other (an Excludes1 note)",
      source=SOURCE.format("I.A.12.a (Excludes1)"))
def excludes1(ctx: ClaimContext) -> Iterator[Hit | Notice]:
    """An Excludes1 note means "not coded here": the two codes are not reported together.

    The note of a code, or of its category, section or chapter, names codes that
    never go with it (a congenital form and an acquired one). The guidelines
    allow both when the two conditions are unrelated, so this is a warning.
    Fails: HI*ABK:E119*ABF:E0800 (E11's Excludes1 names E08.-)
    Passes: HI*ABK:E119*ABF:I10
    """
    found = coded(ctx)
    if isinstance(found, Notice):
        yield found
        return
    seen = set()
    for n, (dx, conventions) in enumerate(found):
        if conventions is None:
            continue
        for other, other_conventions in found[n + 1:]:
            code, partner = dx.code.upper(), other.code.upper()
            if code == partner or (code, partner) in seen:
                continue
            note = conventions.excluded(partner)
            owner = dx
            if note is None and other_conventions is not None:
                note, owner = other_conventions.excluded(code), other
            if note is None:
                continue
            seen.add((code, partner))
            excluded = other if owner is dx else dx
            yield Hit(f"{dotted(excluded.code)} is excluded by an Excludes1 note of "
                      f"{dotted(owner.code)} (\"{note}\"): the two are not coded together.",
                      "Keep the code that describes the condition; report both only when the "
                      "two conditions are unrelated (then document it).",
                      segment=excluded.location, element=_element(excluded))


def _conditional(note: str) -> bool:
    """A Code-first note that applies only if the condition exists ("any associated",
    "if applicable"), not one every use of the code needs."""
    lower = note.lower()
    return "if applicable" in lower or lower.startswith("any ") or "any associated" in lower


def _such_as(note: str) -> bool:
    """A note whose codes are examples ("underlying disease, such as:"), not a closed list."""
    return "such as" in note.lower() or not any(c in note for c in "()")


@rule("dx-manifestation-first", severity=REJECT, stc=("A7", "255"),
      summary="a manifestation (\"code first\") diagnosis is listed before its etiology",
      source=SOURCE.format("I.A.13 (etiology/manifestation convention)"))
def manifestation_first(ctx: ClaimContext) -> Iterator[Hit | Notice]:
    """A code with a "code first" note follows the condition that caused it.

    Listed first (the principal or first-listed diagnosis), or after a code its
    note names as the underlying condition, it is out of sequence. Codes whose
    title says "in diseases classified elsewhere" are never first-listed (the
    Medicare Code Editor returns them): a reject; other code-first codes (E08,
    D63.1 ...), a warning. A conditional note ("code first any associated ...",
    "if applicable") counts only when the condition it names is on the claim.
    Fails: HI*ABK:G63*ABF:E1140 (G63 "in diseases classified elsewhere" first)
    Passes: HI*ABK:E1140*ABF:G63
    """
    found = coded(ctx)
    if isinstance(found, Notice):
        yield found
        return
    for n, (dx, conventions) in enumerate(found):
        if conventions is None or not conventions.code_first:
            continue
        later = [other for other, _ in found[n + 1:]]
        for note, refs in conventions.code_first:
            after = [o for o in later if any(r.matches(o.code.upper()) for r in refs)]
            if after:
                why = (f"{dotted(after[0].code)}, which its note names as the condition to "
                       "code first, is listed after it")
            elif n == 0 and not _conditional(note):
                why = "it is listed first"
            else:
                continue
            yield Hit(f"{dotted(dx.code)} carries a \"code first {note}\" note, but {why}.",
                      "List the underlying condition (the etiology) before this code; "
                      "never as the first diagnosis.", segment=dx.location,
                      element=_element(dx),
                      ceiling=None if conventions.manifestation else WARN)
            break


@rule("dx-etiology-missing", severity=WARN, stc=("A7", "255"),
      summary="a manifestation diagnosis without the underlying condition its note names",
      source=SOURCE.format("I.A.13 (etiology/manifestation convention)"))
def etiology_missing(ctx: ClaimContext) -> Iterator[Hit | Notice]:
    """A manifestation code is reported with its etiology.

    When its "code first" note names the underlying conditions outright (no
    "such as"), one of them must be on the claim; when the note only gives
    examples, some other diagnosis must be. Conditional notes ("any associated",
    "if applicable") are not required.
    Fails: HI*ABK:I10*ABF:D631 (D63.1: code first chronic kidney disease N18.-)
    Passes: HI*ABK:N184*ABF:D631
    """
    found = coded(ctx)
    if isinstance(found, Notice):
        yield found
        return
    codes = [dx.code.upper() for dx, _ in found]
    for dx, conventions in found:
        if conventions is None:
            continue
        for note, refs in conventions.code_first:
            if _conditional(note):
                continue
            others = [c for c in codes if c != dx.code.upper()]
            if _such_as(note) or not refs:
                missing = not others
            else:
                missing = not any(r.matches(c) for r in refs for c in others)
            if missing:
                yield Hit(f"{dotted(dx.code)} is a manifestation (\"code first {note}\") and the "
                          "claim lists no underlying condition for it.",
                          "Add the diagnosis of the underlying condition, listed before it.",
                          segment=dx.location, element=_element(dx))
                break


@rule("dx-external-cause-first", severity=REJECT, stc=("A7", "255"),
      summary="an external cause code (V00-Y99) is the first-listed or principal diagnosis",
      source=SOURCE.format("I.C.20 (external causes are never first-listed); Medicare Code "
                           "Editor: external causes of morbidity as principal diagnosis"))
def external_cause_first(ctx: ClaimContext) -> Iterator[Hit]:
    """External cause codes (V00-Y99) say how an injury happened; they never come first.

    The first diagnosis must be the injury or condition treated.
    Fails: HI*ABK:W010XXA*ABF:S52501A
    Passes: HI*ABK:S52501A*ABF:W010XXA
    """
    for dx in ctx.claim.diagnoses:
        if dx.qualifier not in ICD10:
            continue
        if dx.qualifier == "ABK" and dx.code[:1].upper() in "VWXY":
            yield Hit(f"{dotted(dx.code)}, an external cause code (V00-Y99), is the "
                      f"{'principal' if ctx.kind == '837I' else 'first-listed'} diagnosis.",
                      "List the injury or condition treated first; the external cause goes "
                      "after it (on an 837I, in its own HI*ABN).", segment=dx.location,
                      element=_element(dx))
        return


@rule("dx-duplicate", severity=WARN, stc=("A7", "255"),
      summary="the same diagnosis code is listed twice on the claim",
      source="ICD-10-CM Official Guidelines I.B.12 (a code is reported once for an "
             "encounter); Medicare Code Editor: duplicate of the principal diagnosis")
def duplicate(ctx: ClaimContext) -> Iterator[Hit]:
    """A diagnosis code is reported once; a repeat takes a place another could use.

    The admitting diagnosis and the reason for visit (ABJ, APR) may repeat the
    principal and are not compared.
    Fails: HI*ABK:E119*ABF:I10*ABF:E119
    Passes: HI*ABK:E119*ABF:I10
    """
    seen: dict[str, Diagnosis] = {}
    for dx in ctx.claim.diagnoses:
        if dx.qualifier not in ICD10 or not dx.code:
            continue
        code = dx.code.upper().replace(".", "")
        if code in seen:
            yield Hit(f"{dotted(dx.code)} is listed twice (diagnoses {seen[code].position} and "
                      f"{dx.position}).",
                      "Remove the repeat; point the lines at the one left (SV107).",
                      segment=dx.location, element=_element(dx))
        else:
            seen[code] = dx


# -- the Medicare Code Editor (inpatient 837I) -----------------------------------------------

def _inpatient(ctx: ClaimContext) -> bool:
    return ctx.claim.facility_code[:2] in ctx.profile.list("inpatient-bill-types")


def _admitted(ctx: ClaimContext) -> date | None:
    for qualifier in ("435", "434"):
        found = ctx.claim.date(qualifier)
        if found is not None and found.start is not None:
            return found.start
    return None


def _age(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


AGES = (("mce-newborn-diagnoses", 0, 0, "a newborn (perinatal) diagnosis, age 0"),
        ("mce-pediatric-diagnoses", 0, 17, "a pediatric diagnosis, ages 0 to 17"),
        ("mce-maternity-diagnoses", 9, 64, "a maternity diagnosis, ages 9 to 64"),
        ("mce-adult-diagnoses", 15, 124, "an adult diagnosis, ages 15 to 124"))


@rule("mce-age-conflict", severity=REJECT, stc=("A7", "255"), claim_kinds=INSTITUTIONAL,
      summary="an inpatient diagnosis the Medicare Code Editor limits to other ages",
      source=MCE.format("age conflict", "mce-newborn/pediatric/maternity/adult-diagnoses"))
def age_conflict(ctx: ClaimContext) -> Iterator[Hit]:
    """Newborn, pediatric, maternity and adult diagnoses fit only patients of their ages.

    The age is the patient's (DMG02) on the admission date (DTP*435, else the
    statement's first day). Inpatient bills only (the profile list
    inpatient-bill-types: 011x).
    Fails: CLM05 11:A:1, patient born 19720314, HI*ABK:O80 (maternity, age 54) ... aged 70
    Passes: the same diagnosis for a patient aged 30
    """
    patient = ctx.record.patient
    admitted = _admitted(ctx)
    if not _inpatient(ctx) or patient is None or patient.birth_date is None or \
            admitted is None:
        return
    age = _age(patient.birth_date, admitted)
    for dx in ctx.claim.diagnoses:
        if dx.qualifier not in ICD10:
            continue
        for name, low, high, words in AGES:
            if ctx.profile.list(name).prefixes(dx.code) and not low <= age <= high:
                yield Hit(f"{dotted(dx.code)} is {words} (Medicare Code Editor), but the "
                          f"patient is {age} on admission ({admitted:%Y-%m-%d}).",
                          "Check the diagnosis and the patient's birth date (DMG02); correct "
                          "whichever is wrong.", segment=dx.location, element=_element(dx))
                break


@rule("mce-sex-conflict", severity=REJECT, stc=("A7", "255"), claim_kinds=INSTITUTIONAL,
      summary="an inpatient diagnosis the Medicare Code Editor limits to the other sex",
      source=MCE.format("sex conflict", "mce-female-diagnoses, mce-male-diagnoses"))
def sex_conflict(ctx: ClaimContext) -> Iterator[Hit]:
    """Diagnoses for females only and for males only fit the patient's sex (DMG03).

    A patient sent as U (unknown) is not judged. Inpatient bills only.
    Fails: CLM05 11:A:1, DMG03 M, HI*ABK:N736 (female pelvic adhesions)
    Passes: the same diagnosis, DMG03 F
    """
    patient = ctx.record.patient
    if not _inpatient(ctx) or patient is None or patient.gender not in ("F", "M"):
        return
    other = "mce-male-diagnoses" if patient.gender == "F" else "mce-female-diagnoses"
    for dx in ctx.claim.diagnoses:
        if dx.qualifier in ICD10 and ctx.profile.list(other).prefixes(dx.code):
            only = "males" if patient.gender == "F" else "females"
            yield Hit(f"{dotted(dx.code)} is a diagnosis for {only} only (Medicare Code "
                      f"Editor), but the patient is sent as {patient.gender} (DMG03).",
                      "Check the diagnosis and the patient's sex (DMG03); correct whichever "
                      "is wrong.", segment=dx.location, element=_element(dx))


@rule("mce-unacceptable-principal", severity=REJECT, stc=("A7", "255"),
      claim_kinds=INSTITUTIONAL,
      summary="an inpatient principal diagnosis the Medicare Code Editor does not accept",
      source=MCE.format("unacceptable principal diagnosis", "mce-unacceptable-principal"))
def unacceptable_principal(ctx: ClaimContext) -> Iterator[Hit]:
    """Some codes describe a circumstance, not the reason for the admission.

    Status, history and body mass index codes and the outcome of delivery are
    never the principal diagnosis of an inpatient stay. Inpatient bills only.
    Fails: CLM05 11:A:1, HI*ABK:Z6841 (body mass index)
    Passes: CLM05 11:A:1, HI*ABK:E6601*ABF:Z6841
    """
    if not _inpatient(ctx):
        return
    for dx in ctx.claim.diagnoses:
        if dx.qualifier != "ABK":
            continue
        if ctx.profile.list("mce-unacceptable-principal").prefixes(dx.code):
            yield Hit(f"{dotted(dx.code)} is not acceptable as the principal diagnosis of an "
                      "inpatient stay (Medicare Code Editor).",
                      "Make the condition chiefly responsible for the admission the principal "
                      "diagnosis; report this code as a secondary one.",
                      segment=dx.location, element=_element(dx))
        return
