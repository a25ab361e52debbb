"""Procedure and modifier validity from the Medicare Physician Fee Schedule RVU file.

Source: CMS's PPRRVU file (the user's, ``--pfs-rvu``; quarterly, RVUyyA-D.zip),
its payment policy indicators per code: PC/TC (modifiers 26/TC), bilateral
surgery (50, RT/LT), assistant at surgery (80/81/82/AS), co-surgeons (62), team
surgery (66), status codes and global surgery days; and CMS's HCPCS file
(``--hcpcs``, the code sets) for the Level II modifiers in force. Each line is
judged by the release in force on its date; a date no release given covers is
not judged, and the run says so once. The fee schedule prices professional
services: these rules look at 837P claims (the modifier rule at both kinds).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import date, timedelta
from pathlib import Path

from scrubber.codesets import NOT_IN_FORCE, UNKNOWN, CodeSets
from scrubber.model.claims import Claim, ServiceLine, service_element
from scrubber.pfs import RvuEntry, RvuError, RvuTable
from scrubber.rules.context import LEDGER, SAME_CLAIM, SPAN_DAYS, ClaimContext, DayService
from scrubber.rules.findings import Notice
from scrubber.rules.profile import CodeList
from scrubber.rules.registry import INFO, REJECT, WARN, Gate, Hit, rule
from scrubber.rules.resources import (
    Release,
    ResourceError,
    ResourceKind,
    ResourceOption,
    resource_kind,
)

ORDER = 50  # where this pack comes in `scrub rules` (scrubber.rules.registry.Pack)
FIXTURES = "pfs"  # its rules' fixtures, scrubbed with the synthetic files beside them
KIND = "pfs-rvu"


def _load(given: Mapping[str, tuple[str, ...]]) -> RvuTable | None:
    from scrubber.pfs import load_rvu

    if not given.get(KIND):
        return None
    try:
        return load_rvu(given[KIND])
    except RvuError as exc:
        raise ResourceError(f"RVU file: {exc}") from None


def recognize(path: Path) -> Release | None:
    """A PPRRVU file or RVU zip, as CMS names it, and the quarter it is in force from."""
    from scrubber.pfs import looks_like, rvu_file

    if not looks_like(path):
        return None
    try:
        release, _ = rvu_file(path)
    except RvuError as exc:
        raise ResourceError(str(exc)) from None
    return Release(KIND, release.label(), release.start)


resource_kind(ResourceKind(KIND, (
    ResourceOption(KIND, "CMS Physician Fee Schedule RVU file (RVUyyA-D.zip as downloaded, or "
                         "the PPRRVU .csv/.txt in it), repeatable, one per quarter; you bring "
                         "it (it carries CPT). See docs/data.md.", recognize=recognize),
), _load, label="CMS Physician Fee Schedule RVU file"))

SOURCE = "CMS Physician Fee Schedule RVU file (PPRRVU, the user's --pfs-rvu), {}"
PROFESSIONAL = ("837P",)


def rvu_lines(ctx: ClaimContext) -> tuple[tuple[ServiceLine, date, RvuEntry] | Notice, ...]:
    """Each dated line with its code's row in the release of its date; worked out once.

    A line whose date no release given covers yields a Notice instead (the run
    says it once); a code the file does not list is passed over.
    """
    return ctx.once("pfs-rvu-lines", _rvu_lines, ctx)


def _rvu_lines(ctx: ClaimContext) -> tuple[tuple[ServiceLine, date, RvuEntry] | Notice, ...]:
    table = ctx.resource(KIND, RvuTable)
    if table is None:
        return ()
    out: list[tuple[ServiceLine, date, RvuEntry] | Notice] = []
    release_for, entry_of = table.release_for, table.entry  # every line of every claim
    for line, day in ctx.dated_lines():
        if line.procedure_qualifier != "HC":
            continue
        if release_for(day) is None:
            out.append(Notice(
                "pfs-rvu-uncovered-dates",
                f"not checked against the fee schedule: lines dated outside the RVU "
                f"files given ({', '.join(r.label() for r in table.releases)}); add the "
                "release of their quarter with --pfs-rvu", source=KIND))
            continue
        entry = entry_of(line.procedure, day)
        if entry is not None:
            out.append((line, day, entry))
    return tuple(out)


def _element(ctx: ClaimContext) -> str:
    return service_element(ctx.kind, "procedure")


def _modifiers(ctx: ClaimContext) -> frozenset[str]:
    """Every modifier on the claim's lines: most claims carry none a modifier rule reads."""
    return ctx.once("modifiers", _claim_modifiers, ctx.claim)


