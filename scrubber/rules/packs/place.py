"""Place of service and CLIA: where a professional service was given, and the lab's certificate.

Sources: CMS's Place of Service Code Set (public domain; a copy ships, a payer's
own table replaces it with ``--pos``), the telehealth billing instructions
(POS 02 and 10 with the telehealth modifier a payer expects: the profile lists
telehealth-places and telehealth-modifiers), the PPRRVU file's non-facility NA
flags (``--pfs-rvu``), and CLIA: CMS's waived-test list (``--clia-waived``), a
lab certification code file (``--clia-codes``) and the HCPCS file's LABCERT
(``--hcpcs``). All of it concerns 837P claims: an 837I has no place of service
code, and its CLIA number travels elsewhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import date
from pathlib import Path

from scrubber.codesets import CodeSets
from scrubber.codesets.clia import CliaError, CliaLists
from scrubber.codesets.places import SHIPPED_TABLE, PlaceError, PlaceTable
from scrubber.model.claims import ServiceLine, service_element
from scrubber.pfs import RvuTable
from scrubber.rules.context import ClaimContext
from scrubber.rules.packs.pfs import NONFACILITY_NA_GATE
from scrubber.rules.registry import REJECT, WARN, Gate, Hit, rule
from scrubber.rules.resources import (
    Release,
    ResourceError,
    ResourceKind,
    ResourceOption,
    resource_kind,
)

ORDER = 55  # where this pack comes in `scrub rules` (scrubber.rules.registry.Pack)
FIXTURES = "place"  # its rules' fixtures, scrubbed with the synthetic files beside them
PROFESSIONAL = ("837P",)


def _load_places(given: Mapping[str, tuple[str, ...]]) -> PlaceTable | None:
    from scrubber.codesets.places import read_places

    paths = given.get("pos") or ()
    if not paths:
        return None
    if len(paths) > 1:
        raise ResourceError("--pos takes one place of service table")
    try:
        return read_places(Path(paths[0]))
    except PlaceError as exc:
        raise ResourceError(str(exc)) from None


def _recognize_places(path: Path) -> Release | None:
    """A place of service table in our CSV layout (CMS publishes none to read)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            head = fh.readline().strip().lower().replace(" ", "")
    except OSError:
        return None
    if not head.startswith("code,name,effective_from"):
        return None
    table = _load_places({"pos": (str(path),)})
    return Release("pos", f"place of service table ({len(table.places) if table else 0} "
                          "codes)", None)


def _load_clia(given: Mapping[str, tuple[str, ...]]) -> CliaLists | None:
    from scrubber.codesets.clia import load_clia

    if not any(given.values()):
        return None
    try:
        return load_clia(given.get("clia-waived") or (), given.get("clia-codes") or ())
    except CliaError as exc:
        raise ResourceError(f"CLIA: {exc}") from None


def _named(option: str, pattern: str, label: str):
    """A recognizer by CMS's file name (these lists have no fixed layout to tell them by)."""
    def recognize(path: Path) -> Release | None:
        if not re.search(pattern, path.name, re.IGNORECASE):
            return None
        _load_clia({option: (str(path),)})  # refuses a file without codes
        return Release(option, label, None)
    return recognize


resource_kind(ResourceKind("pos", (
    ResourceOption("pos", "a place of service table replacing the shipped copy of CMS's "
                          "(CSV: code, name, effective_from, effective_to). See docs/data.md.",
                   recognize=_recognize_places),
), _load_places, label="place of service table"))
resource_kind(ResourceKind("clia", (
    ResourceOption("clia-waived", "CMS's list of CLIA-waived tests (CSV or text, zipped or "
                                  "not), repeatable. See docs/data.md.",
                   recognize=_named("clia-waived", r"waived", "CMS CLIA-waived tests")),
    ResourceOption("clia-codes", "codes subject to CLIA: a lab certification code file, one "
                                 "code (and its certification codes) a row; repeatable.",
                   recognize=_named("clia-codes", r"lab.?cert", "CLIA lab certification codes")),
), _load_clia, label="CMS CLIA test lists"))

POS_SOURCE = "CMS Place of Service Code Set ({}; see docs/data.md)"


def _places(ctx: ClaimContext) -> PlaceTable:
    return ctx.resource("pos", PlaceTable) or SHIPPED_TABLE


def _place_lines(ctx: ClaimContext) -> Iterator[tuple[ServiceLine, date, str]]:
    """Each dated line with its place of service: SV105 when given, else CLM05-1."""
    claim_place = ctx.claim.facility_code
    for line, day in ctx.dated_lines():
        yield line, day, line.place_of_service or claim_place


