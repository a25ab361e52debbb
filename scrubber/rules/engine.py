"""The engine: run the registered rules over claims, with the day context of a run.

The scrub core (scrubber.core) makes two passes over a run's sources. Pass 1
indexes every service line by patient and date in a ``DayIndex``, a private
SQLite database (in memory while small, spilled to a temporary file, deleted on
close, when it grows), so memory stays flat however big the run. Pass 2,
``scrub_indexed``, replaces each ``ClaimRecord`` of a source's events with a
``ScrubbedClaim`` judged against that index and the ledger; every other event
(envelopes, problems) passes through untouched.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from datetime import date
from decimal import Decimal, InvalidOperation
from functools import partial
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Literal, Protocol, cast, runtime_checkable

from scrubber.model.claim_body import LineKey
from scrubber.model.claims import ClaimRecord, Location
from scrubber.model.keys import patient_identity
from scrubber.model.walker import Event
from scrubber.rules.context import (
    LEDGER,
    SUBMISSION,
    ClaimContext,
    ClaimKey,
    DayLookup,
    DayService,
    LedgerLine,
    SentClaim,
    SpanLookup,
    claim_key,
    line_date,
    own_services,
    own_span,
    service_date,
    submission_id,
)
from scrubber.rules.findings import Finding, Notice, ScrubbedClaim, Severity
from scrubber.rules.profile import CodeList, Profile
from scrubber.rules.registry import (
    OR_LEDGER,
    OWN_LINES,
    Gate,
    Hit,
    Rule,
    Trigger,
    all_rules,
    milder,
    selected,
)

if TYPE_CHECKING:
    from scrubber.ig.gate import Hold
    from scrubber.ncci import NcciTables
    from scrubber.rules.resources import Resources

_CLAIM_RECORD = ClaimRecord
_ORDINAL = attrgetter("ordinal")  # of a Segment
_REPEATED_HELD = 100_000  # repeated claim keys DayIndex.twins holds, as hashes (about 6 MB)


class LedgerReader(Protocol):
    """What the engine reads from a ledger store (or from one of its decisions)."""

    def lines_for(self, identity: tuple[str, str, str, str, str], service_date: date, *,
                  exclude_submission: str | None = None) -> Sequence[LedgerLine]: ...

    def sent_claim(self, key: ClaimKey) -> SentClaim | None: ...

    def lines_between(self, identity: tuple[str, str, str, str, str], first: date, last: date,
                      *, exclude_submission: str | None = None) -> Sequence[LedgerLine]: ...


@runtime_checkable
class LedgerBatchReader(LedgerReader, Protocol):
    """A store that answers many claims' reads from a few queries (scrubber.ledger.store)."""

    def lock_keys(self, record: ClaimRecord) -> frozenset[str]: ...

    def reader(self, keys: Iterable[str]) -> LedgerReader: ...  # ``lock_keys``' of the claims


class LedgerDecision(LedgerReader, Protocol):
    """A locked ledger transaction: reads, then records the claims decided in it."""

    # ``claim``: the scrubbed claim, or what the store's ``prepare`` made of it
    def record(self, submission: str, claim: Any) -> None: ...


class LedgerRecorder(LedgerReader, Protocol):
    """What the engine needs of a store to record as it decides (scrubber.ledger.store)."""

    def lock_keys(self, record: ClaimRecord) -> frozenset[str]: ...

    def prepared_keys(self, claim: Any) -> set[str]: ...  # lock_keys of a prepared claim

    def prepare(self, scrubbed: ScrubbedClaim) -> Any: ...  # its rows, hashes and content

    def deciding(self, keys: Iterable[str], *, recording: str | None = None
                 ) -> AbstractContextManager[LedgerDecision]: ...