def _claim_modifiers(claim: Claim) -> frozenset[str]:
    return frozenset(m for line in claim.lines for m in line.modifiers)


def _has(line: ServiceLine, *modifiers: str) -> tuple[str, ...]:
    return tuple(m for m in line.modifiers if m in modifiers)


# -- gates: the claims each rule can say something on (scrubber.rules.registry.Gate) ---------

def _modifier_gate(name: str, modifiers: tuple[str, ...]) -> Gate:
    """Passes a claim one of whose lines carries one of ``modifiers``: the modifier rules
    return at once on any other."""
    return Gate.holding(name, _modifiers, modifiers)


# what the fee-schedule gates ask of a claim's rows, besides each row's status letter
NONFACILITY_NA, VISIT, GLOBAL_SURGERY, UNCOVERED = (
    "nonfacility-na", "visit", "global-surgery", "uncovered")


def _rvu_facts(ctx: ClaimContext) -> frozenset[str]:
    """What the claim's fee-schedule rows (``rvu_lines``) hold, for the gates: each row's
    status letter; NONFACILITY_NA for a non-facility NA row; VISIT for an E/M visit without a
    modifier that takes it out of a global period, GLOBAL_SURGERY for a code with one (000,
    010, 090); UNCOVERED for a line dated outside the files given."""
    em = ctx.profile.list("em-codes")
    bypass = ctx.profile.list("global-period-modifiers")
    facts = set()
    for item in rvu_lines(ctx):
        if isinstance(item, Notice):
            facts.add(UNCOVERED)
            continue
        line, _, entry = item
        facts.add(entry.status)
        if entry.nonfacility_na:
            facts.add(NONFACILITY_NA)
        if _visit(line, em, bypass):
            facts.add(VISIT)
        elif entry.global_days in GLOBAL_PERIODS:
            facts.add(GLOBAL_SURGERY)
    return frozenset(facts)


def _rvu_gate(name: str, facts: Iterable[str]) -> Gate:
    """Passes a claim with a line whose fee-schedule row gives one of ``facts`` (see
    ``_rvu_facts``), or a line dated outside the files given (the rules say that Notice): the
    rules below look at nothing else."""
    return Gate.holding(name, _rvu_facts, (*facts, UNCOVERED))


def _status_gate(statuses: str) -> Gate:
    """Passes a claim with a line of one of ``statuses`` (one letter each: "NXE")."""
    return _rvu_gate(f"pfs-status-{statuses}", statuses)


PCTC_GATE = _modifier_gate("pfs-modifiers-26-tc", ("26", "TC"))
BILATERAL_GATE = _modifier_gate("pfs-modifiers-50-rt-lt", ("50", "RT", "LT"))
ASSISTANT_GATE = _modifier_gate("pfs-modifiers-80-81-82-as", ("80", "81", "82", "AS"))
COSURGEON_GATE = _modifier_gate("pfs-modifier-62", ("62",))
TEAM_GATE = _modifier_gate("pfs-modifier-66", ("66",))
GLOBAL_PERIOD_GATE = _rvu_gate("pfs-visit-or-global-surgery", (VISIT, GLOBAL_SURGERY))
NONFACILITY_NA_GATE = _rvu_gate("pfs-nonfacility-na", (NONFACILITY_NA,))


# -- modifiers the indicators govern -----------------------------------------------------------

