"""One run over several processes: ``scrub check --jobs N``.

The run's bytes (its files one after another) are cut into N ranges, each cut at
the transaction set start nearest an equal-bytes point (``shares``), and each
worker process owns the transaction sets whose ST starts in its range.
Every worker tokenizes every file (cheap: about 1 % of a scrub) so that the
envelope checks, segment numbers and positions stay whole and exact, but it
reads only its own sets into claims (``read(owns=...)``: the others' claims
are only counted, which keeps the claim ordinals exact) and does the costly
work only for them:

1. the implementation-guide check of its sets (``Checker(owns=...)``), and the
   day-index rows of their claims, into a private SQLite file;
2. after the parent has merged the reports (``merge_reports``) and the index
   rows into one index of the whole run: the rules over its claims, against
   that index and the ledger (recording them when asked), with the findings
   spooled to a private file in claim order, each with what the sinks write
   for it (``Sink.renderer``: the JSON report's text of the claim).

The parent then reads each file once more, as the one-job run does, with the
merged 999 verdicts, takes each claim's findings (and rendering) from the
spools, and feeds the sinks: the reports and acknowledgements come out byte
for byte as with one job (only fresh timestamps and control numbers differ).
"""

from __future__ import annotations

import fcntl
import logging
import multiprocessing
import os
import pickle
import re
import shutil
import signal
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from scrubber.files import create_private
from scrubber.model import ClaimRecord, Event, Source
from scrubber.passes import (
    Indexed,
    Progress,
    RunNotices,
    RunOutcome,
    check_and_index,
    feed,
    make_engine,
    read_checked,
    scrub_checked,
)
from scrubber.rules.findings import ScrubbedClaim
from scrubber.x12.delimiters import ISA_LENGTH

if TYPE_CHECKING:
    from scrubber.emit.sinks import ClaimRenderer, Sink
    from scrubber.ig.gate import Gate
    from scrubber.options import ScrubOptions
    from scrubber.rules.engine import Engine

log = logging.getLogger(__name__)

# below this many bytes a run stays in one process unless --jobs is given: starting the
# workers and reading every file once per worker costs more than it saves
AUTO_FROM = 8 << 20


def default_jobs(paths: Sequence[str]) -> int:
    """The number of jobs for a run nobody chose one for: every core, if the run is big."""
    try:
        size = sum(os.path.getsize(p) for p in paths)
    except OSError:
        return 1
    return (os.cpu_count() or 1) if size >= AUTO_FROM else 1


@dataclass(frozen=True, slots=True)
class Share:
    """What one worker owns of a run: the transaction sets starting in its byte range."""

    number: int
    of: int
    paths: tuple[str, ...]
    bases: tuple[int, ...]  # where each file starts in the run's bytes
    cuts: tuple[int, ...]  # where each share's range starts in the run's bytes, and ends

    def owns(self, source: int) -> Callable[[int], bool]:
        """Whether an ST at a byte offset of source ``source`` is this share's."""
        low = self.cuts[self.number] - self.bases[source]
        high = self.cuts[self.number + 1] - self.bases[source]
        if self.number == self.of - 1:
            high = 1 << 62  # the last share takes everything to the end, however far

        def owned(offset: int) -> bool:
            return low <= offset < high
        return owned


def shares(paths: Sequence[str], jobs: int) -> list[Share]:
    """The run's bytes cut into ``jobs`` ranges of about equal work: each cut is moved
    from the equal-bytes point to the nearest start of a transaction set (or of a file),
    so that a set falls wholly in the range that holds most of it; ten sets of equal
    size cut at the byte middle otherwise give one worker six of them."""
    sizes = [os.path.getsize(p) for p in paths]
    bases = tuple(sum(sizes[:i]) for i in range(len(sizes)))
    total = sum(sizes)
    cuts = [0]
    for k in range(1, jobs):
        target = k * total // jobs
        source = max(i for i, base in enumerate(bases) if base <= target) if paths else 0
        cut = target
        if paths:
            cut = bases[source] + _nearest_set(paths[source], target - bases[source],
                                               sizes[source])
        cuts.append(max(cut, cuts[-1]))
    cuts.append(total)
    return [Share(k, jobs, tuple(paths), bases, tuple(cuts)) for k in range(jobs)]