class Engine:
    """The registered rules resolved against one profile, per claim kind."""

    def __init__(self, profile: Profile, rules: Iterable[Rule] | None = None, *,
                 resources: Resources | None = None, ncci: NcciTables | None = None,
                 select: Sequence[str] = (), ignore: Sequence[str] = ()):
        """``select``/``ignore``: rule ids or prefixes to run only / to leave out, as a
        linter's; applied after the profile, so a rule the profile turns off stays off."""
        from scrubber.rules.resources import Resources

        self.profile = profile
        # outside data the packs read; ``ncci`` is a shorthand for Resources.of(ncci=...)
        self.resources = (resources or Resources()).merged(Resources.of(ncci=ncci))
        rules = selected(all_rules() if rules is None else rules, select, ignore)
        rules, self.notices = _without_data(rules, self.resources)
        self.notices += _problem_patterns(profile, select, ignore)
        self.notices += _data_in_use(self.resources)
        self._active: dict[str, tuple[tuple[Rule, Severity], ...]] = {}
        # per kind, the triggers of its active rules with their codes from the profile
        self._triggers: dict[str, tuple[tuple[Trigger, CodeList], ...]] = {}
        # per kind, the gates of its active rules, asked once a claim after the triggers
        self._gates: dict[str, tuple[Gate, ...]] = {}
        # per kind, how they are asked (``_gate_plan``)
        self._gate_plan: dict[str, tuple[_GateTests, _SharedHolds]] = {}
        # (kind, the triggers a claim holds as bits) -> the rules to run, in registry order
        self._runs: dict[tuple[str, int], tuple[tuple[Rule, Severity], ...]] = {}
        for kind in ("837P", "837I"):
            self._active[kind] = tuple(
                (r, s) for r in rules
                if kind in r.claim_kinds and (s := profile.severity(r, kind)) is not None)
            triggers = dict.fromkeys(r.trigger for r, _ in self._active[kind] if r.trigger)
            self._triggers[kind] = tuple((t, profile.list(t.procedures)) for t in triggers)
            self._gates[kind] = tuple(dict.fromkeys(r.gate for r, _ in self._active[kind]
                                                    if r.gate))
            self._gate_plan[kind] = _gate_plan(self._gates[kind], len(self._triggers[kind]))

    def scrub(self, record: ClaimRecord, *, ordinal: int = 1, submission: str | None = None,
              day: DayLookup | None = None,
              twins: Callable[[], tuple[int, ...]] | None = None,
              ledger_day: DayLookup | None = None,
              sent: Callable[[], SentClaim | None] | None = None,
              span: SpanLookup | None = None,
              memo: dict[str, tuple] | None = None) -> ScrubbedClaim:
        """Run the active rules the claim can trip; ``day`` defaults to the claim's own lines.

        ``twins()`` lists the earlier claims of the submission with the same
        billing NPI and CLM01 (none when the claim is scrubbed on its own);
        ``ledger_day`` the ledger's services of a date (none without a ledger);
        ``sent()`` the ledger's copy of this same claim, if one was recorded;
        ``span(first, last)`` the services of a period (default: the claim's own lines).

        ``memo`` (rule id -> what it yielded) takes the hits of each rule that
        read nothing of the ledger (``day``, ``ledger_day``, ``sent``, ``span``),
        and gives them back on the next scrub of the same claim instead of
        running the rule again. A rule is a function of its context alone, so
        one that did not read the ledger yields the same against any ledger:
        a recording scrubs a batch first, then decides it under the ledger's
        lock running only the rules that read it (``_decide``).
        """
        submission = submission if submission is not None else submission_id(record)
        if day is None:
            def day(when: date) -> tuple[DayService, ...]:
                return own_services(record, submission, ordinal, when)
        if span is None:
            span = partial(own_span, record, submission, ordinal)
        flag = [False]
        ledger_day = ledger_day or (lambda when: ())
        sent = sent or (lambda: None)
        if memo is not None:
            day, ledger_day, sent, span = (
                _marking(day, flag), _marking(ledger_day, flag), _marking(sent, flag),
                _marking(span, flag))
        context = ClaimContext(record, self.profile, ordinal, submission, day, self.resources,
                               twins=twins or (lambda: ()), ledger_day=ledger_day,
                               sent=sent, span=span, ledger_read=flag)
        findings = []
        notices: list[Notice] = []
        for rule, severity in self._to_run(context):
            if memo is None:
                said: Iterable[Hit | Notice] = rule.run(context)
            elif (known := memo.get(rule.id)) is not None:
                said = known
            else:
                flag[0] = False
                said = tuple(rule.run(context))
                if not flag[0]:
                    memo[rule.id] = said
            for hit in said:
                if hit.__class__ is Notice:
                    notices.append(cast(Notice, hit))
                else:
                    findings.append(_finding(rule, severity, cast(Hit, hit), record))
        # several rules reading the same data may say the same thing of one claim: once
        return ScrubbedClaim(record, _one_per_reason(findings),
                             notices=tuple(dict.fromkeys(notices)))

    def _to_run(self, context: ClaimContext) -> tuple[tuple[Rule, Severity], ...]:
        """The active rules of the claim's kind less those whose trigger it does not hold,
        and those whose gate (registry.Gate) it does not pass.

        A claim holds a trigger when one of its lines bills a code of the
        trigger's list; failing that, for a trigger that reaches further, when
        the ledger (or the whole day context) of its lines' dates holds one.
        Those lookups are the ones the rule itself would make, and each is
        cached per date, so the rule that then runs does not pay for them again.
        """
        kind = context.kind
        triggers = self._triggers.get(kind, ())
        held = 0
        if triggers:
            record = context.record
            lines = record.claim.lines
            procedures = {line.procedure for line in lines}
            days: list[date] | None = None
            for bit, (trigger, codes) in enumerate(triggers):
                if any(code in codes for code in procedures):
                    held |= 1 << bit
                    continue
                if trigger.reach == OWN_LINES:
                    continue
                if days is None:
                    days = [d for d in dict.fromkeys(service_date(record, line)
                                                     for line in lines) if d is not None]
                look = context.ledger_day if trigger.reach == OR_LEDGER else context.day
                if any(s.procedure in codes for d in days for s in look(d)):
                    held |= 1 << bit
        gates = self._gates.get(kind, ())
        if gates:
            tests, shared = self._gate_plan[kind]
            for test, bit in tests:
                if test(context):
                    held |= bit
            for holds, wanted in shared:
                facts = holds(context)
                for wants, bit in wanted:
                    if not facts.isdisjoint(wants):
                        held |= bit
        try:
            return self._runs[kind, held]
        except KeyError:
            chosen: set[Trigger | Gate] = {
                t for bit, (t, _) in enumerate(triggers) if held >> bit & 1}
            chosen.update(g for bit, g in enumerate(gates, len(triggers)) if held >> bit & 1)
            run = self._runs[kind, held] = tuple(
                (r, s) for r, s in self._active.get(kind, ())
                if (r.trigger is None or r.trigger in chosen)
                and (r.gate is None or r.gate in chosen))
            return run


