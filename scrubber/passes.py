"""The two passes of a scrub, as functions of values: what the core and its workers call.

Pass 1, ``check_and_index``, reads a source once: the implementation-guide
check (its report, for the 999 and for holding the claims of the sets it
rejects) and the rows of the run's day index. Pass 2, ``scrub_checked``, reads
it again and judges each claim against that index and the ledger. The scrub
core (scrubber.core) runs both over a run; ``--jobs`` workers
(scrubber.parallel) run them over their shares. Neither keeps state between
calls: what one pass made is the value the next one is given.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol, cast

from scrubber.emit.sinks import FileEnd, Sink
from scrubber.emit.summary import Tally
from scrubber.model import ClaimRecord, Event, Source, read
from scrubber.rules.context import submission_id
from scrubber.rules.findings import Notice, ScrubbedClaim

if TYPE_CHECKING:
    from scrubber.ig import IgReport
    from scrubber.ig.gate import Gate
    from scrubber.options import ScrubOptions
    from scrubber.rules.engine import DayContextIndex, DayIndex, Engine


def make_engine(options: ScrubOptions) -> Engine:
    """The rules of ``options``: its profile (loaded once), data, and rule selection."""
    from scrubber.rules import Profile, load_profile
    from scrubber.rules.engine import Engine

    profile = options.profile
    return Engine(profile if isinstance(profile, Profile) else load_profile(profile),
                  resources=options.resources, select=options.select, ignore=options.ignore)


@dataclass(frozen=True, slots=True)
class Indexed:
    """What pass 1 made of one source: its IG report and where its claims are numbered."""

    report: IgReport | None  # the implementation-guide check; None when it did not run
    first: int  # ordinal of the source's first claim in the run
    last: int  # ordinal of its last claim (first - 1 when it has none)
    # with ``owns``: ordinal of the first claim of the first set it took (its sets are one
    # stretch of the file, so their claims are numbered on from there)
    own_first: int = 0

    def gate(self) -> Gate | None:
        """What holds the claims of the sets the check rejected."""
        from scrubber.ig.gate import Gate

        return Gate(self.report) if self.report is not None else None


def check_and_index(options: ScrubOptions, source: Source, name: str,
                    index: DayIndex | None, *, ordinal: int = 0,
                    owns: Callable[[int], bool] | None = None,
                    stage: Callable[[str], None] = lambda label: None) -> Indexed:
    """Pass 1: check ``source`` against the implementation guides and index its claims.

    The claims are numbered on from ``ordinal``; those of a transaction set the
    check rejects are taken out of ``index`` again (the payer never sees them).
    ``index`` None checks without indexing (the run's index was built
    elsewhere). With ``owns`` (scrubber.parallel), only the sets whose ST
    offset it takes are read, checked and indexed; the others' claims are only
    counted (``SkippedClaims``).
    """
    from scrubber.ig.gate import transaction_key
    from scrubber.model.walker import SkippedClaims

    checked = None
    if options.conformance:
        from scrubber.ig.checker import CheckedRead

        stage(f"checking {name}" + (" and indexing its day context" if index else ""))
        checked = CheckedRead(source, companion=options.companion, owns=owns)
        events: Iterator[Event] = checked.events()
    elif index is not None:
        stage(f"indexing the day context of {name}")
        events = read(source, owns=owns)
    else:  # nothing to check or index: the claims are numbered as pass 2 reads them
        return Indexed(None, ordinal + 1, ordinal)
    first = ordinal + 1
    own_first = 0
    spans: list[list] = []  # [transaction key, first ordinal, last ordinal] of indexed claims
    for event in events:
        if event.__class__ is not ClaimRecord:
            if event.__class__ is SkippedClaims:
                ordinal += cast(SkippedClaims, event).count
            continue
        ordinal += 1
        if not own_first:
            own_first = ordinal
        if index is None or (owns is not None and
                             not owns(event.transaction.location.offset)):
            continue
        index.add(event, ordinal, submission_id(event))
        if checked is not None:
            key = transaction_key(event)
            if spans and spans[-1][0] == key and spans[-1][2] == ordinal - 1:
                spans[-1][2] = ordinal
            else:
                spans.append([key, ordinal, ordinal])
    report = checked.report() if checked is not None else None
    if report is not None and index is not None:
        for key, low, high in spans:
            if not report.is_accepted(*key):
                index.drop(low, high)
    return Indexed(report, first, ordinal, own_first or ordinal + 1)


def read_checked(source: Source, gate: Gate | None, owns: Callable[[int], bool] | None = None
                 ) -> Iterator[Event]:
    """A fresh read of the source, with the IG check's problems laid in; with ``owns``, of
    the sets it takes (see ``read``)."""
    events = read(source, owns=owns)
    return gate.annotate(events) if gate is not None else events


def scrub_checked(engine: Engine, source: Source, indexed: Indexed, index: DayContextIndex, *,
                  ledger: Any = None, recording: str | None = None,
                  skip: Callable[[ClaimRecord], bool] | None = None,
                  owns: Callable[[int], bool] | None = None, first: int | None = None
                  ) -> Iterator[Event | ScrubbedClaim]:
    """Pass 2: the source's events, each claim scrubbed against ``index`` and ``ledger``.

    The claims of a set the check rejected are held, not scrubbed. With a
    ``recording``, each accepted claim is held in the ledger under it as it
    is decided (scrubber.rules.engine.scrub_indexed); ``skip`` passes claims
    another process scrubs through as they came. With ``owns``, only the sets it
    takes are read (the others' claims are only counted): their claims are
    numbered from ``first`` (``Indexed.own_first`` of pass 1 with the same ``owns``).
    """
    from scrubber.rules.engine import scrub_indexed

    gate = indexed.gate()
    return scrub_indexed(read_checked(source, gate, owns), engine, index, ledger,
                         gate.held if gate is not None else None,
                         first=indexed.first if first is None else first,
                         recording=recording, skip=skip)


# -- feeding the sinks -----------------------------------------------------------------

class Progress(Protocol):
    """What a front end shows while a run lasts: the stage, and how far into a source."""

    def stage(self, label: str) -> None: ...

    def advance(self, name: str, offset: int) -> None: ...


@dataclass(slots=True)
class RunOutcome:
    """What a run over several sources came to, for the exit code."""

    files: int = 0
    unreadable: bool = False  # some input could not be read at all
    rejected: bool = False  # some envelope or claim would be rejected
    warned: bool = False  # some claim carries a warning
    # the sources that could not be read at all, with why: never skipped in silence
    not_scrubbed: list[tuple[str, str]] = field(default_factory=list)

    def add(self, name: str, tally: Tally) -> None:
        self.files += 1
        if tally.unreadable:
            self.unreadable = True
            self.not_scrubbed.append((name, tally.reason))
        self.rejected |= bool(tally.rejected or tally.envelope_errors)
        self.warned |= bool(tally.warnings)

    def failed(self, fail_on: str = "reject") -> bool:
        """Whether a payer would turn something away (with "warn": or warn about it)."""
        return self.rejected or (fail_on == "warn" and self.warned)


class RunNotices:
    """What a run says once: the engine's notices, and the claims' folded by key, counted."""

    def __init__(self, engine_notices: Iterable[Notice] = ()):
        self._found: dict[str, list] = {n.key: [n, 0] for n in engine_notices}

    def add(self, claim: ScrubbedClaim) -> None:
        for notice in claim.notices:
            found = self._found.setdefault(notice.key, [notice, 0])
            found[1] += 1

    def deliver(self, sinks: Sequence[Sink]) -> None:
        """Hand every sink each notice, with the claims it concerns counted."""
        for notice, claims in self._found.values():
            folded = replace(notice, claims=claims) if claims else notice
            for sink in sinks:
                sink.notice(folded)


class TallySink(Sink):
    """A sink that counts a run's events into ``tally`` (a front end's own outcome)."""

    def __init__(self, tally: Tally):
        self.tally = tally

    def event(self, event: Any) -> None:
        self.tally.add(event)


def feed(name: str, events: Iterable[Event | ScrubbedClaim], sinks: Sequence[Sink], *,
         conformance: IgReport | Callable[[], IgReport | None] | None = None,
         progress: Progress | None = None, notices: RunNotices | None = None) -> Tally:
    """Hand one source's scrubbed events to every sink as they come; return its counts.

    ``begin_file``, every event, then ``end_file`` with the counts and the IG report
    (``conformance``, or a function that gives it once the events are through);
    ``notices`` gathers what the claims say for the run to say once.
    """
    for sink in sinks:
        sink.begin_file(name)
    counts = Tally()
    for event in events:
        counts.add(event)
        if event.__class__ is ScrubbedClaim:
            if notices is not None:
                notices.add(cast(ScrubbedClaim, event))
            if progress is not None:
                progress.advance(name, cast(ScrubbedClaim, event).record.claim.location.offset)
        for sink in sinks:
            sink.event(event)
    report = conformance() if callable(conformance) else conformance
    end = FileEnd(name, counts.summary(), report)
    for sink in sinks:
        sink.end_file(end)
    return counts