PCTC_WORDS = {"0": "a physician service (no professional/technical split)",
              "2": "a professional-component-only code", "3": "a technical-component-only code",
              "4": "a global-test-only code", "5": "an incident-to code",
              "6": "a laboratory physician interpretation code (26 only)",
              "7": "a physical therapy service", "8": "a physician interpretation code",
              "9": "a code the PC/TC concept does not apply to"}


@rule("pfs-pctc-modifier", severity=REJECT, stc=("A7", "453"), claim_kinds=PROFESSIONAL,
      summary="modifier 26 or TC on a code whose PC/TC indicator does not allow it",
      source=SOURCE.format("PC/TC indicator"), needs=(KIND,),
      gate=PCTC_GATE)
def pctc_modifier(ctx: ClaimContext) -> Iterator[Hit | Notice]:
    """Modifiers 26 and TC split a diagnostic test; other codes cannot take them.

    PC/TC indicator 1 (diagnostic tests) allows both; 6 (laboratory physician
    interpretation) allows 26 only; every other indicator (0 physician
    services, 2 professional-only, 3 technical-only, 4 global-only codes ...)
    allows neither.
    Fails: SV1*HC:99213:26 (PC/TC indicator 0) on 20260302
    Passes: SV1*HC:71046:26 (PC/TC indicator 1) on 20260302
    """
    if _modifiers(ctx).isdisjoint(("26", "TC")):
        return
    for item in rvu_lines(ctx):
        if isinstance(item, Notice):
            yield item
            continue
        line, _, entry = item
        allowed = {"1": ("26", "TC"), "6": ("26",)}.get(entry.pctc, ())
        for modifier in _has(line, "26", "TC"):
            if modifier in allowed:
                continue
            what = PCTC_WORDS.get(entry.pctc, f"PC/TC indicator {entry.pctc or 'blank'}")
            yield Hit(f"{line.procedure} is billed with modifier {modifier}, but it is {what} "
                      f"(PC/TC indicator {entry.pctc}, {entry.release.label()}).",
                      f"Remove modifier {modifier}; bill the code that describes the component "
                      "performed, or the code alone.", line=line, element=_element(ctx))


@rule("pfs-bilateral", severity=REJECT, stc=("A7", "453"), claim_kinds=PROFESSIONAL,
      summary="modifier 50 (or RT with LT) against the code's bilateral surgery indicator",
      source=SOURCE.format("bilateral surgery indicator"), needs=(KIND,),
      gate=BILATERAL_GATE)
def bilateral(ctx: ClaimContext) -> Iterator[Hit | Notice]:
    """A bilateral procedure is one line with modifier 50 and one unit, where the code allows it.

    Bilateral indicator 1 (150% adjustment) and 3 (each side paid) take modifier
    50; 0 (no bilateral adjustment), 2 (already bilateral) and 9 (does not
    apply) do not. Modifier 50 with more than one unit, and RT with LT on one
    line, are returned too: each says both sides twice, or on one line.
    Fails: SV1*HC:27447:50 (bilateral indicator 0) on 20260302
    Passes: SV1*HC:27130:50*1 (bilateral indicator 1) on 20260302
    """
    if _modifiers(ctx).isdisjoint(("50", "RT", "LT")):
        return
    for item in rvu_lines(ctx):
        if isinstance(item, Notice):
            yield item
            continue
        line, _, entry = item
        if "50" in line.modifiers:
            if entry.bilateral not in ("1", "3"):
                why = {"0": "the bilateral adjustment does not apply to it",
                       "2": "its description is already bilateral",
                       "9": "the bilateral concept does not apply to it"}.get(
                    entry.bilateral, f"its bilateral indicator is {entry.bilateral or 'blank'}")
                yield Hit(f"{line.procedure} is billed with modifier 50, but {why} (bilateral "
                          f"indicator {entry.bilateral}, {entry.release.label()}).",
                          "Remove modifier 50: bill the code once (indicator 2), or once per "
                          "side with RT and LT on their own lines if both were done.",
                          line=line, element=_element(ctx))
            elif line.units is not None and line.units > 1:
                yield Hit(f"{line.procedure} is billed with modifier 50 and {line.units_text} "
                          "units: modifier 50 already says both sides.",
                          "Bill one unit with modifier 50.", line=line,
                          element=service_element(ctx.kind, "units"))
        elif {"RT", "LT"} <= set(line.modifiers):
            yield Hit(f"{line.procedure} is billed with RT and LT on one line.",
                      "Bill one line with modifier 50 (bilateral indicator "
                      f"{entry.bilateral or 'blank'}), or one line per side.", line=line,
                      element=_element(ctx))