def set_starts(head: bytes) -> re.Pattern[bytes] | None:
    """A pattern whose group 1 is where an ST segment starts, by the delimiters of the ISA
    that ``head`` (a file's first bytes) opens with; None when it opens with none (after a
    byte-order mark or blank lines)."""
    at = head.find(b"ISA", 0, 8)
    if at < 0 or len(head) < at + ISA_LENGTH:
        return None
    element, terminator = head[at + 3:at + 4], head[at + ISA_LENGTH - 1:at + ISA_LENGTH]
    return re.compile(re.escape(terminator) + rb"[\r\n]*(ST" + re.escape(element) + b")")


_LOOK = 4 << 20  # bytes read each side of an equal-bytes cut to find a set's start (early,
# while the parent is small: its peak comes later)


def _nearest_set(path: str, target: int, size: int) -> int:
    """The byte offset nearest ``target`` where an ST segment (or the file) starts, within
    ``_LOOK`` bytes; ``target`` itself when none is that near or the file's delimiters
    cannot be read (the cut then only balances less well: ownership stays exact)."""
    try:
        with open(path, "rb") as f:
            pattern = set_starts(f.read(ISA_LENGTH + 8))
            if pattern is None:
                return target
            start = max(0, target - _LOOK)
            f.seek(start)
            window = f.read(min(size, target + _LOOK) - start)
    except OSError:
        return target
    candidates = [start + m.start(1) for m in pattern.finditer(window)]
    candidates += [edge for edge in (0, size) if abs(edge - target) <= _LOOK]
    if not candidates:
        return target
    return min(candidates, key=lambda c: (abs(c - target), c))


# -- the workers -------------------------------------------------------------------------

_INHERITED: tuple[ScrubOptions, Engine] | None = None  # the parent's, for a forked worker
_WORKER: _Worker | None = None


class _Worker:
    """A worker process's engine (the parent's, when forked) and its own ledger."""

    def __init__(self, options: ScrubOptions, engine: Engine):
        self.options, self.engine = options, engine
        self.ledger: Any = None
        if options.ledger is not None:
            from scrubber.ledger import open_store

            self.ledger = open_store(options.ledger)


def _start(options: ScrubOptions, parent: int) -> None:
    global _WORKER
    from scrubber.procs import end_with_parent

    end_with_parent(parent)  # a parent killed with SIGKILL takes its workers with it
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the parent's (see _terminate)
    # Ctrl-C reaches the whole process group: the parent ends the run and kills its
    # workers (Parallel.__exit__); a worker of its own would only print a traceback
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if _INHERITED is not None:  # forked: the parent's engine, already loaded
        _WORKER = _Worker(*_INHERITED)
        return
    _WORKER = _Worker(options, make_engine(options))


def _index_share(share: Share, folder: str) -> tuple[list[Indexed], str]:
    """Step 1 of a worker: check its sets, index their claims; what pass 1 made of each
    file, and the index file."""
    from scrubber.rules.engine import DayIndex

    assert _WORKER is not None, "the pool's initializer sets up every worker"
    path = os.path.join(folder, f"index-{share.number}.db")
    index = DayIndex(path=path)
    made: list[Indexed] = []
    ordinal = 0
    try:
        for number, source in enumerate(share.paths):
            done = check_and_index(_WORKER.options, source, source, index, ordinal=ordinal,
                                   owns=share.owns(number))
            made.append(done)
            ordinal = done.last
        index.flush()
    finally:
        index.close()
    return made, path


def _scrub_share(share: Share, index_path: str, made: list[Indexed], firsts: list[int],
                 spool: str, recording: str | None,
                 renderers: Sequence[ClaimRenderer] = ()) -> int:
    """Step 2 of a worker: its claims scrubbed against the run's index (and held under the
    run's ``recording``), findings spooled with what the sinks' ``renderers`` make of
    each claim. Only its own sets are read; ``firsts`` numbers their claims
    (``Indexed.own_first`` of each file from step 1)."""
    from scrubber.rules.engine import DayIndex

    assert _WORKER is not None, "the pool's initializer sets up every worker"
    index = DayIndex(path=index_path, finished=True)
    written = 0
    try:
        with open(spool, "ab") as out:  # made empty (owner-only) by the parent, which follows it
            for number, source in enumerate(share.paths):
                owns, gate = share.owns(number), made[number].gate()
                ordinal = firsts[number] - 1

                def other(record: ClaimRecord, owns: Callable[[int], bool] = owns,
                          gate: Gate | None = gate) -> bool:
                    return not owns(record.transaction.location.offset) or (
                        gate is not None and gate.held(record) is not None)

                for event in scrub_checked(_WORKER.engine, source, made[number], index,
                                           ledger=_WORKER.ledger, recording=recording,
                                           skip=other, owns=owns, first=firsts[number]):
                    if type(event) is ClaimRecord:
                        ordinal += 1
                    elif type(event) is ScrubbedClaim:
                        ordinal += 1
                        rendered = {r.key: r(event) for r in renderers} if renderers else None
                        _write_frame(out, (ordinal, event.findings, event.notices, rendered))
                        written += 1
                        if written % _FLUSH_EVERY == 0:
                            out.flush()  # the parent reports these claims while we go on
    finally:
        index.close()
    return written


