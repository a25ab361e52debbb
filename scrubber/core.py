"""The scrub core: the one Scrubber every front end drives, and its two passes.

A front end (the command line, the watcher, the Python API, the HTTP service
and the Spark job) builds ``ScrubOptions`` with ``scrubber.options.scrub_options``,
turns its own input into sources and its own output into sinks
(scrubber.emit.sinks), and calls ``Scrubber.run``. A run has one route:

1. ``check_and_index`` (scrubber.passes), once per source: the
   implementation-guide check and the day index of its claims, in one reading;
2. ``scrub_checked``, once per source: the rules over every claim against the
   run's day index and the ledger, each event fed to the sinks as it comes, so
   nothing of a file is held;
3. the run's notices, then the sinks are closed;
4. with a recording, the accepted claims, held in the ledger since they were
   decided, are sent in one commit once the front end's outputs are written.

``--jobs`` shares passes 1 and 2 among processes (scrubber.parallel); the Spark
job gives ``run`` the day index its shuffle built. Either way the sinks see the
same events.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from scrubber.emit.ack277 import Ack277Writer
from scrubber.emit.sinks import RunDetails, Sink
from scrubber.model import Event, Source
from scrubber.model.source import Reopenable
from scrubber.options import AckIdentity, ScrubOptions
from scrubber.passes import (
    Indexed,
    Progress,
    RunNotices,
    RunOutcome,
    check_and_index,
    feed,
    make_engine,
    scrub_checked,
)
from scrubber.rules import ScrubbedClaim

if TYPE_CHECKING:
    from scrubber.ig import IgReport
    from scrubber.rules.engine import DayContextIndex, Engine

__all__ = ["AckIdentity", "Progress", "Recording", "RunNotices", "RunOutcome", "ScrubOptions",
           "Scrubber", "feed"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Recording:
    """The claims one run records, held in the ledger under ``id`` until it ends.

    Held claims count in every day context at once (a concurrent worker sees
    them) but are not sent: ``commit`` sends them all in one transaction once
    the run's submission is done (its reports and acknowledgements written, the
    file filed, the answer stored), ``discard`` drops them. A run whose process
    dies or loses the ledger commits nothing: the next store to look discards
    what it held. ``prepare`` hands the outcome to a coordinator that keeps its
    own record of it (scrubber.ledger.store).
    """

    store: Any  # the LedgerStore the recording lives in (it holds its lease)
    id: str

    def prepare(self, coordinator: str) -> None:
        self.store.prepare_recording(self.id, coordinator)

    def commit(self) -> int:
        return int(self.store.commit_recording(self.id))

    def discard(self) -> int:
        return int(self.store.discard_recording(self.id))

    def resubmit(self, submissions: Sequence[tuple[str, str]]) -> int:
        """Record what ``commit`` sends under the submissions it goes out in: (as scrubbed,
        as sent) pairs of "sender:ISA13" (``scrub split`` sends under fresh numbers)."""
        if not submissions:
            return 0
        return int(self.store.resubmit_recording(self.id, submissions))

    def withdraw(self, keys: Sequence[tuple[str, str, str, str]]) -> int:
        """Take claims (billing NPI, payer, CLM01, submission) out of what ``commit`` sends:
        decided with the run, but held back by its front end (``scrub split``)."""
        return int(self.store.withdraw_from_recording(self.id, keys)) if keys else 0


class Scrubber:
    """Scrubs sources with one set of options into sinks; holds the profile, rules and ledger.

    ``ledger`` is an open ledger to use instead of opening ``options.ledger``
    (the caller keeps it and closes it); ``acks`` an acknowledgement writer to
    use instead of one made from ``options.ack`` (tests inject clock and
    control numbers this way); ``engine`` the rules to run instead of those of
    the options (a test's own). Close the Scrubber (or use ``with``) to close a
    ledger it opened.
    """

    def __init__(self, options: ScrubOptions | None = None, *, ledger: Any = None,
                 acks: Ack277Writer | None = None, engine: Engine | None = None):
        from scrubber.data import with_installed

        # the installed reference data, resolved once: worker processes get the same
        self.options = with_installed(options or ScrubOptions())
        self.engine = engine or make_engine(self.options)
        self.profile = self.engine.profile
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

    # -- recording -----------------------------------------------------------------------
    def begin_recording(self, coordinator: str | None = None) -> Recording | None:
        """A recording for a run of these options: None unless they record and have a ledger.

        With ``coordinator``, it begins prepared for it (``Recording.prepare``), in the
        ledger's same write.
        """
        if not self.options.record or self.ledger is None:
            return None
        return Recording(self.ledger, self.ledger.begin_recording(coordinator))

    @contextmanager
    def recording(self) -> Iterator[Recording | None]:
        """A recording for the block: committed when the block ends, discarded if it fails.

        For a front end whose outputs outlive ``run``: write and close them
        inside the block, so the claims are sent only once they are there.
        """
        recording = self.begin_recording()
        try:
            yield recording
        except BaseException:
            if recording is not None:
                _discard(recording)
            raise
        if recording is not None:
            recording.commit()

    # -- the run ---------------------------------------------------------------------------
    def run(self, sources: Sequence[tuple[Source, str]], sinks: Sequence[Sink], *,
            progress: Progress | None = None, jobs: int = 1,
            recording: Recording | None = None, index: DayContextIndex | None = None,
            first: int = 1, checked: Sequence[Indexed] | None = None) -> RunOutcome:
        """Scrub the (source, name) pairs as one run into the same sinks, then close them.

        The day context spans the run, as a payer's spans every claim it has: a
        96523 in one file and an office visit for the same patient and day in
        another conflict, and the same claim in two files is one claim. Every
        source is checked and indexed first, then each is scrubbed into the
        sinks in turn (a one-shot stream is spooled to an owner-only file).

        With ``options.record``, the accepted claims are recorded under
        ``recording`` (the caller then commits it, once its own outputs are
        written), or else under one of the run's own, committed once the sinks
        are closed. ``index`` is a day index of the run built elsewhere (the
        Spark job's), whose claims are numbered from ``first``; the run then
        checks its sources without indexing them; ``checked`` is what pass 1 made
        of each source elsewhere (the Spark job's stage 1, with ``index``): the
        sources are then not checked again. With ``jobs`` > 1 and files
        for sources, the work is shared by that many processes
        (scrubber.parallel); what the sinks get is the same as with one job.
        """
        own = recording is None and self.options.record and self.ledger is not None
        if own:
            recording = self.begin_recording()
        try:
            outcome = self._run(sources, sinks, progress, jobs, recording, index, first,
                                checked)
        except BaseException:
            if own and recording is not None:
                _discard(recording)
            raise
        if own and recording is not None:
            recording.commit()
        return outcome

    def _run(self, sources: Sequence[tuple[Source, str]], sinks: Sequence[Sink],
             progress: Progress | None, jobs: int, recording: Recording | None,
             index: DayContextIndex | None, first: int,
             checked: Sequence[Indexed] | None = None) -> RunOutcome:
        notices = RunNotices(self.engine.notices)
        details = self.details()
        for sink in sinks:
            said = getattr(sink, "run_details", None)  # a sink written before it existed
            if said is not None:
                said(details)
        try:
            outcome = None
            if jobs > 1 and index is None and self._shareable(sources):
                from scrubber.parallel import run_parallel

                outcome = run_parallel(self.options, self.engine, self.ledger, sources, sinks,
                                       jobs, progress=progress, notices=notices,
                                       recording=recording.id if recording else None)
            if outcome is None:
                outcome = RunOutcome()
                for name, events, report in self._passes(sources, progress, recording,
                                                         index, first, checked):
                    outcome.add(name, feed(name, events, sinks, conformance=report,
                                           progress=progress, notices=notices))
            notices.deliver(sinks)
        except BaseException:
            try:  # the sinks give up what they hold; the failure to tell is the first one
                _close_all(sinks)
            except Exception:  # noqa: BLE001 - e.g. the same full disk, again
                pass
            raise
        _close_all(sinks)
        return outcome

    def details(self) -> RunDetails:
        """What this run is made with, for the reports (scrubber.emit.sinks.RunDetails)."""
        from scrubber import __version__
        from scrubber.emit.sinks import ledger_words, run_started
        from scrubber.rules.profile import DEFAULT_PROFILE, maps_dir
        from scrubber.rules.resources import releases_in_use

        profile = self.engine.profile
        named = profile.name if Path(profile.path) == maps_dir() / DEFAULT_PROFILE \
            else f"{profile.name} ({profile.path})"
        options = self.options
        conformance = "off" if not options.conformance else \
            f"on (companion {options.companion})" if options.companion else "on"
        ledger = ledger_words(None) if self.ledger is None else \
            ledger_words(options.ledger) if options.ledger else "one the caller opened"
        return RunDetails(__version__, run_started(), named, conformance, ledger,
                          releases_in_use(self.engine.resources))

    def events(self, source: Source, *, name: str = "<source>",
               progress: Progress | None = None) -> Iterator[Event | ScrubbedClaim]:
        """The scrubbed event stream of one source: model events, claims as ScrubbedClaim.

        ``source`` is a path, bytes or a binary stream. The same two passes as
        ``run``; its IG errors come out as transaction-set problems and the
        claims of a rejected set are held (``ScrubbedClaim.held``). With the
        options' ``record``, the accepted claims are recorded, and sent once the
        stream has been read to its end (nothing is sent if it is left early).
        """
        with self.recording() if self.options.record else _nothing() as recording:
            for _, events, _ in self._passes([(source, name)], progress, recording, None, 1):
                yield from events

    def _passes(self, sources: Sequence[tuple[Source, str]], progress: Progress | None,
                recording: Recording | None, index: DayContextIndex | None, first: int,
                given: Sequence[Indexed] | None = None
                ) -> Iterator[tuple[str, Iterator[Event | ScrubbedClaim],
                                    Callable[[], IgReport | None]]]:
        """Pass 1 over every source, then, source by source, pass 2's events and its report."""
        from scrubber.rules.engine import DayIndex

        stage = progress.stage if progress is not None else _silent
        with ExitStack() as stack:
            own = index is None
            if own:
                index = DayIndex()
                stack.callback(index.close)
            assert index is not None
            checked: list[tuple[Callable[[], Source], str, Indexed]] = []
            ordinal = first - 1
            for number, (source, name) in enumerate(sources):
                again = stack.enter_context(_again(source))
                if given is not None and not own:  # pass 1 was done elsewhere
                    checked.append((again, name, given[number]))
                    continue
                done = check_and_index(self.options, again(), name,
                                       cast("DayIndex", index) if own else None,
                                       ordinal=ordinal, stage=stage)
                checked.append((again, name, done))
                ordinal = done.last
            if own:
                cast("DayIndex", index).finish()
            for again, name, done in checked:
                stage(f"scrubbing {name}")
                events = scrub_checked(self.engine, again(), done, index, ledger=self.ledger,
                                       recording=recording.id if recording else None)
                yield name, events, partial(getattr, done, "report")

    def _shareable(self, sources: Sequence[tuple[Source, str]]) -> bool:
        """Whether worker processes can take this run: files, and a ledger they can open."""
        return ((self._own_ledger or self.ledger is None)
                and all(isinstance(source, (str, os.PathLike)) and os.path.isfile(source)
                        for source, _ in sources))


def _discard(recording: Recording) -> None:
    """Discard after a failure; a failure to discard leaves it to the next sweep."""
    try:
        recording.discard()
    except Exception as exc:  # the ledger is what failed: its next look discards it
        log.warning("the run's held claims could not be discarded now (%s); the ledger "
                    "discards them at its next start", exc)


@contextmanager
def _nothing() -> Iterator[None]:
    yield None


def _silent(label: str) -> None:
    """A stage nobody watches."""


@contextmanager
def _again(source: Source) -> Iterator[Callable[[], Source]]:
    """A function that hands out ``source`` afresh for each pass of the scrub.

    A path or bytes is simply read again; a seekable stream is rewound; a
    one-shot stream (standard input) is spooled to an owner-only temporary file.
    """
    if isinstance(source, (str, os.PathLike, bytes, bytearray, memoryview, Reopenable)):
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


def _close_all(sinks: Sequence[Sink]) -> None:
    """Close every sink, even when one fails (a full disk): the first failure is raised."""
    failure: BaseException | None = None
    for sink in sinks:
        try:
            sink.close()
        except BaseException as exc:  # noqa: BLE001 - raised again below
            failure = failure or exc
    if failure is not None:
        raise failure