def _indicator_rule(ctx: ClaimContext, modifiers: tuple[str, ...], indicator: str,
                    role: str, never: dict[str, str], documented: str
                    ) -> Iterator[Hit | Notice]:
    """Hits for ``modifiers`` on lines whose ``indicator`` (an RvuEntry field) forbids them:
    a reject for the values in ``never``; a warning for the value ``documented``."""
    if _modifiers(ctx).isdisjoint(modifiers):
        return
    for item in rvu_lines(ctx):
        if isinstance(item, Notice):
            yield item
            continue
        line, _, entry = item
        value = getattr(entry, indicator)
        for modifier in _has(line, *modifiers):
            if value in never:
                yield Hit(f"{line.procedure} is billed with modifier {modifier} ({role}), but "
                          f"{never[value]} ({indicator.replace('_', ' ')} indicator {value}, "
                          f"{entry.release.label()}).",
                          f"Remove the {role} line or modifier {modifier}: it is not paid for "
                          "this code.", line=line, element=_element(ctx))
            elif value == documented:
                yield Hit(f"{line.procedure} is billed with modifier {modifier} ({role}): "
                          f"paid only with documentation of medical necessity "
                          f"({indicator.replace('_', ' ')} indicator {value}).",
                          "Attach the operative report (PWK) showing why it was needed, or "
                          f"remove modifier {modifier}.", line=line, element=_element(ctx),
                          ceiling=WARN)


@rule("pfs-assistant", severity=REJECT, stc=("A7", "453"), claim_kinds=PROFESSIONAL,
      summary="an assistant at surgery (80/81/82/AS) on a code that does not pay one",
      source=SOURCE.format("assistant at surgery indicator"), needs=(KIND,),
      gate=ASSISTANT_GATE)
def assistant(ctx: ClaimContext) -> Iterator[Hit | Notice]:
    """An assistant at surgery is paid only where the assistant indicator allows it.

    Indicator 1: never paid (statutory restriction) and 9: the concept does not
    apply, so modifiers 80, 81, 82 and AS are returned; 0: paid only with
    documentation of medical necessity (a warning); 2: paid.
    Fails: SV1*HC:99213:80 (assistant indicator 9) on 20260302
    Passes: SV1*HC:27130:80 (assistant indicator 2) on 20260302
    """
    yield from _indicator_rule(
        ctx, ("80", "81", "82", "AS"), "assistant", "assistant at surgery",
        {"1": "an assistant at surgery is never paid for it",
         "9": "the assistant-at-surgery concept does not apply to it"}, "0")


@rule("pfs-cosurgeon", severity=REJECT, stc=("A7", "453"), claim_kinds=PROFESSIONAL,
      summary="co-surgeons (modifier 62) on a code that does not permit them",
      source=SOURCE.format("co-surgeons indicator"), needs=(KIND,),
      gate=COSURGEON_GATE)
def cosurgeon(ctx: ClaimContext) -> Iterator[Hit | Notice]:
    """Modifier 62 (two surgeons of different specialties) only where co-surgeons may be paid.

    Indicator 0 (not permitted) and 9 (does not apply) are returned; 1 needs
    documentation (a warning); 2 is permitted.
    Fails: SV1*HC:27447:62 (co-surgeons indicator 0) on 20260302
    Passes: SV1*HC:27130:62 (co-surgeons indicator 2) on 20260302
    """
    yield from _indicator_rule(
        ctx, ("62",), "cosurgeons", "co-surgeon",
        {"0": "co-surgeons are not permitted for it",
         "9": "the co-surgeon concept does not apply to it"}, "1")