# how ``_to_run`` asks a kind's gates: each test with its bit; each ``holds`` that gates share
# (Gate.holding), with the words and the bit of each of them
_GateTests = tuple[tuple[Callable[[ClaimContext], bool], int], ...]
_SharedHolds = tuple[tuple[Callable[[ClaimContext], frozenset[str]],
                           tuple[tuple[frozenset[str], int], ...]], ...]


def _gate_plan(gates: Sequence[Gate], first: int) -> tuple[_GateTests, _SharedHolds]:
    """How ``_to_run`` asks ``gates`` (their bits from ``first`` on, after the triggers'):
    a ``holds`` several gates share is worked out once a claim, not once a gate."""
    tests: list[tuple[Callable[[ClaimContext], bool], int]] = []
    shared: dict[Callable[[ClaimContext], frozenset[str]],
                 list[tuple[frozenset[str], int]]] = {}
    for bit, gate in enumerate(gates, first):
        if gate.holds is None:
            tests.append((gate.test, 1 << bit))
        else:
            shared.setdefault(gate.holds, []).append((gate.wants, 1 << bit))
    return tuple(tests), tuple((holds, tuple(wanted)) for holds, wanted in shared.items())


def _marking(lookup: Callable, flag: list[bool]) -> Callable:
    """``lookup``, setting ``flag[0]`` whenever it is called (it reads the ledger)."""
    def marked(*args: date) -> object:
        flag[0] = True
        return lookup(*args)
    return marked


def _without_data(rules: Sequence[Rule], resources: Resources
                  ) -> tuple[tuple[Rule, ...], tuple[Notice, ...]]:
    """The rules whose outside data is there, and a notice per missing kind of data.

    A rule that needs data nobody installed cannot judge any claim: it does not
    run, and the run says so once, naming the rules (not once per claim).
    """
    missing: dict[str, list[str]] = {}
    kept = []
    for rule in rules:
        absent = [name for name in rule.needs if resources.get(name) is None]
        for name in absent:
            missing.setdefault(name, []).append(rule.id)
        if not absent:
            kept.append(rule)
    from scrubber.rules.resources import describe

    notices = tuple(
        Notice(f"no-data-{name}", f"not checked: {', '.join(ids)} (no {describe(name)} "
               "installed; add them with `scrub data add`, see docs/data.md)", source=name)
        for name, ids in missing.items())
    return tuple(kept), notices


def _problem_patterns(profile: Profile, select: Sequence[str], ignore: Sequence[str]
                      ) -> tuple[Notice, ...]:
    """A notice for each of --select, --ignore and the profile that names problem codes.

    They are the payer's checks of the input (scrubber.problems): naming them
    switches nothing off, and the run says so rather than let a rejected set
    look filtered away.
    """
    from scrubber.problems import pattern_notice

    said = ((key, pattern_notice(kind, patterns)) for key, kind, patterns in (
        ("problem-codes-select", "--select", select),
        ("problem-codes-ignore", "--ignore", ignore),
        ("problem-codes-profile", f"the profile {profile.name}", profile.problem_settings)))
    return tuple(Notice(key, words, source="scrubber.problems")
                 for key, words in said if words is not None)


def _data_in_use(resources: Resources) -> tuple[Notice, ...]:
    """The run's line naming the reference data its rules judge by (releases, quarters)."""
    from scrubber.rules.resources import releases_in_use

    said = releases_in_use(resources)
    if not said:
        return ()
    return (Notice("data-in-use", f"reference data: {'; '.join(said)}", source="scrub data"),)


_NCCI_RULES = ("ncci-ptp", "mue")


def _one_per_reason(findings: list[Finding]) -> tuple[Finding, ...]:
    """Fold an NCCI finding into another rule's finding on the same line and 277CA status.

    A 96523 rule and an NCCI edit often reject the same line for the same
    reason; the biller gets one finding that names both sources, not two.
    """
    kept = [f for f in findings if f.rule not in _NCCI_RULES or f.status is None]
    for extra in (f for f in findings if f.rule in _NCCI_RULES and f.status is not None):
        for i, finding in enumerate(kept):
            if (finding.rule not in _NCCI_RULES and finding.status == extra.status
                    and finding.line_number == extra.line_number
                    and finding.location == extra.location):
                kept[i] = _merged(finding, extra)
                break
        else:
            kept.append(extra)
    return tuple(kept)


