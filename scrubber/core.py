"""The scrub core: one options object and one Scrubber that every front end drives.

A front end (the command line, the watcher, the Python API, the HTTP service
and the Spark job) turns its own input into ``ScrubOptions`` and
a source, and its own output out of sinks (scrubber.emit.sinks). The core
does the rest in one place: the implementation-guide check first, as a
payer's front end does; the rules over every claim with its day context and
the ledger's history; recording the accepted claims when asked; and feeding
each event to the sinks as it comes, so nothing of a file is held.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol, cast

from scrubber.emit.ack277 import Ack277Writer
from scrubber.emit.sinks import FileEnd, Sink
from scrubber.emit.summary import Tally
from scrubber.model import ClaimRecord, Event, Source, read
from scrubber.rules import Profile, ScrubbedClaim, load_profile
from scrubber.rules import scrub_events as rules_scrub
from scrubber.rules.context import submission_id
from scrubber.rules.findings import Notice
from scrubber.rules.resources import Resources

if TYPE_CHECKING:
    from scrubber.ig import IgReport
    from scrubber.ig.gate import Gate
    from scrubber.rules.engine import DayIndex

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AckIdentity:
    """Who we are in the acknowledgements we write (277CA, 999, TA1)."""

    sender_id: str = "SCRUBBER"  # ISA06 / GS02
    sender_qualifier: str = "ZZ"  # ISA05
    name: str = "SCRUBBER"  # 277CA 2100A NM103, the information source

    def writer(self) -> Ack277Writer:
        """An acknowledgement writer with this identity and fresh control numbers."""
        return Ack277Writer(sender_id=self.sender_id, sender_qualifier=self.sender_qualifier,
                            source_name=self.name, source_id=self.sender_id)


@dataclass(frozen=True, slots=True)
class ScrubOptions:
    """Everything that decides a scrub's verdicts, set once by a front end.

    Frozen and picklable: the watcher hands it to worker processes as is.
    """

    profile: Profile | str | None = None  # a loaded profile or its path; None: the default
    companion: str | None = None  # a payer companion guide of x12_maps/ig-overrides.xml
    conformance: bool = True  # the implementation-guide check first (999), as a payer does
    resources: Resources = field(default_factory=Resources)  # NCCI tables, code sets ...
    ledger: str | None = None  # claim history: a path or postgresql:// URL; None: none
    record: bool = False  # record accepted claims in the ledger (a submission, not a check)
    # with record: recorded as held (in every day context at once, not yet sent) until the
    # caller has forwarded them and calls ledger.release(submission)
    hold: bool = False
    ack: AckIdentity = field(default_factory=AckIdentity)
    fail_on: str = "reject"  # "reject" or "warn": what makes a run fail
    select: tuple[str, ...] = ()  # rule ids or prefixes ("snip-") to run only; () all
    ignore: tuple[str, ...] = ()  # rule ids or prefixes to leave out

    def __post_init__(self) -> None:
        if self.fail_on not in ("reject", "warn"):
            raise ValueError(f"fail_on must be 'reject' or 'warn', not {self.fail_on!r}")


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


class Scrubber:
    """Scrubs sources with one set of options into sinks; holds the profile, rules and ledger.

    ``ledger`` is an open ledger to use instead of opening ``options.ledger``
    (the caller keeps it and closes it); ``acks`` an acknowledgement writer to
    use instead of one made from ``options.ack`` (tests inject clock and
    control numbers this way). Close the Scrubber (or use ``with``) to close a
    ledger it opened.
    """

    def __init__(self, options: ScrubOptions | None = None, *, ledger: Any = None,
                 acks: Ack277Writer | None = None):
        from scrubber.rules.engine import Engine

        self.options = options or ScrubOptions()
        profile = self.options.profile
        self.profile = profile if isinstance(profile, Profile) else load_profile(profile)
        self.engine = Engine(self.profile, resources=self.options.resources,
                             select=self.options.select, ignore=self.options.ignore)
        self._own_ledger = ledger is None and self.options.ledger is not None
        self.ledger = ledger
        if self._own_ledger:
            from scrubber.ledger import open_store

            self.ledger = open_store(self.options.ledger)
        self._acks = acks

    @property
    def acks(self) -> Ack277Writer:
        """The acknowledgement writer: one per Scrubber, so control numbers never repeat."""
        if self._acks is None:
            self._acks = self.options.ack.writer()
        return self._acks

    def close(self) -> None:
        if self._own_ledger and self.ledger is not None:
            self.ledger.close()
            self.ledger = None

    def __enter__(self) -> Scrubber:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the event stream ------------------------------------------------------------------
    def events(self, source: Source, *, conformance: list | None = None,
               progress: Progress | None = None, name: str = "<source>"
               ) -> Iterator[Event | ScrubbedClaim]:
        """The scrubbed event stream of one source: model events, claims as ScrubbedClaim.

        ``source`` is a path, bytes or a binary stream. With the options'
        ``conformance`` the implementation-guide check runs first: its errors
        come out as transaction-set problems and the claims of a rejected set
        are held (``ScrubbedClaim.held``) instead of scrubbed; its report is
        appended to ``conformance`` (for a 999). With the options' ``record``,
        each accepted claim is recorded in the ledger as it is decided.
        """
        from scrubber.rules.engine import DayIndex, scrub_indexed

        stage = progress.stage if progress is not None else _silent
        with _passes(source) as again:
            if type(self).scrub_claims is not Scrubber.scrub_claims:  # its own day context
                gate = self._gate(again, name, stage, conformance)
                passes = iter((f"indexing the day context of {name}", f"scrubbing {name}"))

                def events() -> Iterator[Event]:
                    stage(next(passes, f"scrubbing {name}"))
                    return _read(again, gate)

                yield from self.scrub_claims(events, held=gate.held if gate else None)
                return
            index = DayIndex()
            try:
                gate, _ = index_source(self.options, again(), name, index, stage=stage,
                                       reports=conformance)
                index.finish()
                stage(f"scrubbing {name}")
                yield from scrub_indexed(_read(again, gate), self.engine, index, self.ledger,
                                         gate.held if gate else None,
                                         record=self.options.record, hold=self.options.hold)
            finally:
                index.close()

    def _gate(self, again: Callable[[], Source], name: str, stage: Callable[[str], None],
              conformance: list | None) -> Gate | None:
        """The implementation-guide check of a source, when the options ask for it."""
        if not self.options.conformance:
            return None
        from scrubber.ig import check as ig_check
        from scrubber.ig.gate import Gate

        stage(f"checking {name} against the implementation guides")
        report = ig_check(again(), companion=self.options.companion)
        if conformance is not None:
            conformance.append(report)
        return Gate(report)

    def scrub_claims(self, open_events: Callable[[], Iterator[Event]], *,
                     held: Callable[[ClaimRecord], str | None] | None = None
                     ) -> Iterator[Event | ScrubbedClaim]:
        """The rules over every claim of ``open_events()``, with the day context of the source.

        The seam for a front end that gathers the day context elsewhere (the
        Spark job shuffles it in from every file of the run): override this,
        and the implementation-guide check, sinks and recording stay the core's.
        When it is overridden, ``events`` and ``scrub_into`` check a source on
        its own first and then call it; otherwise they check and index in one
        reading (``index_source``) and do not. ``run`` over several sources or
        with jobs never does: it indexes them all into one day context itself.
        """
        return rules_scrub(open_events, profile=self.profile, ledger=self.ledger,
                           engine=self.engine, held=held, record=self.options.record,
                           hold=self.options.hold)

    # -- one source into sinks -------------------------------------------------------------
    def scrub_into(self, source: Source, name: str, sinks: Sequence[Sink], *,
                   progress: Progress | None = None, notices: RunNotices | None = None
                   ) -> Tally:
        """Scrub one source, feeding every sink as events come; return the file's counts.

        With ``options.record`` and a ledger, each accepted claim is recorded
        as it is decided (scrubber.rules.engine.scrub_events: serialized per
        patient-day key, so two workers never both accept a conflict).
        ``progress`` hears each stage and, as claims pass, their byte offsets.
        """
        reports: list = []
        events = self.events(source, conformance=reports, progress=progress, name=name)
        return feed(name, events, sinks, conformance=lambda: _first(reports),
                    progress=progress, notices=notices)

    def run(self, sources: Sequence[tuple[Source, str]], sinks: Sequence[Sink], *,
            progress: Progress | None = None, jobs: int = 1) -> RunOutcome:
        """Scrub the (source, name) pairs as one run into the same sinks, then close them.

        The day context spans the run, as a payer's spans every claim it has: a
        96523 in one file and an office visit for the same patient and day in
        another conflict, and the same claim in two files is one claim. Every
        source is checked and indexed first, then each is scrubbed into the
        sinks in turn (a one-shot stream is spooled to an owner-only file).
        With ``jobs`` > 1 and files for sources, the checking, indexing and
        scrubbing are shared by that many processes (scrubber.parallel); what
        the sinks get is the same as with one job.
        """
        from scrubber.rules.engine import DayIndex, scrub_indexed

        outcome = RunOutcome()
        stage = progress.stage if progress is not None else _silent
        notices = RunNotices(self.engine.notices)
        try:
            if jobs > 1 and self._shareable(sources):
                done = self._run_parallel(sources, sinks, progress, jobs, notices)
                if done is not None:
                    notices.deliver(sinks)
                    return done
            if len(sources) == 1:
                (source, name), = sources
                outcome.add(name, self.scrub_into(source, name, sinks, progress=progress,
                                                  notices=notices))
                notices.deliver(sinks)
                return outcome
            with ExitStack() as stack:
                index = DayIndex()
                stack.callback(index.close)
                planned = []
                ordinal = 0
                for source, name in sources:
                    again = stack.enter_context(_passes(source))
                    reports: list = []
                    first = ordinal + 1
                    gate, ordinal = index_source(self.options, again(), name, index,
                                                 stage=stage, reports=reports, ordinal=ordinal)
                    planned.append((again, name, gate, reports, first))
                index.finish()
                for again, name, gate, reports, first in planned:
                    stage(f"scrubbing {name}")
                    events = scrub_indexed(
                        _read(again, gate), self.engine, index, self.ledger,
                        gate.held if gate else None, first=first,
                        record=self.options.record, hold=self.options.hold)
                    outcome.add(name, feed(name, events, sinks, conformance=_first(reports),
                                           progress=progress, notices=notices))
            notices.deliver(sinks)
        finally:
            for sink in sinks:
                sink.close()
        return outcome

    def _shareable(self, sources: Sequence[tuple[Source, str]]) -> bool:
        """Whether worker processes can take this run: files, and nothing they cannot see
        (a ledger object handed in, a subclass's own day context)."""
        return (type(self).scrub_claims is Scrubber.scrub_claims
                and (self._own_ledger or self.ledger is None)
                and all(isinstance(source, (str, os.PathLike)) and os.path.isfile(source)
                        for source, _ in sources))

    def _run_parallel(self, sources: Sequence[tuple[Source, str]], sinks: Sequence[Sink],
                      progress: Progress | None, jobs: int, notices: RunNotices
                      ) -> RunOutcome | None:
        """``run`` over ``jobs`` processes; None when they failed before any sink was fed
        (the run is then done in this process: the same results, only slower).

        The workers check and index first; then, while they scrub, this process
        reads each file again and feeds the sinks, taking each claim's findings
        as its worker writes them (or scrubbing it here, should its worker fail).
        """
        from scrubber.ig.gate import Gate
        from scrubber.parallel import Findings, Parallel
        from scrubber.rules.engine import DayIndex, scrub_indexed

        stage = progress.stage if progress is not None else _silent
        paths = [os.fspath(cast("str", source)) for source, _ in sources]
        with ExitStack() as stack:
            try:
                workers = stack.enter_context(Parallel(self.options, self.engine, paths, jobs))
                stage(f"checking and indexing {_files(paths)} with {jobs} jobs")
                reports, index_path = workers.index()
                index = DayIndex(path=index_path, finished=True)
                stack.callback(index.close)
                spools = workers.scrub(reports, index_path)
            except Exception as exc:  # a worker died or failed: one process does it all
                log.warning("the %d jobs failed (%s: %s); scrubbing in one process", jobs,
                            type(exc).__name__, exc)
                return None

            def local(record: ClaimRecord, ordinal: int) -> ScrubbedClaim:
                scrubbed, = scrub_indexed([record], self.engine, index, self.ledger,
                                          first=ordinal, record=self.options.record,
                                          hold=self.options.hold)
                return cast(ScrubbedClaim, scrubbed)

            findings = Findings(spools, workers.shares, local)
            stack.callback(findings.close)
            outcome = RunOutcome()
            for number, ((_, name), path, report) in enumerate(
                    zip(sources, paths, reports, strict=True)):
                stage(f"scrubbing {name} with {jobs} jobs")
                gate = Gate(report) if report is not None else None
                events = findings.scrubbed(_read(partial(os.fspath, path), gate), gate, number)
                outcome.add(name, feed(name, events, sinks, conformance=report,
                                       progress=progress, notices=notices))
            return outcome


def index_source(options: ScrubOptions, source: Source, name: str, index: DayIndex, *,
                 stage: Callable[[str], None] = lambda label: None,
                 reports: list | None = None, ordinal: int = 0,
                 owns: Callable[[int], bool] | None = None) -> tuple[Gate | None, int]:
    """Index a source's claims into the run's day index, IG-checking it in the same reading.

    The claims are numbered on from ``ordinal``; the claims of a transaction
    set the check rejects are taken out again (the payer never sees them).
    With ``owns`` (scrubber.parallel), only the sets whose ST offset it takes
    are checked and indexed. The IG report goes onto ``reports``; returned:
    the gate that holds the rejected sets' claims, and the last ordinal.
    """
    from scrubber.ig.gate import Gate, transaction_key

    checked = None
    if options.conformance:
        from scrubber.ig.checker import CheckedRead

        stage(f"checking {name} and indexing its day context")
        checked = CheckedRead(source, companion=options.companion, owns=owns)
        events = checked.events()
    else:
        stage(f"indexing the day context of {name}")
        events = read(source)
    spans: list[list] = []  # [transaction key, first ordinal, last ordinal] of indexed claims
    for event in events:
        if event.__class__ is not ClaimRecord:
            continue
        ordinal += 1
        if owns is not None and not owns(event.transaction.location.offset):
            continue
        index.add(event, ordinal, submission_id(event))
        if checked is not None:
            key = transaction_key(event)
            if spans and spans[-1][0] == key and spans[-1][2] == ordinal - 1:
                spans[-1][2] = ordinal
            else:
                spans.append([key, ordinal, ordinal])
    if checked is None:
        return None, ordinal
    report = checked.report()
    if reports is not None:
        reports.append(report)
    for key, first, last in spans:
        if not report.is_accepted(*key):
            index.drop(first, last)
    return Gate(report), ordinal


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


def _first(reports: list[IgReport]) -> IgReport | None:
    return reports[0] if reports else None


def _files(paths: Sequence[str]) -> str:
    return paths[0] if len(paths) == 1 else f"{len(paths)} files"


def _silent(label: str) -> None:
    """A stage nobody watches."""


def _read(again: Callable[[], Source], gate: Gate | None) -> Iterator[Event]:
    """A fresh read of the source, with the IG check's problems and holds laid in."""
    return gate.annotate(read(again())) if gate else read(again())


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


@contextmanager
def _passes(source: Source) -> Iterator[Callable[[], Source]]:
    """A function that hands out ``source`` afresh for each pass of the scrub.

    A path or bytes is simply read again; a seekable stream is rewound; a
    one-shot stream (standard input) is spooled to an owner-only temporary file.
    """
    if isinstance(source, (str, os.PathLike, bytes, bytearray, memoryview)):
        yield lambda: source
        return
    stream = source
    if stream.seekable():
        start = stream.tell()

        def rewound() -> Source:
            stream.seek(start)
            return stream

        yield rewound
        return
    fd, name = tempfile.mkstemp(prefix="scrub-", suffix=".x12")  # mkstemp: mode 0600
    try:
        with os.fdopen(fd, "wb") as spool:
            shutil.copyfileobj(stream, spool, 1 << 20)
        yield lambda: name
    finally:
        os.unlink(name)