@rule("pfs-team", severity=REJECT, stc=("A7", "453"), claim_kinds=PROFESSIONAL,
      summary="team surgery (modifier 66) on a code that does not permit it",
      source=SOURCE.format("team surgery indicator"), needs=(KIND,),
      gate=TEAM_GATE)
def team(ctx: ClaimContext) -> Iterator[Hit | Notice]:
    """Modifier 66 (a surgical team) only where team surgeons may be paid.

    Indicator 0 (not permitted) and 9 (does not apply) are returned; 1 needs
    documentation (a warning); 2 is permitted, by report.
    Fails: SV1*HC:27447:66 (team indicator 0) on 20260302
    Passes: SV1*HC:33945:66 (team indicator 2) on 20260302
    """
    yield from _indicator_rule(
        ctx, ("66",), "team", "team surgery",
        {"0": "team surgeons are not permitted for it",
         "9": "the team surgery concept does not apply to it"}, "1")


# -- status codes -------------------------------------------------------------------------------

def _status_hits(ctx: ClaimContext, statuses: dict[str, str], fix: str
                 ) -> Iterator[tuple[ServiceLine, RvuEntry, str] | Notice]:
    for item in rvu_lines(ctx):
        if isinstance(item, Notice):
            yield item
        elif item[2].status in statuses:
            yield item[0], item[2], statuses[item[2].status]


@rule("pfs-not-valid", severity=REJECT, stc=("A7", "454"), claim_kinds=PROFESSIONAL,
      summary="a code not valid for Medicare (status I): another code reports the service",
      source=SOURCE.format("status code I"), needs=(KIND,),
      gate=_status_gate("I"))
def not_valid(ctx: ClaimContext) -> Iterator[Hit | Notice]:
    """Status I codes are not valid for Medicare: Medicare uses another code for the service.

    Fails: SV1*HC:99241 (status I) on 20260302
    Passes: SV1*HC:99213 (status A) on 20260302
    """
    for item in _status_hits(ctx, {"I": "not valid for Medicare purposes"}, ""):
        if isinstance(item, Notice):
            yield item
            continue
        line, entry, words = item
        yield Hit(f"{line.procedure} is {words} (status {entry.status}, "
                  f"{entry.release.label()}): Medicare pays the service under another code.",
                  "Bill the code Medicare uses for the service (for a consultation, the "
                  "evaluation and management code of the setting; a G code where CMS made one).",
                  line=line, element=_element(ctx))


@rule("pfs-not-covered", severity=WARN, stc=("A7", "454"), claim_kinds=PROFESSIONAL,
      summary="a non-covered or excluded code (status N, X, E) without GA, GY or GZ",
      source=SOURCE.format("status codes N, X, E"), needs=(KIND,),
      gate=_status_gate("NXE"))
def not_covered(ctx: ClaimContext) -> Iterator[Hit | Notice]:
    """Status N (not covered), X (statutory exclusion) and E (excluded by regulation) are not paid.

    Billed on purpose (for a denial a secondary payer needs), the line carries a
    liability modifier: GA (a waiver on file), GY (statutorily excluded) or GZ
    (expected denial, no waiver). Without one, a warning.
    Fails: SV1*HC:99385 (status N) on 20260302
    Passes: SV1*HC:99385:GY (status N) on 20260302
    """
    words = {"N": "not covered by Medicare", "X": "excluded from the fee schedule by statute",
             "E": "excluded from the fee schedule by regulation"}
    for item in _status_hits(ctx, words, ""):
        if isinstance(item, Notice):
            yield item
            continue
        line, entry, said = item
        if any(m in ctx.profile.list("liability-modifiers") for m in line.modifiers):
            continue
        yield Hit(f"{line.procedure} is {said} (status {entry.status}, "
                  f"{entry.release.label()}) and carries no GA, GY or GZ modifier.",
                  "Add GY (statutorily excluded), GA (a signed waiver on file) or GZ (no "
                  "waiver) so the denial is the patient's liability as intended; or bill the "
                  "payer that covers it.", line=line, element=_element(ctx))