_FLUSH_EVERY = 64  # claims per write the parent can see


Frame = tuple[int, tuple, tuple, "dict[str, Any] | None"]  # ordinal, findings, notices, rendered


def _write_frame(out: BinaryIO, item: Frame) -> None:
    """One claim's (ordinal, findings, notices, rendered): its length, then its pickle."""
    data = pickle.dumps(item, pickle.HIGHEST_PROTOCOL)
    out.write(len(data).to_bytes(4, "little") + data)


# -- the parent --------------------------------------------------------------------------

class Parallel:
    """The workers and private files of one parallel run (a context manager)."""

    def __init__(self, options: ScrubOptions, engine: Engine, paths: Sequence[str], jobs: int):
        global _INHERITED
        self.options, self.paths, self.jobs = options, list(paths), jobs
        sweep_spools()
        self._sigterm: Any = None
        self.folder, self._lock = make_spool()
        try:
            self._sigterm = _catch_sigterm()
            # fork shares the loaded guides, profile and tables with the workers; with other
            # threads running (a status line), a fork could copy a held lock: spawn then
            method = "fork" if threading.active_count() == 1 and \
                "fork" in multiprocessing.get_all_start_methods() else "spawn"
            if method == "fork":
                from scrubber.ig.compile import load_guides

                load_guides()  # once, in the parent, for every forked worker
                _INHERITED = (options, engine)
            self.shares = shares(self.paths, jobs)
            self.pool = ProcessPoolExecutor(jobs,
                                            mp_context=multiprocessing.get_context(method),
                                            initializer=_start, initargs=(options, os.getpid()))
        except BaseException:  # Ctrl-C while the guides load, too
            _INHERITED = None
            self._remove()
            raise

    def __enter__(self) -> Parallel:
        return self

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        global _INHERITED
        _INHERITED = None
        if kind is not None:
            # the run is over (interrupted, or a sink failed): do not wait for the workers
            # to finish shares nobody will read (the executor has no public way to stop them)
            for process in (getattr(self.pool, "_processes", None) or {}).copy().values():
                process.kill()
        try:
            self.pool.shutdown(wait=True, cancel_futures=True)
        finally:  # a second Ctrl-C while the workers stop still removes the spool
            self._remove()

    def _remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
        os.close(self._lock)
        if self._sigterm is not None:
            signal.signal(signal.SIGTERM, self._sigterm)

    def index(self) -> tuple[list[Indexed], str]:
        """Step 1 in every worker; pass 1 of each file (the shares' IG reports merged) and
        the run's index file. ``firsts`` keeps, share by share, where its claims of each
        file are numbered from."""
        from scrubber.ig.report import merge_reports
        from scrubber.rules.engine import DayIndex

        results = list(self.pool.map(_index_share, self.shares,
                                     [self.folder] * len(self.shares)))
        made: list[Indexed] = []
        self.firsts = [[part.own_first for part in parts] for parts, _ in results]
        for number in range(len(self.paths)):
            parts = [part[number] for part, _ in results]
            checked = [part.report for part in parts if part.report is not None]
            made.append(Indexed(merge_reports(checked) if checked else None,
                                parts[0].first, parts[0].last))
        path = os.path.join(self.folder, "index.db")
        index = DayIndex(path=path)
        try:
            for _, share_path in results:
                index.merge(share_path)
                os.unlink(share_path)
            index.finish()
        finally:
            index.close()
        return made, path

    def scrub(self, made: list[Indexed], index_path: str, recording: str | None,
              renderers: Sequence[ClaimRenderer] = ()) -> list[Spool]:
        """Start step 2 in every worker; their spools, which fill as they go, share by share."""
        spools = []
        for share in self.shares:
            path = os.path.join(self.folder, f"findings-{share.number}.bin")
            os.close(create_private(path))  # empty: the worker fills it as it goes
            future = self.pool.submit(_scrub_share, share, index_path, made,
                                      self.firsts[share.number], path, recording,
                                      tuple(renderers))
            spools.append(Spool(path, future, share.number))
        return spools