def _merged(finding: Finding, extra: Finding) -> Finding:
    stronger = extra.severity if milder(finding.severity, extra.severity) is finding.severity \
        else finding.severity
    return replace(finding, severity=stronger,
                   message=f"{finding.message} Also {extra.rule}: {extra.message}",
                   source=f"{finding.source}; {extra.rule}: {extra.source}",
                   related=tuple(dict.fromkeys(finding.related + extra.related)))


def _finding(rule: Rule, severity: Severity, hit: Hit, record: ClaimRecord) -> Finding:
    claim = record.claim
    location = hit.segment
    if location is None and hit.line is not None:
        location = hit.line.service_location or hit.line.location
    if location is None:
        location = claim.location
    return Finding(
        rule=rule.id,
        severity=milder(severity, hit.ceiling) if hit.ceiling is not None else severity,
        message=hit.message,
        fix=hit.fix,
        claim_id=claim.id,
        line_number=hit.line.number if hit.line is not None else None,
        location=location,
        segment_text=_segment_text(record, location),
        element=hit.element,
        status=rule.status,
        source=rule.source,
        related=hit.related,
    )


def _segment_text(record: ClaimRecord, location: Location) -> str:
    """The segment at ``location`` as sent: in the claim, its billing provider, or the ST."""
    separator = record.interchange.delimiters.element
    provider = record.billing_provider
    ordinal = location.segment
    for segments in (record.claim.segments, provider.segments if provider else ()):
        # read in order, so by bisection (a finding on a claim's last line would scan it all);
        # a scan stays for segments that are not
        at = bisect_left(segments, ordinal, key=_ORDINAL)
        if at < len(segments) and segments[at].ordinal == ordinal:
            return separator.join(segments[at].elements)
        for seg in segments:
            if seg.ordinal == ordinal:
                return separator.join(seg.elements)
    transaction = record.transaction
    if location == transaction.location:
        return separator.join(("ST", transaction.set_id, transaction.control_number,
                               transaction.version))
    return ""


def scrub_claim(record: ClaimRecord, profile: Profile) -> ScrubbedClaim:
    """Scrub one claim on its own (its own lines are its whole day context)."""
    return Engine(profile).scrub(record)


# -- the day index -------------------------------------------------------------------------

def patient_key(record: ClaimRecord) -> bytes:
    """A digest of the patient identity: the index never holds names or member ids."""
    return hashlib.blake2b("\x1f".join(patient_identity(record)).encode(),
                           digest_size=16).digest()