@rule("pfs-bundled", severity=WARN, stc=("A7", "454"), claim_kinds=PROFESSIONAL,
      summary="a bundled code (status B, P; T with another service that day) is not paid",
      source=SOURCE.format("status codes B, P, T"), needs=(KIND,),
      gate=_status_gate("BPT"))
def bundled_code(ctx: ClaimContext) -> Iterator[Hit | Notice]:
    """Bundled codes are not paid on their own.

    Status B and P codes are always bundled into another service; T codes
    (injections) are paid only when no other fee-schedule service is billed
    that day by the provider. The day is the patient's day context: this
    claim, the submission and the ledger. A warning: the line is not paid,
    but reporting it is not an error.
    Fails: SV1*HC:99211 and SV1*HC:96372 (status T) on 20260302
    Passes: SV1*HC:96372 (status T) alone on 20260302
    """
    table = ctx.resource(KIND, RvuTable)
    for item in _status_hits(ctx, {"B": "bundled", "P": "bundled or excluded", "T": "T"}, ""):
        if isinstance(item, Notice):
            yield item
            continue
        line, entry, words = item
        if entry.status != "T":
            yield Hit(f"{line.procedure} is {words} (status {entry.status}, "
                      f"{entry.release.label()}): it is never paid on its own.",
                      "Leave it off, or bill it only where the payer asks for it to be "
                      "reported; its payment is in the service it belongs to.", line=line,
                      element=_element(ctx))
            continue
        day = ctx.service_date(line)
        others = [s for s in ctx.others(line) if day is not None and table is not None
                  and _payable(table.entry(s.procedure, day))]
        if others:
            yield Hit(f"{line.procedure} (status T, {entry.release.label()}) is paid only "
                      f"when no other fee-schedule service is billed that day; here with "
                      f"{'; '.join(s.label() for s in others)}.",
                      "Expect no payment for it: its payment is bundled into the other "
                      "service.", line=line, element=_element(ctx),
                      related=tuple(dict.fromkeys(s.reference() for s in others
                                                  if s.where != SAME_CLAIM)))


def _payable(entry: RvuEntry | None) -> bool:
    return entry is not None and entry.status in ("A", "R", "C")


@rule("pfs-status-note", severity=INFO, stc=None, claim_kinds=PROFESSIONAL,
      summary="a contractor-priced (C), restricted (R) or measurement (M) code: a note",
      source=SOURCE.format("status codes C, R, M"), needs=(KIND,),
      gate=_status_gate("CRM"))
def status_note(ctx: ClaimContext) -> Iterator[Hit | Notice]:
    """What a payer needs with codes it does not price from the schedule.

    C: the contractor prices it by report (documentation such as the operative
    report); R: restricted coverage, paid only in special circumstances; M: a
    measurement code for reporting only, billed at a nominal charge.
    Fails: SV1*HC:0042T (status C) on 20260302
    Passes: SV1*HC:99213 (status A) on 20260302
    """
    words = {"C": ("priced by the contractor, by report",
                   "Send the documentation the price rests on (PWK, e.g. the operative "
                   "report)."),
             "R": ("covered only in special circumstances (restricted coverage)",
                   "Make sure the record shows the circumstance; send it if the payer asks."),
             "M": ("a measurement code, for reporting only",
                   "Bill it at a nominal charge (0.00 or 0.01): it is never paid.")}
    for item in _status_hits(ctx, {k: v[0] for k, v in words.items()}, ""):
        if isinstance(item, Notice):
            yield item
            continue
        line, entry, said = item
        yield Hit(f"{line.procedure} is {said} (status {entry.status}, "
                  f"{entry.release.label()}).", words[entry.status][1], line=line,
                  element=_element(ctx))