def _terminate(number: int, frame: object) -> None:
    raise SystemExit(128 + number)


def _catch_sigterm() -> Any:
    """While the run lasts, SIGTERM ends it as Ctrl-C does (the spool is removed, the
    workers stopped); the handler it replaces, or None when it was not ours to replace
    (another thread, or a handler someone else set)."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return None
    signal.signal(signal.SIGTERM, _terminate)
    return signal.SIG_DFL


# -- the spool folder ---------------------------------------------------------------------
# Each run's private files sit in one folder of the temporary directory, owner-only,
# holding an exclusive flock on its "lock" file for as long as the run (or a worker it
# forked) lives. A run killed with SIGKILL cannot remove its folder; the next run sweeps
# every folder of ours whose lock nobody holds.

SPOOL_PREFIX = "scrub-jobs-"
_LOCK = "lock"
_GRACE = 60.0  # seconds a folder without a lock file is left alone (its run is starting)
_OPEN = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC


def make_spool() -> tuple[str, int]:
    """A new private folder for a run's files (0700) and the descriptor holding its lock."""
    folder = tempfile.mkdtemp(prefix=SPOOL_PREFIX)  # 0700 whatever the umask
    try:
        fd = os.open(os.path.join(folder, _LOCK), _OPEN | os.O_CREAT | os.O_EXCL, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(fd, f"{os.getpid()}\n".encode())
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return folder, fd


def sweep_spools(base: str | None = None) -> int:
    """Remove the spool folders of dead runs of this user from ``base`` (the temporary
    directory); how many. A folder whose lock is held belongs to a live run."""
    base = base or tempfile.gettempdir()
    swept = 0
    try:
        entries = [e for e in os.scandir(base) if e.name.startswith(SPOOL_PREFIX)]
    except OSError:
        return 0
    for entry in entries:
        try:
            found = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if not stat.S_ISDIR(found.st_mode) or found.st_uid != os.geteuid():
            continue
        try:
            fd = os.open(os.path.join(entry.path, _LOCK), _OPEN)
        except FileNotFoundError:  # starting now, or left by a scrubber without locks
            if time.time() - found.st_mtime > _GRACE:
                shutil.rmtree(entry.path, ignore_errors=True)
                swept += 1
            continue
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)  # held: a live run's
            continue
        try:
            shutil.rmtree(entry.path, ignore_errors=True)
            swept += 1
        finally:
            os.close(fd)
    if swept:
        log.info("removed %d spool folder(s) of killed --jobs runs from %s", swept, base)
    return swept


class Spool:
    """One worker's findings, read as it writes them (step 2 runs beside the reports)."""

    def __init__(self, path: str, future: Future, number: int):
        self.path, self.future, self.number = path, future, number
        self._stream: BinaryIO | None = None
        self._over = False

    def frame(self) -> Frame | None:
        """The next claim's (ordinal, findings, notices, rendered); None once the worker is
        done (or failed)."""
        if self._stream is None:
            self._stream = open(self.path, "rb")
        stream = self._stream
        while True:
            at = stream.tell()
            head = stream.read(4)
            if len(head) == 4:
                size = int.from_bytes(head, "little")
                data = stream.read(size)
                if len(data) == size:
                    item: Frame = pickle.loads(data)
                    return item
            stream.seek(at)  # a frame not yet whole: wait for the rest
            if self._over:
                return None
            if self.future.done():
                self._over = True  # and read once more: its last flush came before it ended
                if self.future.exception() is not None:
                    log.warning("job %d failed (%s); the rest of its claims are scrubbed in "
                                "the main process", self.number + 1, self.future.exception())
                continue
            time.sleep(0.005)

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()