def _pos_element(line: ServiceLine) -> str:
    return "SV105" if line.place_of_service else "CLM05-1"


@rule("pos-invalid", severity=REJECT, stc=("A7", "249"), claim_kinds=PROFESSIONAL,
      summary="a place of service code that is not in CMS's code set on the date of service",
      source=POS_SOURCE.format("the shipped copy, or the user's --pos"))
def pos_invalid(ctx: ClaimContext) -> Iterator[Hit]:
    """The place of service (CLM05-1, or a line's SV105) must be a code in force on the date.

    Codes come and go: 10 (telehealth in the patient's home) is in force from
    2022-01-01, 02 and 19 from 2016-01-01, 58 from 2020-01-01; numbers CMS never
    assigned (28, 35, 47, 63 ...) are no places at all.
    Fails: CLM05-1 10 on a 20211115 service (POS 10 came in on 2022-01-01)
    Passes: CLM05-1 10 on a 20260302 service
    """
    table = _places(ctx)
    said: set[tuple[str, str]] = set()
    for line, day, code in _place_lines(ctx):
        rows = table.find(code)
        if any(p.in_force(day) for p in rows) or (code, _pos_element(line)) in said:
            continue
        said.add((code, _pos_element(line)))
        if not rows:
            words = "is not a place of service code"
        else:
            first = min((p.start for p in rows if p.start), default=None)
            words = (f"({rows[0].name}) is in force only from {first:%Y-%m-%d}"
                     if first and day < first else f"({rows[0].name}) is not in force")
        yield Hit(f"place of service {code} {words}; the service is dated {day:%Y-%m-%d}.",
                  "Give the place of service code in force on the date of service (CMS's "
                  "place of service code set).", line=line if line.place_of_service else None,
                  segment=None if line.place_of_service else ctx.claim.location,
                  element=_pos_element(line))


@rule("pos-telehealth-modifier", severity=WARN, stc=("A7", "453"), claim_kinds=PROFESSIONAL,
      summary="a telehealth place of service (02, 10) without a telehealth modifier (95, 93)",
      source="CMS telehealth billing instructions (POS 02/10; modifiers 95, 93); payers' "
             "companion guides (the profile lists telehealth-places, telehealth-modifiers)")
def telehealth_modifier(ctx: ClaimContext) -> Iterator[Hit]:
    """A telehealth service carries the telehealth modifier its payer expects.

    That is 95 (audio and video), 93 (audio only), or the older GT/GQ/FQ.
    Many payers return a telehealth line (POS 02 or 10) that says neither;
    the lists are the profile's, so a payer that wants none can empty them.
    Fails: CLM05-1 10 with SV1*HC:99213 on 20260302
    Passes: CLM05-1 10 with SV1*HC:99213:95 on 20260302
    """
    places = ctx.profile.list("telehealth-places")
    modifiers = ctx.profile.list("telehealth-modifiers")
    for line, _, code in _place_lines(ctx):
        if code in places and not any(m in modifiers for m in line.modifiers):
            yield Hit(f"{line.procedure} is billed at place of service {code} (telehealth) "
                      "without a telehealth modifier.",
                      "Add 95 (synchronous audio and video) or 93 (audio only), as the payer "
                      "asks; or correct the place of service if the visit was in person.",
                      line=line, element=service_element(ctx.kind, "procedure"))


@rule("pos-facility-only", severity=WARN, stc=("A8", "249"), claim_kinds=PROFESSIONAL,
      summary="a code the fee schedule prices only in a facility, billed in a non-facility place",
      source="CMS Physician Fee Schedule RVU file, non-facility NA indicator (the user's "
             "--pfs-rvu), with the profile list facility-places", needs=("pfs-rvu",),
      gate=NONFACILITY_NA_GATE)
def facility_only(ctx: ClaimContext) -> Iterator[Hit]:
    """A code the fee schedule prices only in a facility is unlikely in an office.

    A non-facility "NA" in the RVU file: the service is rarely or never done
    outside a facility, so an office (or other non-facility) place of service
    is likely wrong. Facility places are the profile's list (Medicare's: hospital, ASC, SNF ...).
    A warning: the service may truly have been given there.
    Fails: CLM05-1 11 with SV1*HC:27447 (non-facility NA) on 20260302
    Passes: CLM05-1 22 with SV1*HC:27447 (non-facility NA) on 20260302
    """
    table = ctx.resource("pfs-rvu", RvuTable)
    if table is None:
        return
    facilities = ctx.profile.list("facility-places")
    for line, day, code in _place_lines(ctx):
        if code in facilities or line.procedure_qualifier != "HC":
            continue
        entry = table.entry(line.procedure, day)
        if entry is not None and entry.nonfacility_na:
            yield Hit(f"{line.procedure} is billed at place of service {code}, but the fee "
                      "schedule prices it only in a facility (non-facility NA, "
                      f"{entry.release.label()}).",
                      "Check the place of service: give the facility where it was done "
                      "(21, 22, 24 ...), or confirm it was truly done here.", line=line,
                      element=_pos_element(line))