# -- global surgery ----------------------------------------------------------------------------

_REACH = timedelta(days=SPAN_DAYS - 1)  # how far back a surgery's global period reaches
# the global surgery indicators with a period: days before and after the surgery it takes
GLOBAL_PERIODS = {"000": (0, 0), "010": (0, 10), "090": (1, 90)}


def _visit(line: ServiceLine, em: CodeList, bypass: CodeList) -> bool:
    """An E/M visit (the profile list em-codes) no modifier of ``bypass`` (24, 25, 57, 79)
    says is separate from a surgery's package."""
    return line.procedure in em and not any(m in bypass for m in line.modifiers)


def _window(glob: str, surgery: date) -> tuple[date, date] | None:
    """The days an E/M visit falls in the global period of a surgery on ``surgery``."""
    period = GLOBAL_PERIODS.get(glob)
    if period is None:
        return None
    before, after = period
    return surgery - timedelta(days=before), surgery + timedelta(days=after)


@rule("pfs-global-period", severity=REJECT, stc=("A8", "453"), claim_kinds=PROFESSIONAL,
      summary="an E/M visit in the global period of the provider's surgery without 24/25/57/79",
      source=SOURCE.format("global surgery days (000, 010, 090)"), needs=(KIND,),
      gate=GLOBAL_PERIOD_GATE)
def global_period(ctx: ClaimContext) -> Iterator[Hit | Notice]:
    """The global surgery package pays the visits around a surgery by the same provider.

    Global days 000: the day of the procedure; 010: that day and the 10 after;
    090: the day before, the day of and the 90 after. An E/M visit (the profile
    list em-codes) in that period, for the same patient and billing provider,
    is not paid unless a modifier says it is separate: 24 (unrelated visit after
    surgery), 25 (separate visit the day of a minor procedure), 57 (the decision
    for a major surgery), 79 (unrelated; the profile list global-period-modifiers).
    The surgery may be on this claim, another of the submission or a claim
    already accepted (the ledger); a surgery billed now after a visit already
    sent in its period gets a warning: the fix is on the claim sent.
    Fails: SV1*HC:99213 on 20260305, after SV1*HC:27447 (global 090) on 20260302
    Passes: SV1*HC:99213:24 on 20260305, after SV1*HC:27447 (global 090) on 20260302
    """
    table = ctx.resource(KIND, RvuTable)
    if table is None or ctx.claim.frequency == "8":
        return
    em = ctx.profile.list("em-codes")
    bypass = ctx.profile.list("global-period-modifiers")
    for item in rvu_lines(ctx):
        if isinstance(item, Notice):
            yield item
            continue
        line, day, entry = item
        if _visit(line, em, bypass):
            yield from _visit_in_period(ctx, table, line, day, _REACH)
        elif _window(entry.global_days, day) is not None:
            yield from _sent_visits(ctx, line, day, entry, em, bypass)


def _visit_in_period(ctx: ClaimContext, table: RvuTable, line: ServiceLine, day: date,
                     reach: timedelta) -> Iterator[Hit]:
    surgeries: list[tuple[date, DayService, str]] = []
    for when, service in ctx.span(day - reach, day + timedelta(days=1)):
        if ctx.is_line(service, line):
            continue
        entry = table.entry(service.procedure, when)
        window = _window(entry.global_days, when) if entry is not None else None
        if window is not None and window[0] <= day <= window[1]:
            surgeries.append((when, service, entry.global_days if entry else ""))
    if not surgeries:
        return
    said = "; ".join(f"{s.label()} on {when:%Y-%m-%d} (global {glob})"
                     for when, s, glob in surgeries)
    yield Hit(f"{line.procedure} on {day:%Y-%m-%d} falls in the global surgery period of "
              f"{said}: the visit is part of the surgical package.",
              "If the visit was unrelated to the surgery (24), a separate service the day of a "
              "minor procedure (25) or the decision for a major surgery (57), add that "
              "modifier, with a diagnosis that shows it; otherwise remove the line.",
              line=line, element=_element(ctx),
              related=tuple(dict.fromkeys(s.reference() for _, s, _ in surgeries
                                          if s.where != SAME_CLAIM)))