class Findings:
    """The workers' findings, handed to each file's claims in turn.

    A claim whose worker failed before it got to it is scrubbed here by
    ``local(record, ordinal)``: the run's results do not depend on a worker.
    """

    def __init__(self, spools: Sequence[Spool], shares: Sequence[Share],
                 local: Callable[[ClaimRecord, int], ScrubbedClaim]):
        self._spools, self._shares, self._local = spools, shares, local
        self._pending: dict[int, Frame | None] = {}
        self.ordinal = 0  # claims of the run so far

    def close(self) -> None:
        for spool in self._spools:
            spool.close()

    def _found(self, share: int, ordinal: int) -> Frame | None:
        pending = self._pending.get(share)
        if pending is None:
            pending = self._spools[share].frame()
        if pending is None or pending[0] > ordinal:
            self._pending[share] = pending
            return None  # its worker failed before this claim
        if pending[0] < ordinal:
            raise RuntimeError(f"job {share + 1} sent the findings of claim {pending[0]} "
                               f"where claim {ordinal} was due")
        self._pending[share] = None
        return pending

    def scrubbed(self, events: Iterator[Event], gate: Gate | None, source: int
                 ) -> Iterator[Event | ScrubbedClaim]:
        """A file's events with every claim scrubbed: held by ``gate``, or its findings."""
        from scrubber.rules.engine import held_claim

        owners = [(share.number, share.owns(source)) for share in self._shares]
        for event in events:
            if type(event) is not ClaimRecord:
                yield event
                continue
            self.ordinal += 1
            reason = gate.held(event) if gate is not None else None
            if reason is not None:
                yield held_claim(event, reason)
                continue
            offset = event.transaction.location.offset
            share = next(number for number, owns in owners if owns(offset))
            found = self._found(share, self.ordinal)
            yield ScrubbedClaim(event, found[1], notices=found[2], rendered=found[3]) \
                if found is not None else self._local(event, self.ordinal)


def run_parallel(options: ScrubOptions, engine: Engine, ledger: Any,
                 sources: Sequence[tuple[Source, str]], sinks: Sequence[Sink], jobs: int, *,
                 progress: Progress | None = None, notices: RunNotices | None = None,
                 recording: str | None = None) -> RunOutcome | None:
    """A run (scrubber.core.Scrubber.run) over ``jobs`` processes; None when they failed
    before any sink was fed (the run is then done in one process: the same results).

    The workers check and index first; then, while they scrub (recording under
    ``recording``), this process reads each file again and feeds the sinks,
    taking each claim's findings as its worker writes them (or scrubbing it
    here, should its worker fail).
    """
    from scrubber.rules.engine import DayIndex, scrub_indexed

    stage = progress.stage if progress is not None else _silent
    paths = [os.fspath(cast("str", source)) for source, _ in sources]
    with ExitStack() as stack:
        try:
            workers = stack.enter_context(Parallel(options, engine, paths, jobs))
            stage(f"checking and indexing {_files(paths)} with {jobs} jobs")
            made, index_path = workers.index()
            index = DayIndex(path=index_path, finished=True)
            stack.callback(index.close)
            renderers = {r.key: r for r in (sink.renderer() for sink in sinks)
                         if r is not None}
            spools = workers.scrub(made, index_path, recording, tuple(renderers.values()))
        except Exception as exc:  # a worker died or failed: one process does it all
            log.warning("the %d jobs failed (%s: %s); scrubbing in one process", jobs,
                        type(exc).__name__, exc)
            return None

        def local(record: ClaimRecord, ordinal: int) -> ScrubbedClaim:
            scrubbed, = scrub_indexed([record], engine, index, ledger, first=ordinal,
                                      recording=recording)
            return cast(ScrubbedClaim, scrubbed)

        findings = Findings(spools, workers.shares, local)
        stack.callback(findings.close)
        outcome = RunOutcome()
        for number, ((_, name), path, done) in enumerate(zip(sources, paths, made, strict=True)):
            stage(f"scrubbing {name} with {jobs} jobs")
            gate = done.gate()
            events = findings.scrubbed(read_checked(path, gate), gate, number)
            outcome.add(name, feed(name, events, sinks, conformance=done.report,
                                   progress=progress, notices=notices))
        return outcome


def _files(paths: Sequence[str]) -> str:
    return paths[0] if len(paths) == 1 else f"{len(paths)} files"


def _silent(label: str) -> None:
    """A stage nobody watches."""