class DayIndex:
    """Service lines of one run by (patient, date), in a private SQLite database.

    A claim is known by its billing NPI, payer and CLM01 (``claim_key``). When
    the run holds the same claim twice, the later copy takes the place of the
    earlier in every other claim's day context, and the two copies never see
    each other's lines: a claim does not conflict with itself. The Spark job
    answers the same three questions from shuffled rows (scrubber.spark.stages):
    a change here is a change there, which tests/test_spark_stages.py checks.
    """

    def __init__(self, cache_kib: int = 4096, path: str = "", *, finished: bool = False):
        # "" opens a private temporary database: in memory while it fits the cache,
        # spilled to an unlinked temporary file beyond, gone when the connection closes.
        # A ``path`` (in a private directory) is for processes that share the index of a
        # run (scrubber.parallel): each fills its own, the run's merges them (``merge``);
        # with ``finished``, it is the run's finished index, opened read-only.
        if path and not finished:  # owner-only whatever the umask: it names patients' days
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600)
            os.fchmod(fd, 0o600)
            os.close(fd)
        self.db = sqlite3.connect(f"file:{path}?mode=ro" if finished else path, uri=finished)
        self.db.execute(f"PRAGMA cache_size = -{int(cache_kib)}")
        if not finished:
            self.db.execute("PRAGMA journal_mode = OFF")
            self.db.execute("PRAGMA synchronous = OFF")
            self.db.execute(
                "CREATE TABLE line (key BLOB, day TEXT, ordinal INTEGER, idx INTEGER, "
                "claim_id TEXT, payer TEXT, number INTEGER, procedure TEXT, modifiers TEXT, "
                "units TEXT, submission TEXT, segment INTEGER, physical INTEGER, offset INTEGER)")
            self.db.execute("CREATE TABLE claim (submission TEXT, key BLOB, npi TEXT, "
                            "payer TEXT, claim_id TEXT, frequency TEXT, ordinal INTEGER)")
        self._batch: list[tuple] = []
        self._claims: list[tuple] = []
        self._repeated: frozenset[int] | Literal[False] | None = None
        self.lines = 0

    def add(self, record: ClaimRecord, ordinal: int, submission: str) -> None:
        """Index the claim and its dated lines; a void adds no services, it cancels them."""
        self._repeated = None  # ``twins`` reads ``repeated`` again once ``finish`` remade it
        claim = record.claim
        key = patient_key(record)
        npi, payer, claim_id = claim_key(record)
        self._claims.append((submission, key, npi, payer, claim_id, claim.frequency, ordinal))
        if claim.frequency == "8":
            return
        for index, day, line in line_rows(record):
            self._batch.append((key, day.isoformat(), ordinal, index, claim.id, payer,
                                line.number, line.procedure, "\x1f".join(line.modifiers),
                                line.units_text, submission, *line.location))
        if len(self._batch) + len(self._claims) >= 1000:
            self._flush()

    def _flush(self) -> None:
        if self._batch:
            self.db.executemany("INSERT INTO line VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                                self._batch)
            self.lines += len(self._batch)
            self._batch = []
        if self._claims:
            self.db.executemany("INSERT INTO claim VALUES (?, ?, ?, ?, ?, ?, ?)", self._claims)
            self._claims = []

    def merge(self, path: str) -> None:
        """Take in the rows of another unfinished index (a share of the run) at ``path``."""
        self._flush()
        self.db.execute("ATTACH DATABASE ? AS share", (path,))
        try:
            self.db.execute("INSERT INTO line SELECT * FROM share.line")
            self.db.execute("INSERT INTO claim SELECT * FROM share.claim")
            self.db.commit()
        finally:
            self.db.execute("DETACH DATABASE share")

    def drop(self, first: int, last: int) -> None:
        """Take claims ``first``..``last`` out again (their set failed the IG check)."""
        self._repeated = None
        self._flush()
        self.db.execute("DELETE FROM line WHERE ordinal BETWEEN ? AND ?", (first, last))
        self.db.execute("DELETE FROM claim WHERE ordinal BETWEEN ? AND ?", (first, last))

    def flush(self) -> None:
        """Write what waits in memory and commit: the index can be merged elsewhere now."""
        self._flush()
        self.db.commit()

    def finish(self) -> None:
        """Index the tables once, after loading: faster than keeping an index during inserts.

        ``gone`` lists the claims a later copy of the same claim supersedes.
        """
        self._repeated = None
        self._flush()
        self.db.execute("CREATE INDEX line_day ON line (key, day)")
        self.db.execute("CREATE INDEX claim_id ON claim (claim_id, npi, payer, key)")
        self.db.execute(
            "CREATE TABLE gone AS SELECT DISTINCT a.ordinal FROM claim a JOIN claim b ON "
            "b.claim_id = a.claim_id AND b.npi = a.npi AND b.payer = a.payer AND b.key = a.key "
            "AND b.ordinal > a.ordinal")
        self.db.execute("CREATE UNIQUE INDEX gone_ordinal ON gone (ordinal)")
        # the (CLM01, billing NPI, submission) that more than one claim holds: ``twins``
        # asks SQLite only about those (most claims have no twin to look for)
        self.db.execute(
            "CREATE TABLE repeated AS SELECT claim_id, npi, submission FROM claim "
            "GROUP BY claim_id, npi, submission HAVING COUNT(*) > 1")
        self.db.commit()

    def services(self, key: bytes, day: date, ordinal: int, claim_id: str = "",
                 payer: str = "") -> tuple[DayService, ...]:
        """The lines of other claims of the run on ``day``: not claim ``ordinal``, not its
        other copies (same CLM01 and payer), not copies superseded by a later one."""
        rows = self.db.execute(
            "SELECT ordinal, idx, claim_id, number, procedure, modifiers, units, submission, "
            "segment, physical, offset FROM line WHERE key = ? AND day = ? AND ordinal != ? "
            "AND NOT (claim_id = ? AND payer = ?) "
            "AND ordinal NOT IN (SELECT ordinal FROM gone) ORDER BY ordinal, idx",
            (key, day.isoformat(), ordinal, claim_id, payer))
        return tuple(
            DayService(SUBMISSION, claim_id, row_ordinal, idx, number, procedure,
                       tuple(m for m in modifiers.split("\x1f") if m), _decimal(units),
                       submission, Location(segment, physical, offset))
            for row_ordinal, idx, claim_id, number, procedure, modifiers, units, submission,
            segment, physical, offset in rows)

    def services_between(self, key: bytes, first: date, last: date, ordinal: int,
                         claim_id: str = "", payer: str = ""
                         ) -> tuple[tuple[date, DayService], ...]:
        """``services`` over the dates ``first`` to ``last``, each with its date, in date order."""
        rows = self.db.execute(
            "SELECT day, ordinal, idx, claim_id, number, procedure, modifiers, units, "
            "submission, segment, physical, offset FROM line WHERE key = ? AND day BETWEEN ? "
            "AND ? AND ordinal != ? AND NOT (claim_id = ? AND payer = ?) "
            "AND ordinal NOT IN (SELECT ordinal FROM gone) ORDER BY day, ordinal, idx",
            (key, first.isoformat(), last.isoformat(), ordinal, claim_id, payer))
        return tuple(
            (date.fromisoformat(day), DayService(
                SUBMISSION, claim_id, row_ordinal, idx, number, procedure,
                tuple(m for m in modifiers.split("\x1f") if m), _decimal(units), submission,
                Location(segment, physical, offset)))
            for day, row_ordinal, idx, claim_id, number, procedure, modifiers, units, submission,
            segment, physical, offset in rows)

    def holds(self, key: bytes, claim_id: str, payer: str) -> bool:
        """True when the run holds a claim ``claim_id`` (a copy, a replacement or a void) of
        this patient: its ledger copy no longer counts (a payer "" is a first-ledger entry)."""
        return self.db.execute("SELECT 1 FROM claim WHERE key = ? AND claim_id = ? AND "
                               "(payer = ? OR ? = '') LIMIT 1",
                               (key, claim_id, payer, payer)).fetchone() is not None

    def twins(self, record: ClaimRecord, submission: str, ordinal: int) -> tuple[int, ...]:
        """Earlier original claims of the submission with this claim's billing NPI and CLM01.

        Asked of a claim the index holds (pass 2 scrubs no other): when no other claim
        shares its CLM01, NPI and submission (``repeated``), there is none, without a query.
        """
        npi = record.billing_provider.npi if record.billing_provider else ""
        repeated = self._repeated
        if repeated is None:
            repeated = self._repeated = self._load_repeated()
        if repeated is not False and hash((record.claim.id, npi, submission)) not in repeated:
            return ()
        return tuple(row[0] for row in self.db.execute(
            "SELECT ordinal FROM claim WHERE claim_id = ? AND npi = ? AND submission = ? "
            "AND ordinal < ? AND frequency NOT IN ('7', '8') ORDER BY ordinal",
            (record.claim.id, npi, submission, ordinal)))

    def _load_repeated(self) -> frozenset[int] | Literal[False]:
        """The hashes of ``finish``'s repeated claim keys (a hash another key shares costs a
        query, nothing else), or False (ask SQLite every time) when there are too many to
        hold (a file resent whole inside itself) or no finished table holds them."""
        try:
            rows = self.db.execute("SELECT claim_id, npi, submission FROM repeated LIMIT ?",
                                   (_REPEATED_HELD + 1,)).fetchall()
        except sqlite3.OperationalError:  # not finished: no table
            return False
        return frozenset(map(hash, rows)) if len(rows) <= _REPEATED_HELD else False

    def close(self) -> None:
        self.db.close()


def line_rows(record: ClaimRecord) -> Iterator[tuple[int, date, LineKey]]:
    """The claim's lines with a date of service: (index in the claim, date, line key).

    Read from the claim's segments without building its body (``ClaimSource.line_keys``):
    the scrub pass builds it, the index pass need not build it too.
    """
    statement, keys = record.claim.source.line_keys()
    kind = record.transaction.kind
    for index, line in enumerate(keys):
        day = line_date(kind, line.dated, line.day, statement)
        if day is not None:
            yield index, day, line


def _decimal(text: str) -> Decimal | None:
    try:
        return Decimal(text) if text else None
    except InvalidOperation:
        return None


class DayContextIndex(Protocol):
    """What a claim's day lookups read from the run's claims: DayIndex, or the Spark job's."""

    def services(self, key: bytes, day: date, ordinal: int, claim_id: str = "",
                 payer: str = "") -> tuple[DayService, ...]: ...

    def services_between(self, key: bytes, first: date, last: date, ordinal: int,
                         claim_id: str = "", payer: str = ""
                         ) -> tuple[tuple[date, DayService], ...]: ...

    def holds(self, key: bytes, claim_id: str, payer: str) -> bool: ...

    def twins(self, record: ClaimRecord, submission: str, ordinal: int) -> tuple[int, ...]: ...


def _day_lookups(record: ClaimRecord, ordinal: int, submission: str, index: DayContextIndex,
                 ledger: LedgerReader | None, key: bytes) -> tuple[DayLookup, DayLookup]:
    """The claim's day context, whole and the ledger's part alone, each cached per date.

    ``key`` is the claim's ``patient_key`` (worked out once per claim: a digest of
    normalised names). Its span lookup over a period is ``_span_lookup``'s.
    """
    _, payer, claim_id = claim_key(record)
    cache: dict[date, tuple[DayService, ...]] = {}
    sent: dict[date, tuple[DayService, ...]] = {}

    def from_ledger(day: date) -> tuple[DayService, ...]:
        if ledger is None:
            return ()
        if day not in sent:
            sent[day] = _ledger_services(record, key, day, submission, index, ledger)
        return sent[day]

    def lookup(day: date) -> tuple[DayService, ...]:
        if day not in cache:
            cache[day] = own_services(record, submission, ordinal, day) + \
                index.services(key, day, ordinal, claim_id, payer) + from_ledger(day)
        return cache[day]

    return lookup, from_ledger


def _span_lookup(record: ClaimRecord, ordinal: int, submission: str, index: DayContextIndex,
                 ledger: LedgerReader | None, key: bytes) -> SpanLookup:
    """The claim's services over a period: its own lines, the run's and the ledger's, by date
    (``key``: its ``patient_key``)."""
    _, payer, claim_id = claim_key(record)
    cache: dict[tuple[date, date], tuple[tuple[date, DayService], ...]] = {}

    def span(first: date, last: date) -> tuple[tuple[date, DayService], ...]:
        if (first, last) not in cache:
            found = [*own_span(record, submission, ordinal, first, last),
                     *index.services_between(key, first, last, ordinal, claim_id, payer)]
            if ledger is not None:
                lines = ledger.lines_between(patient_identity(record), first, last,
                                             exclude_submission=submission)
                found += [(item.service_date, service) for item in lines
                          if (service := _ledger_service(key, item, index)) is not None]
            cache[first, last] = tuple(sorted(found, key=lambda pair: pair[0]))
        return cache[first, last]

    return span


def _ledger_services(record: ClaimRecord, key: bytes, day: date, submission: str,
                     index: DayContextIndex, ledger: LedgerReader) -> tuple[DayService, ...]:
    return tuple(service for item in ledger.lines_for(patient_identity(record), day,
                                                      exclude_submission=submission)
                 if (service := _ledger_service(key, item, index)) is not None)


def _ledger_service(key: bytes, item: LedgerLine, index: DayContextIndex) -> DayService | None:
    """A ledger line as a day-context service; None when the run holds its claim.

    The run's own copy of a claim (this one, a resend, a replacement or a void of
    it) takes the place of the ledger's: a claim never conflicts with itself.
    """
    if index.holds(key, item.claim_id, item.payer):
        return None
    return DayService(LEDGER, item.claim_id, 0, (item.line_number or 0) - 1, item.line_number,
                      item.procedure, tuple(item.modifiers), item.units, item.submission, None)


def held_claim(record: ClaimRecord, hold: Hold) -> ScrubbedClaim:
    """A claim the rules do not see: its transaction set was rejected before them (999),
    or its interchange (TA1). ``hold.causes`` go with it, for reports to count its charge
    under the errors that caused the hold."""
    claim = record.claim
    if hold.answer == "TA1":
        answered = "a payer answers this interchange with a TA1 only"
        fix = "Correct the interchange envelope errors listed for the file and send it again"
    else:
        answered = "a payer answers this set with a 999 only"
        fix = ("Correct the implementation-guide errors listed for its transaction set and "
               "send the set again")
    causes = f" (caused by {', '.join(hold.causes)})" if hold.causes else ""
    finding = Finding(
        rule="ig-999", severity=Severity.REJECT,
        message=f"not scrubbed further: {hold.reason}{causes}",
        fix=f"{fix}; {answered}.",
        claim_id=claim.id, line_number=None, location=claim.location,
        segment_text=_segment_text(record, claim.location),
        source="ASC X12 005010X231A1 (999) and the interchange acknowledgment (TA1): a "
               "rejected transaction set goes no further")
    return ScrubbedClaim(record, (finding,), held=True, causes=hold.causes)


def scrub_indexed(events: Iterable[Event], engine: Engine, index: DayContextIndex,
                  ledger: LedgerReader | None = None,
                  held: Callable[[ClaimRecord], Hold | None] | None = None, *, first: int = 1,
                  recording: str | None = None,
                  skip: Callable[[ClaimRecord], bool] | None = None
                  ) -> Iterator[Event | ScrubbedClaim]:
    """Pass 2: ``events`` with every ClaimRecord scrubbed against ``index`` and ``ledger``.

    The claims are numbered from ``first`` in the order they come (as ``index``
    numbers them); a claim ``held`` names a reason for (its transaction set
    failed the implementation-guide check) is not scrubbed. With a
    ``recording`` (and a ``LedgerRecorder`` as ``ledger``) each accepted claim
    is recorded, held under that recording, in the same locked transaction that
    read its day from the ledger (``_decide``). A claim ``skip`` is
    true for is counted and passed on as it came (another process scrubs it:
    scrubber.parallel).
    """
    if recording is not None and ledger is not None:
        recorder = cast("LedgerRecorder", ledger)
        yield from _in_blocks(events, partial(_decide, engine, index, recorder, recording),
                              held, first, skip)
    elif isinstance(ledger, LedgerBatchReader):  # a store: a block's reads batched
        yield from _in_blocks(events, partial(_prefetched, engine, index, ledger),
                              held, first, skip)
    else:  # a claim at a time: its reads are its own queries, or none
        yield from _in_blocks(events, partial(_each, engine, index, ledger), held, first, skip,
                              size=1)


def _scrub_one(engine: Engine, record: ClaimRecord, ordinal: int, index: DayContextIndex,
               ledger: LedgerReader | None, memo: dict[str, tuple] | None = None
               ) -> ScrubbedClaim:
    submission = submission_id(record)
    key = patient_key(record)
    day, ledger_day = _day_lookups(record, ordinal, submission, index, ledger, key)
    sent = None
    if ledger is not None:
        def sent() -> SentClaim | None:
            return ledger.sent_claim(claim_key(record))
    return engine.scrub(record, ordinal=ordinal, submission=submission, day=day,
                        twins=partial(index.twins, record, submission, ordinal),
                        ledger_day=ledger_day, sent=sent,
                        span=_span_lookup(record, ordinal, submission, index, ledger, key),
                        memo=memo)


# claims decided per ledger transaction: a file of up to this many claims (a service's
# submission, typically) takes the ledger's write lock once; a bigger one a few times,
# each short enough for other submissions to get their turn
_DECISION_BATCH = 256


Block = list[tuple[int, ClaimRecord]]  # claims scrubbed together, each with its ordinal


def _in_blocks(events: Iterable[Event], decide: Callable[[Block], list[ScrubbedClaim]],
               held: Callable[[ClaimRecord], Hold | None] | None, first: int,
               skip: Callable[[ClaimRecord], bool] | None, size: int = _DECISION_BATCH
               ) -> Iterator[Event | ScrubbedClaim]:
    """Pass 2 a block of claims at a time: ``decide`` scrubs each block of up to ``size``
    claims (with their ordinals) at once. The events after a block's first claim wait in
    ``out`` until it is decided, and come out in the order they came; a claim ``skip`` is
    true for (another worker's) decides the block first, so that none waits."""
    out: list = []
    block: Block = []  # (ordinal, claim)
    slots: list[int] = []  # where each claim of the block goes in ``out``

    def flush() -> Iterator[Event | ScrubbedClaim]:
        if block:
            for slot, scrubbed in zip(slots, decide(block), strict=True):
                out[slot] = scrubbed
            block.clear()
            slots.clear()
        yield from out
        out.clear()

    ordinal = first - 1
    for event in events:
        item: Event | ScrubbedClaim = event
        if event.__class__ is _CLAIM_RECORD:
            ordinal += 1
            if skip is not None and skip(event):
                yield from flush()  # another worker's share: none of its claims waits in out
            else:
                reason = held(event) if held is not None else None
                if reason is None:
                    slots.append(len(out))
                    block.append((ordinal, event))
                    out.append(None)
                    if len(block) >= size:
                        yield from flush()
                    continue
                item = held_claim(event, reason)
        if block:
            out.append(item)
        else:
            yield item
    yield from flush()


def _each(engine: Engine, index: DayContextIndex, ledger: LedgerReader | None, block: Block
          ) -> list[ScrubbedClaim]:
    return [_scrub_one(engine, record, ordinal, index, ledger) for ordinal, record in block]


def _prefetched(engine: Engine, index: DayContextIndex, ledger: LedgerBatchReader,
                block: Block) -> list[ScrubbedClaim]:
    """A block scrubbed against one batched read of the ledger (``reader``): its days and
    copies in a query per 200 keys, not one or more per claim. Over a network (PostgreSQL)
    the round trips, not the rows, are the cost of a check."""
    view = ledger.reader(set().union(*(ledger.lock_keys(record) for _, record in block)))
    return [_scrub_one(engine, record, ordinal, index, view) for ordinal, record in block]


def _decide(engine: Engine, index: DayContextIndex, ledger: LedgerRecorder, recording: str,
            block: Block) -> list[ScrubbedClaim]:
    """A block decided and recorded in one locked ledger transaction, held under
    ``recording``.

    Two workers scrubbing the same patient and day at once take turns: the
    second reads what the first held. Nothing is yielded (and handed to a slow
    consumer) while the ledger's locks are held (``_in_blocks``).
    """
    # the rules that read nothing of the ledger run before its lock is taken (the ledger's
    # lock serializes every decision on SQLite: it is held for the ledger's part only);
    # their hits wait in a memo per claim (Engine.scrub). What the ledger records of a
    # claim but its verdict (``prepare``) is made before it too.
    memos: list[dict[str, tuple]] = []
    ready = []
    for ordinal, record in block:
        memos.append({})
        ready.append(ledger.prepare(_scrub_one(engine, record, ordinal, index, None,
                                               memos[-1])))
    # the keys to hold, from the prepared rows (``lock_keys`` would build every claim's
    # lines and hash its patient again)
    keys = set().union(*(ledger.prepared_keys(p) for p in ready))
    decided = []
    with ledger.deciding(keys, recording=recording) as decision:
        for (ordinal, record), memo, prepared in zip(block, memos, ready, strict=True):
            scrubbed = _scrub_one(engine, record, ordinal, index, decision, memo)
            decision.record(submission_id(record), replace(prepared, rejected=scrubbed.rejected))
            decided.append(scrubbed)
    return decided