def _sent_visits(ctx: ClaimContext, line: ServiceLine, day: date, entry: RvuEntry, em,
                 bypass) -> Iterator[Hit]:
    window = _window(entry.global_days, day)
    assert window is not None
    visits = [(when, s) for when, s in ctx.span(*window)
              if s.where == LEDGER and s.procedure in em
              and not any(m in bypass for m in s.modifiers)]
    if visits:
        said = "; ".join(f"{s.label()} on {when:%Y-%m-%d}" for when, s in visits)
        yield Hit(f"{line.procedure} on {day:%Y-%m-%d} (global {entry.global_days}) puts "
                  f"{said} in its global period: that visit will be denied or recouped.",
                  "Correct the claim already sent (a replacement adding 24, 25 or 57 where "
                  "the visit was separate), or hold this surgery if its date is wrong.",
                  line=line, element=_element(ctx), ceiling=WARN,
                  related=tuple(dict.fromkeys(s.reference() for _, s in visits)))


# -- Level II modifiers ------------------------------------------------------------------------

@rule("modifier-invalid", severity=REJECT, stc=("A7", "453"),
      summary="a Level II modifier is not in the HCPCS file, or not in force on the date",
      source="CMS HCPCS Level II quarterly file, modifier records (the user's --hcpcs; see "
             "docs/codesets.md)", needs=("codesets",))
def modifier_invalid(ctx: ClaimContext) -> Iterator[Hit | Notice]:
    """A Level II modifier (two characters with a letter: GA, RT, XS, QW ...) must be in force.

    CMS's HCPCS file lists each modifier with its added and termination dates;
    CPT modifiers (two digits) are the AMA's and are not looked up. Only with
    ``--hcpcs``; a date outside every file's quarter gives a warning.
    Fails: SV1*HC:99213:Q9 on 20250203 (no such modifier in the HCPCS file)
    Passes: SV1*HC:99213:GT on 20250203 (in force in the HCPCS file)
    """
    sets = ctx.resource("codesets", CodeSets)
    if sets is None:
        return
    if not sets.has_hcpcs:
        yield Notice("no-hcpcs-modifiers", "not checked: modifier-invalid (the code sets "
                     "given hold no HCPCS file; add it with --hcpcs)", source="codesets")
        return
    for line in ctx.claim.lines:
        day = line.date_from or (ctx.claim.date("434").end if ctx.claim.date("434") else None)
        if day is None:
            continue
        for modifier in line.modifiers:
            if modifier.isdigit() or len(modifier) != 2:
                continue
            verdict = sets.modifier(modifier, day)
            if verdict is None or verdict.status not in (UNKNOWN, NOT_IN_FORCE):
                continue
            if verdict.status == UNKNOWN:
                words = "is not a HCPCS Level II modifier"
            elif verdict.terminated is not None and verdict.terminated < day:
                words = f"was terminated on {verdict.terminated:%Y-%m-%d}"
            else:
                words = (f"takes effect only on {verdict.added:%Y-%m-%d}" if verdict.added
                         else "is not in force")
            text = (f"modifier {modifier} on {line.procedure} {words}; the line is dated "
                    f"{day:%Y-%m-%d}")
            if verdict.covered:
                yield Hit(text + ".", "Correct the modifier (CMS's HCPCS file lists those in "
                          "force), or remove it.", line=line, element=_element(ctx))
            else:
                yield Hit(text + ", outside the quarters of the HCPCS files given, so this is "
                          "a warning: add that quarter's file with --hcpcs.",
                          "Check the modifier in the current HCPCS file.", line=line,
                          element=_element(ctx), ceiling=WARN)