# -- CLIA -------------------------------------------------------------------------------------

CLIA_SOURCE = ("CMS CLIA: lab certification codes (the user's --clia-codes, the HCPCS file's "
               "LABCERT) and CMS's waived-test list (--clia-waived)")


def _clia_number(ctx: ClaimContext, line: ServiceLine) -> str:
    for ref in line.references:
        if ref.qualifier == "X4":
            return ref.value
    return ctx.claim.reference("X4")


def _lab_lines(ctx: ClaimContext) -> tuple[tuple[ServiceLine, CliaLists], ...]:
    """The claim's lab tests subject to CLIA, with the lists; worked out once for both rules."""
    return ctx.once("clia-lab-lines", _clia_lines, ctx)


def _clia_lines(ctx: ClaimContext) -> tuple[tuple[ServiceLine, CliaLists], ...]:
    lists = ctx.resource("clia", CliaLists)
    if lists is None:
        return ()
    sets = ctx.resource("codesets", CodeSets)
    # LABCERT comes with an HCPCS file only: without one, no line need ask
    labcert = sets.lab_certification if sets is not None and sets.has_hcpcs else None
    needs = lists.needs_clia
    return tuple(
        (line, lists) for line in ctx.claim.lines
        if line.procedure_qualifier == "HC" and (
            needs(line.procedure) or (labcert is not None and labcert(line.procedure))))


def _has_lab_lines(ctx: ClaimContext) -> bool:
    return bool(_lab_lines(ctx))


LAB_GATE = Gate("clia-lab-lines", _has_lab_lines)  # both CLIA rules look at these lines only


@rule("clia-number", severity=REJECT, stc=("A6", "21"), claim_kinds=PROFESSIONAL,
      summary="a lab test subject to CLIA without the laboratory's CLIA number (REF*X4)",
      source=CLIA_SOURCE, needs=("clia",), gate=LAB_GATE)
def clia_number(ctx: ClaimContext) -> Iterator[Hit]:
    """A test subject to CLIA needs the laboratory's CLIA number.

    It is paid only to a certified laboratory: its CLIA number goes in REF*X4
    (2300, or 2400 for a line done elsewhere).

    Fails: SV1*HC:85025 (subject to CLIA) on a claim without REF*X4
    Passes: SV1*HC:85025 on a claim with REF*X4*12D3456789
    """
    for line, _ in _lab_lines(ctx):
        if not _clia_number(ctx, line):
            yield Hit(f"{line.procedure} is a laboratory test subject to CLIA and the claim "
                      "carries no CLIA number (REF*X4).",
                      "Add the performing laboratory's 10-character CLIA number in REF*X4 "
                      "(2300, or the line's 2400 when another lab did the test).",
                      line=line, element="REF*X4")


@rule("clia-waived-qw", severity=REJECT, stc=("A7", "453"), claim_kinds=PROFESSIONAL,
      summary="a CLIA-waived test without modifier QW (unless CMS exempts the code)",
      source=CLIA_SOURCE + "; QW-exempt codes: the profile list clia-qw-exempt",
      needs=("clia",), gate=LAB_GATE)
def waived_qw(ctx: ClaimContext) -> Iterator[Hit]:
    """A waived test done under a certificate of waiver is billed with modifier QW.

    CMS exempts a few codes from QW (81002, 81025, 82270, 82272, 82962, 83026,
    84830, 85013, 85651: the profile list clia-qw-exempt).
    Fails: SV1*HC:87880 (waived) on 20260302
    Passes: SV1*HC:87880:QW and SV1*HC:81025 (exempt) on 20260302
    """
    exempt = ctx.profile.list("clia-qw-exempt")
    for line, lists in _lab_lines(ctx):
        if line.procedure in lists.waived and "QW" not in line.modifiers \
                and line.procedure not in exempt:
            yield Hit(f"{line.procedure} is a CLIA-waived test billed without modifier QW.",
                      "Add modifier QW (the test was done under a certificate of waiver); if "
                      "the lab holds a full certificate, check the payer's rule.", line=line,
                      element=service_element(ctx.kind, "procedure"))
