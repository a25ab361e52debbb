"""The drop-folder watcher: files in, verdicts and reports out, none ever lost.

Folders under one root (created if missing)::

    inbox/     files arrive here (write name.tmp, then rename; or let it settle)
    work/      files being scrubbed; the journal of what happens to them
    accepted/  rejected/  failed/   every input ends in exactly one of these
    reports/   per input: JSON and text summaries, 277CA / TA1

Crash safety rests on renames within one filesystem, which are atomic: a file
is taken by renaming it from inbox/ into work/ under a job name, its reports
are named after its original name and the job (``b.x12.<job id>.json``: a redo
overwrites, never duplicates), and it is done the moment it is renamed out of
work/ (a name already there gets a number before its extension: ``b-2.x12``).
On start, anything still in work/ is redone from scratch; the ledger records a
submission idempotently, so a redo never counts a claim twice. The journal
(work/journal.jsonl) records each step for people, and the original name of each
job (a job name is made safe: short, printable, UTF-8); the folders are the truth.
The log says where the watcher runs with what, each file's verdict (a failure's
reason), and on a stop what it is finishing; never patient data.

Faults the watcher outlives (docs/reliability.md): a worker process that dies
(the pool is made again and its jobs redone, a file that kills it three times
goes to failed/), an outcome or reports folder that cannot be written (read-only,
full: the file stays in work/, the reason is logged, it is retried with
back-off while other files go on), names that are long, not UTF-8 or hold
control characters, a file still being appended to while it was scrubbed
(scrubbed again), and its own death (workers die with it).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import signal
import stat
import threading
import time
import traceback
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scrubber.api import DEFAULT_REPORTS
from scrubber.emit.sinks import REPORT_FORMATS
from scrubber.emit.values import shown as printable
from scrubber.files import sweep_temporaries, write_private
from scrubber.options import ScrubOptions
from scrubber.procs import end_with_parent

log = logging.getLogger("scrubber.watch")

FOLDERS = ("inbox", "work", "accepted", "rejected", "failed", "reports")
JOURNAL = "journal.jsonl"
NAME_BYTES = 120  # of the original name kept in a job name: job + ".reason.txt" < 255 bytes
#: errors of the machine, not of the file: the file waits in work/ and is tried again
ENVIRONMENT_ERRORS = frozenset((errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES,
                                errno.EPERM, errno.EIO, errno.EMFILE, errno.ENFILE,
                                errno.ENOMEM, errno.EXDEV))
_SHORT_OF = frozenset((errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.EIO))
RETRY = "retry"  # a job's verdict when the machine, not the file, failed
SPLIT = "split"  # a job's verdict when its claims went out in part (WatchSettings.split)
PART = ".part"  # work/.JOB.accepted.part, work/.JOB.held.part: a split's batches
CHANGED = "changed"  # a job's verdict when the file changed while it was scrubbed
ONCE_ATTEMPTS = 3  # with --once, scrubs of a job the machine failed before leaving it in work/


@dataclass(frozen=True, slots=True)
class WatchSettings:
    """Where the folders are and how patiently to take files."""

    root: Path
    settle_seconds: float = 2.0  # size and mtime unchanged this long = complete
    poll_seconds: float = 0.5
    workers: int = os.cpu_count() or 1
    use_events: bool = True  # watchdog events; False polls only (network filesystems)
    # what the scrub core is to do (profile, ledger, resources ...); the watcher records
    # accepted claims by default, as an intake that forwards them
    options: ScrubOptions = field(default_factory=lambda: ScrubOptions(record=True))
    reports: tuple[str, ...] = DEFAULT_REPORTS  # the report formats written per input
    retry_seconds: float = 1.0  # first wait before a job the machine failed is tried again
    retry_max_seconds: float = 60.0  # the wait doubles up to this
    worker_deaths: int = 3  # a file whose scrub kills the worker this often goes to failed/
    # a file with accepted and rejected claims is split (scrub split): its accepted claims
    # into accepted/, the others into rejected/, the file as it came into reports/
    split: bool = False

    def folder(self, name: str) -> Path:
        return self.root / name


def ensure_folders(settings: WatchSettings) -> None:
    for name in FOLDERS:
        settings.folder(name).mkdir(mode=0o700, parents=True, exist_ok=True)


def safe_job_name(name: str) -> str:
    """The part of a job name that comes from the input's name: printable UTF-8, short.

    Undecodable bytes, control characters and path-hostile characters become
    ``_``; the name is cut to NAME_BYTES bytes of UTF-8. The original is kept in
    the journal and restored when the file is filed.
    """
    cleaned = "".join(c if c.isprintable() and c not in "/\\" else "_" for c in name)
    data = cleaned.encode("utf-8")[:NAME_BYTES]
    return data.decode("utf-8", "ignore") or "_"


def _journal(settings: WatchSettings, **entry: object) -> None:
    """Append one step to the journal; a journal that cannot be written is only logged."""
    entry["at"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    line = json.dumps(entry) + "\n"  # ASCII: undecodable name bytes are escaped
    try:
        fd = os.open(settings.folder("work") / JOURNAL,
                     os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        log.warning("journal not written (%s): %s", exc.strerror, entry.get("step"))


def _journal_names(settings: WatchSettings) -> dict[str, str]:
    """job -> original name, from the journal's "taken" steps (for jobs a crash left)."""
    return {str(e.get("job")): e["name"] for e in _journal_steps(settings)
            if e.get("step") == "taken" and isinstance(e.get("name"), str)}


def _journal_steps(settings: WatchSettings) -> Iterator[dict]:
    try:
        with open(settings.folder("work") / JOURNAL, encoding="utf-8",
                  errors="replace") as journal:
            for line in journal:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue  # a line cut short by a crash or a full disk
                if isinstance(entry, dict):
                    yield entry
    except OSError:
        return


def coordinator(settings: WatchSettings) -> str:
    """How this watcher names itself on the recordings it prepares: by its root folder."""
    return f"watch:{settings.root.resolve()}"


def _journal_filed(settings: WatchSettings) -> dict[str, tuple[str, str]]:
    """recording -> (job, verdict) of the jobs filed (or being filed) with one."""
    return {str(e["recording"]): (str(e.get("job")), str(e.get("verdict")))
            for e in _journal_steps(settings)
            if e.get("step") in ("filing", "done") and e.get("recording")}


def job_stem(job: str) -> str:
    """The name of a job's reports: ``<safe original name>.<job id>``.

    The original name first makes a file's reports findable next to it; the
    job id (when the file was taken, UTC, to the second: ``20261207-014411``,
    numbered ``-2`` ... when that is taken too) keeps two files of one name
    apart, reads as a time, and lets a redo overwrite its own.
    """
    ident, _, safe = job.partition("__")
    return f"{safe}.{ident}" if safe else job


def numbered(name: str, n: int) -> str:
    """``a.x12`` as its n-th copy, ``a-n.x12``: the extension kept, so tools still know it.

    The number goes before the last extension (``a.tar-2.x12``), or at the end
    of a name without one (``a-2``).
    """
    stem, _, extension = name.rpartition(".")
    return f"{stem}-{n}.{extension}" if stem else f"{name}-{n}"


def _free_name(folder: Path, name: str) -> Path:
    """``name`` in ``folder``, numbered (a-2.x12, a-3.x12 ...) when taken: never overwrite."""
    target = folder / name
    n = 1
    while os.path.lexists(target):
        n += 1
        target = folder / numbered(name, n)
    return target


def _first_line(text: str, limit: int = 300) -> str:
    """A reason fit for one log line: its first line, cut short (a traceback stays in
    the reason file)."""
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first if len(first) <= limit else first[:limit] + "..."


def _die_with_parent(parent: int) -> None:
    """Pool worker start: die with the watcher, leave SIGTERM to it, ignore Ctrl-C.

    A watcher killed with SIGKILL cannot stop its workers, so each ends with
    it (``procs.end_with_parent``). Workers forked after the watcher set its
    own SIGTERM handler would otherwise inherit it and ignore SIGTERM.
    """
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the watcher finishes the files in hand
    end_with_parent(parent)


def _fingerprint(path: Path) -> tuple[int, int, int]:
    info = os.stat(path, follow_symlinks=False)
    return info.st_ino, info.st_size, info.st_mtime_ns


def _job_file(job: str, name: str, settings: WatchSettings) -> Result:
    """Scrub one taken file (in a worker process): its verdict and reports.

    The reports are named after the original ``name`` (``job_stem``) and show
    it, escaped, as the file's name.

    Returns (job, verdict, summary line, error, recording). Anything the
    scrubber raises makes the file poison: it goes to failed/ with the error,
    and the watcher goes on. An error of the machine (a full disk, a folder
    that cannot be written, the ledger) is RETRY instead, and a file that
    changed while it was read is CHANGED: neither is the file's fault. With
    recording, the accepted claims stay held under the returned recording,
    prepared: the watcher sends them once it has filed the file under
    accepted/ (``Watcher._finish``), and drops them otherwise.
    """
    from scrubber.api import process_file
    from scrubber.core import Scrubber
    from scrubber.ledger import LedgerError

    path = settings.folder("work") / job
    reports = settings.folder("reports")
    recording = None
    try:
        mode = os.lstat(path).st_mode
        if not stat.S_ISREG(mode):
            kind = "a symbolic link" if stat.S_ISLNK(mode) else "not a regular file"
            return job, "failed", None, f"{printable(name)} is {kind}; not read", None
        try:
            os.close(os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK))
        except OSError as exc:
            if exc.errno in _SHORT_OF:  # the machine's fault: tried again
                return job, RETRY, None, f"{exc.strerror or exc}", None
            # its permissions (or the like), not the machine's: it goes to failed/
            return (job, "failed", None,
                    f"{printable(name)} cannot be read ({exc.strerror or exc}); not read", None)
        before = _fingerprint(path)
        with Scrubber(settings.options) as scrubber:
            recording = scrubber.begin_recording()
            if settings.split:
                outcome = _split_file(job, name, settings, scrubber, recording)
            else:
                outcome = process_file(str(path), str(reports), stem=job_stem(job),
                                       name=printable(name), scrubber=scrubber,
                                       recording=recording, reports=settings.reports)
            if _fingerprint(path) != before:
                raise _Changed
            if recording is not None:  # from now on the watcher's journal decides its fate
                recording.prepare(coordinator(settings))
    except _Changed:
        return job, CHANGED, None, "the file changed while it was scrubbed", None
    except LedgerError as exc:
        return job, RETRY, None, str(exc), None
    except OSError as exc:
        if exc.errno in ENVIRONMENT_ERRORS and exc.filename != str(path):
            return job, RETRY, None, f"{exc.strerror or exc}", None
        return job, "failed", None, "".join(traceback.format_exception_only(exc)).strip(), None
    except Exception as exc:  # a poison file must not stop the watcher
        return job, "failed", None, "".join(traceback.format_exception_only(exc)).strip(), None
    line = (f"claims {outcome.claims} accepted {outcome.accepted} rejected {outcome.rejected}"
            f" with warnings {outcome.warnings} envelope problems {outcome.envelope_errors}")
    verdict = outcome.verdict
    if settings.split and verdict == "rejected" and _parts(settings, job)[0].exists():
        verdict = SPLIT
    return (job, verdict, line, outcome.reason or None,
            recording.id if recording is not None else None)


def _parts(settings: WatchSettings, job: str) -> tuple[Path, Path]:
    """Where a split of ``job`` leaves its accepted and its held batch until it is filed."""
    work = settings.folder("work")
    return work / f".{job}.accepted{PART}", work / f".{job}.held{PART}"


def _split_file(job: str, name: str, settings: WatchSettings, scrubber: Any,
                recording: Any) -> Any:
    """Split one taken file (scrubber.split) into work/'s parts, with its reports.

    The parts are kept only when the file has both accepted and held claims, and
    every claim is in one of them; otherwise the file is filed whole, as without
    --split. The outcome counts the claims as the split placed them: a claim held
    with a rejected partner counts as rejected.
    """
    from contextlib import ExitStack

    from scrubber.api import FileOutcome, file_sinks
    from scrubber.emit.summary import Tally
    from scrubber.passes import TallySink
    from scrubber.split import split

    accepted, held = _parts(settings, job)
    base = settings.folder("reports") / job_stem(job)
    tally = Tally()
    with ExitStack() as stack:
        sinks, written = file_sinks(base, settings.reports, scrubber, stack)
        result = split([(str(settings.folder("work") / job), printable(name))], accepted,
                       held, scrubber=scrubber, recording=recording,
                       sinks=[TallySink(tally), *sinks])
    if not (result.accepted and result.held and result.complete):
        accepted.unlink(missing_ok=True)
        held.unlink(missing_ok=True)
    rejected = result.held if result.complete else tally.rejected
    return FileOutcome(str(settings.folder("work") / job), tally.claims,
                       tally.claims - rejected if result.complete else tally.accepted,
                       rejected, tally.unreadable, tally.envelope_errors, written(),
                       tally.reason, tally.warnings)


class _Changed(Exception):
    """The file changed while it was scrubbed: what it held is dropped, the file redone."""


# (job, verdict, summary line, error, the recording holding its accepted claims)
Result = tuple[str, str, str | None, str | None, str | None]


@dataclass(slots=True)
class _Later:
    """A job waiting in work/ to be tried again: rescrubbed, or (with ``result``) filed."""

    due: float  # time.monotonic()
    job: str
    result: Result | None
    attempt: int


class Watcher:
    """Takes complete files from inbox/, scrubs them in worker processes, files them away."""

    def __init__(self, settings: WatchSettings, stop: threading.Event | None = None):
        self.settings = settings
        self.stop = stop or threading.Event()
        self.wake = threading.Event()
        self._seen: dict[str, tuple[int, float, float]] = {}  # name -> size, mtime, since
        self._names: dict[str, str] = {}  # job -> the original file name
        self._deaths: dict[str, int] = {}  # job -> worker deaths charged to it
        self._suspects: set[str] = set()  # jobs in hand, with others, when a worker died
        self._later: list[_Later] = []
        self._untakable: dict[str, float] = {}  # inbox name -> when to try taking it again
        self.untaken: dict[str, str] = {}  # inbox name -> why it cannot be taken (named)
        self.done = 0
        self.ledger: Any = None  # where filed files' recordings are ended (run opens it)

    # -- taking files ----------------------------------------------------------------
    def _ready(self) -> list[str]:
        """Inbox entries complete enough to take, oldest first."""
        now = time.monotonic()
        ready = []
        names = set()
        for entry in os.scandir(self.settings.folder("inbox")):
            name = entry.name
            if name.startswith(".") or name.endswith(".tmp"):
                continue
            names.add(name)
            if self._untakable.get(name, 0.0) > now:
                continue
            try:
                info = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            except OSError as exc:  # cannot even be looked at: say so, look again later
                self._refuse(name, exc.strerror or str(exc))
                continue
            if not stat.S_ISREG(info.st_mode):
                ready.append(name)  # taken at once, to be filed under failed/
                continue
            key = (info.st_size, info.st_mtime)
            seen = self._seen.get(name)
            if seen is None or seen[:2] != key:
                self._seen[name] = (*key, now)
            elif now - seen[2] >= self.settings.settle_seconds:
                ready.append(name)
        for name in list(self._seen):
            if name not in names:
                del self._seen[name]
        for name in list(self.untaken):
            if name not in names:  # removed by someone, or taken by another watcher
                del self.untaken[name]
                self._untakable.pop(name, None)
        return sorted(ready)

    def _job_name(self, name: str) -> str:
        """A job name for ``name``, ``<UTC time>[-n]__<safe name>``, free in work/ and in
        reports/ (no report of an earlier file carries its stem)."""
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        safe = safe_job_name(name)
        endings = [f".{REPORT_FORMATS[fmt].suffix}" for fmt in self.settings.reports
                   if fmt in REPORT_FORMATS] + [".reason.txt", ".277ca.x12", ".999.x12",
                                                ".ta1.x12"]
        n = 1
        while True:
            job = f"{stamp}__{safe}" if n == 1 else f"{stamp}-{n}__{safe}"
            stem = self.settings.folder("reports") / job_stem(job)
            if job not in self._names and \
                    not os.path.lexists(self.settings.folder("work") / job) and \
                    not any(os.path.lexists(f"{stem}{end}") for end in endings):
                return job
            n += 1

    def _refuse(self, name: str, reason: str) -> None:
        """An inbox entry that cannot be taken: named in the log (and in ``--once``'s last
        line); it stays in inbox/ and is tried again after retry_max_seconds."""
        wait = self.settings.retry_max_seconds
        self._untakable[name] = time.monotonic() + wait
        if self.untaken.get(name) != reason:
            log.warning("%s: cannot be taken from inbox/ (%s); it stays there, tried again "
                        "every %.0f s", printable(name), reason, wait)
        self.untaken[name] = reason

    def _take(self, name: str) -> str | None:
        """Rename ``name`` into work/ under a safe job name; None when it cannot be taken."""
        job = self._job_name(name)
        try:
            os.rename(self.settings.folder("inbox") / name, self.settings.folder("work") / job)
        except FileNotFoundError:
            return None
        except OSError as exc:  # immutable, not ours to move, or a read-only work/
            work = self.settings.folder("work")
            reason = exc.strerror or str(exc)
            if not os.access(work, os.W_OK):
                reason += "; work/ cannot be written"
            self._refuse(name, reason)
            return None
        self._untakable.pop(name, None)
        self.untaken.pop(name, None)
        self._seen.pop(name, None)
        self._names[job] = name
        _journal(self.settings, step="taken", job=job, name=name)
        return job

    def _name(self, job: str) -> str:
        return self._names.get(job) or job.split("__", 1)[-1]

    # -- finishing files ---------------------------------------------------------------
    def _finish(self, job: str, verdict: str, line: str | None, error: str | None,
                recording: str | None, seconds: float) -> None:
        """File the job under its verdict; OSError leaves it in work/ (see ``_settle``).

        Then the claims its recording holds are sent, if it was filed under
        accepted/ (the folder that goes out), or dropped: a claim counts as sent
        only once its file is where it is sent from. A crash in between is
        resolved at the next start from the journal (``recover``).
        """
        name = self._name(job)
        if verdict == "failed" and error:
            write_private(self.settings.folder("reports") / f"{job_stem(job)}.reason.txt",
                          (error + "\n").encode("utf-8", "replace"))
        if recording is not None:
            _journal(self.settings, step="filing", job=job, verdict=verdict,
                     recording=recording)
        if verdict == SPLIT:
            self._file_split(job, name, recording, seconds, line)
            return
        target = _free_name(self.settings.folder(verdict), name)
        try:
            os.rename(self.settings.folder("work") / job, target)
        except OSError as exc:
            if exc.errno != errno.ENAMETOOLONG:
                raise
            target = _free_name(self.settings.folder(verdict), job)  # the safe name fits
            os.rename(self.settings.folder("work") / job, target)
        _journal(self.settings, step="done", job=job, verdict=verdict, to=target.name,
                 **({"recording": recording} if recording else {}))
        if recording is not None:
            self._end_recording(recording, verdict == "accepted")
        self._names.pop(job, None)
        self._deaths.pop(job, None)
        self.done += 1
        filed = printable(target.name)
        if target.name != name:
            filed += f" (arrived as {printable(name)})"
        said = "; ".join(printable(_first_line(part)) for part in (error, line) if part)
        log.info("%s: %s; %s (%.2f s)", filed, verdict, said, seconds)

    def _file_split(self, job: str, name: str, recording: str | None, seconds: float,
                    line: str | None) -> None:
        """File a split job: the file as it came into reports/ first (then it is done and
        never redone), then its held batch into rejected/ and its accepted batch into
        accepted/ (``_file_parts``, which ``recover`` finishes after a crash)."""
        kept = _free_name(self.settings.folder("reports"), f"{job_stem(job)}.original.x12")
        os.rename(self.settings.folder("work") / job, kept)
        filed = self._file_parts(job, name)
        _journal(self.settings, step="done", job=job, verdict=SPLIT,
                 to=[path.name for path in filed],
                 **({"recording": recording} if recording else {}))
        if recording is not None:
            self._end_recording(recording, True)
        self._names.pop(job, None)
        self._deaths.pop(job, None)
        self.done += 1
        log.info("%s: split into %s; %s (%.2f s)", printable(name),
                 " and ".join(f"{p.parent.name}/{printable(p.name)}" for p in filed),
                 printable(_first_line(line or "")), seconds)

    def _file_parts(self, job: str, name: str) -> list[Path]:
        """Move a split job's batches from work/ into rejected/ and accepted/."""
        filed = []
        accepted, held = _parts(self.settings, job)
        for part, folder in ((held, "rejected"), (accepted, "accepted")):
            if part.exists():
                target = _free_name(self.settings.folder(folder), name)
                os.rename(part, target)
                filed.append(target)
        return filed

    def _end_recording(self, recording: str, send: bool) -> None:
        """Send (or drop) what a filed job's recording holds; a ledger that fails now leaves
        it prepared, for the next start to end from the journal."""
        from scrubber.ledger import LedgerError

        if self.ledger is None:
            return
        try:
            if send:
                self.ledger.commit_recording(recording)
            else:
                self.ledger.discard_recording(recording)
        except LedgerError as exc:
            log.warning("the ledger could not %s a filed file's claims now (%s); the next "
                        "start does", "send" if send else "drop", exc)

    def _settle(self, result: Result, seconds: float, attempt: int = 0) -> None:
        """Act on a job's result: file it, or keep it in work/ to be tried again."""
        job, verdict, _, error, _ = result
        self._suspects.discard(job)  # it came back: no worker died of it
        if verdict == CHANGED:
            log.info("%s: changed while it was scrubbed; scrubbed again",
                     printable(self._name(job)))
            self._retry(job, None, attempt, self.settings.settle_seconds)
            return
        if verdict == RETRY:
            self._retry(job, None, attempt)
            log.warning("%s: not scrubbed (%s); stays in work/, tried again in %.0f s",
                        printable(self._name(job)), error, self._later[-1].due -
                        time.monotonic())
            return
        try:
            self._finish(*result, seconds=seconds)
        except OSError as exc:  # a read-only or full outcome folder: not the file's fault
            self._retry(job, result, attempt)
            log.warning("%s: not filed under %s/ (%s); stays in work/, tried again in %.0f s",
                        printable(self._name(job)), verdict, exc.strerror or exc,
                        self._later[-1].due - time.monotonic())

    def _retry(self, job: str, result: Result | None, attempt: int,
               wait: float | None = None) -> None:
        if wait is None:
            wait = min(self.settings.retry_seconds * 2 ** attempt,
                       self.settings.retry_max_seconds)
        self._later.append(_Later(time.monotonic() + wait, job, result, attempt + 1))

    def _due(self) -> list[_Later]:
        now = time.monotonic()
        due = [item for item in self._later if item.due <= now]
        self._later = [item for item in self._later if item.due > now]
        return due

    def recover(self) -> list[str]:
        """Jobs a crash left in work/: they are redone from scratch. The recordings of
        jobs it caught between their scrub and their filing are ended as the journal says:
        sent if the file reached accepted/, dropped otherwise."""
        for folder in ("work", "reports"):  # a killed run's half-written files: nothing
            sweep_temporaries(self.settings.folder(folder), older_than=0)  # is in flight now
        entries = [e.name for e in os.scandir(self.settings.folder("work")) if e.name != JOURNAL]
        jobs = sorted(name for name in entries if not name.startswith("."))
        parts = sorted(name for name in entries if name.startswith(".") and
                       name.endswith(PART))
        if jobs or parts:
            names = _journal_names(self.settings)
            self._names.update({job: names[job] for job in jobs if job in names})
        for part in parts:  # a split's batches: redone with their job, or filed as planned
            job = part[1:].rsplit(".", 2)[0]
            if job in jobs:
                os.unlink(self.settings.folder("work") / part)
            elif (self.settings.folder("work") / part).exists():
                self._file_parts(job, names.get(job) or job.split("__", 1)[-1])
        if self.ledger is not None:
            filed = _journal_filed(self.settings)
            for recording, _ in self.ledger.prepared(coordinator(self.settings)):
                job, verdict = filed.get(recording, ("", ""))  # not filed: dropped
                self._end_recording(recording, verdict in ("accepted", SPLIT)
                                    and job not in jobs)
        return jobs

    # -- the loop ----------------------------------------------------------------------
    def _pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=max(1, self.settings.workers),
                                   initializer=_die_with_parent, initargs=(os.getpid(),))

    def run(self, once: bool = False) -> int:
        """Process files until stopped (or, with ``once``, until the inbox is empty).

        With ``once``, jobs waiting for a folder to become writable again stay
        in work/ for the next run.
        """
        ensure_folders(self.settings)
        options = self.settings.options
        if options.record and options.ledger is not None:
            from scrubber.ledger import open_store

            self.ledger = open_store(options.ledger)
        try:
            return self._run(once)
        finally:
            if self.ledger is not None:
                self.ledger.close()
                self.ledger = None

    def _run(self, once: bool) -> int:
        observer = self._observe() if self.settings.use_events and not once else None
        pending: dict[Future, tuple[str, float, int]] = {}
        queue: deque[tuple[str, int]] = deque((job, 0) for job in self.recover())
        log.info("%s", describe(self.settings, redo=len(queue), once=once))
        if self.settings.options.data is not None:  # is what is installed still current?
            from scrubber.data import freshness_words

            log.info("%s", freshness_words(self.settings.options.data))
        for job, _ in queue:
            _journal(self.settings, step="redo", job=job)
        pool = self._pool()
        stopping = False
        try:
            while True:
                if self.stop.is_set() and not stopping:
                    stopping = True
                    self._stopping(pending, queue)
                if not self.stop.is_set():
                    for name in self._ready():
                        taken = self._take(name)
                        if taken:
                            queue.append((taken, 0))
                for item in self._due():
                    if item.result is None:
                        queue.append((item.job, item.attempt))
                    else:
                        self._settle(item.result, 0.0, item.attempt)
                broken = False
                lost: list[tuple[str, int]] = []  # jobs in hand when a worker died
                # after a death, suspects are redone one at a time: a death is then theirs
                room = 1 if self._suspects else 2 * self.settings.workers
                while queue and len(pending) < room and not stopping:
                    job, attempt = queue.popleft()
                    try:
                        future = pool.submit(_job_file, job, self._name(job), self.settings)
                    except (BrokenProcessPool, RuntimeError):  # an idle worker was killed
                        queue.appendleft((job, attempt))
                        broken = True
                        break
                    pending[future] = (job, time.monotonic(), attempt)
                for future in [f for f in pending if f.done()]:
                    job, started, attempt = pending.pop(future)
                    try:
                        result = future.result()
                    except BrokenProcessPool:  # a worker died: every job in hand is redone
                        broken = True
                        lost.append((job, attempt))
                        continue
                    self._settle(result, time.monotonic() - started, attempt)
                if broken:
                    pool = self._remake(pool, pending, queue, lost)
                if stopping and not pending:
                    log.info("stopped: %d file%s filed%s", self.done, _s(self.done),
                             _left(len(queue) + len(self._later)))
                    return self.done  # what was queued but not started stays in work/
                if once and not pending and not queue and not self._inbox_busy() and \
                        not any(item.result is None and item.attempt <= ONCE_ATTEMPTS
                                for item in self._later):
                    log.info("done: %d file%s filed%s%s", self.done, _s(self.done),
                             _left(len(self._later)), self._untaken_words())
                    return self.done  # jobs still waiting stay in work/ for the next run
                self.wake.wait(self.settings.poll_seconds if not pending else 0.05)
                self.wake.clear()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            if observer is not None:
                observer.stop()
                observer.join(timeout=2)

    def _untaken_words(self) -> str:
        """The inbox entries that could not be taken, by name, for the last line."""
        if not self.untaken:
            return ""
        named = [f"{printable(name)} ({reason})" for name, reason in sorted(self.untaken.items())]
        more = f" and {len(named) - 20} more" if len(named) > 20 else ""
        n = len(named)
        return (f"; {n} inbox entr{'y' if n == 1 else 'ies'} could not be taken and "
                f"stay{'s' if n == 1 else ''} in inbox/: {', '.join(named[:20])}{more}")

    def _stopping(self, pending: dict[Future, tuple[str, float, int]],
                  queue: deque[tuple[str, int]]) -> None:
        """Say at once what a stop waits for: the files in hand, by name.

        Jobs handed to the pool but not started are called back: like the
        queued ones they stay in work/ for the next start.
        """
        for future, (job, _, attempt) in list(pending.items()):
            if future.cancel():
                del pending[future]
                queue.append((job, attempt))
        names = [printable(self._name(job)) for job, _, _ in pending.values()]
        if names:
            shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more"
                                              if len(names) > 10 else "")
            finishing = f"finishing {len(names)} file{_s(len(names))} in hand ({shown})"
        else:
            finishing = "nothing in hand"
        log.info("stopping: %s%s", finishing, _left(len(queue) + len(self._later)))

    def _remake(self, pool: ProcessPoolExecutor,
                pending: dict[Future, tuple[str, float, int]],
                queue: deque[tuple[str, int]],
                lost: list[tuple[str, int]]) -> ProcessPoolExecutor:
        """A new pool for a broken one; the jobs it held are queued again.

        Which job's worker died is known only when one job was in hand: that
        job is charged with the death (and fails at ``worker_deaths``). With
        several, none is charged; they become suspects, redone one at a time.
        """
        log.warning("a scrubber process died; its pool is made again and its files redone")
        for future, (job, _, attempt) in list(pending.items()):
            del pending[future]
            if future.done() and future.exception() is None:
                self._settle(future.result(), 0.0, attempt)
            else:
                lost.append((job, attempt))
        pool.shutdown(wait=False, cancel_futures=True)
        if len(lost) == 1:
            job, attempt = lost[0]
            deaths = self._deaths[job] = self._deaths.get(job, 0) + 1
            if deaths >= self.settings.worker_deaths:
                self._suspects.discard(job)
                self._settle((job, "failed", None, f"the scrubber process died {deaths} "
                              "times while reading this file", None), 0.0, attempt)
                return self._pool()
        for job, attempt in reversed(lost):
            self._suspects.add(job)
            _journal(self.settings, step="redo", job=job, why="worker died")
            queue.appendleft((job, attempt))
        return self._pool()

    def _inbox_busy(self) -> bool:
        """Whether the inbox still holds files that are settling."""
        now = time.monotonic()
        return any(not (e.name.startswith(".") or e.name.endswith(".tmp")) and
                   self._untakable.get(e.name, 0.0) <= now
                   for e in os.scandir(self.settings.folder("inbox")))

    def _observe(self) -> Any:
        """Wake the loop on file events (watchdog); polling still runs underneath."""
        from watchdog.events import FileSystemEvent, FileSystemEventHandler
        from watchdog.observers import Observer

        wake = self.wake

        class Wake(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                wake.set()

        observer = Observer()
        observer.schedule(Wake(), str(self.settings.folder("inbox")), recursive=False)
        observer.start()
        return observer


def _s(n: int) -> str:
    return "" if n == 1 else "s"


def _left(n: int) -> str:
    return f"; {n} taken file{_s(n)} stay{'s' if n == 1 else ''} in work/ for the next start" \
        if n else ""


def describe(settings: WatchSettings, *, redo: int = 0, once: bool = False) -> str:
    """The start line: where, how many workers, which ledger and profile (no password)."""
    from scrubber.ledger.postgres import safe_url

    options = settings.options
    ledger = "none"
    if options.ledger:
        ledger = printable(safe_url(options.ledger))
        ledger += ", recording accepted claims" if options.record else ", not recording"
    profile = options.profile
    if profile is None:
        profile_name = "default"
    elif isinstance(profile, str):
        profile_name = printable(profile)
    else:
        profile_name = printable(profile.name) + (
            "" if profile.name == "default" else f" ({printable(profile.path)})")
    text = (f"watching {printable(str(settings.root))}{' once' if once else ''}: "
            f"{settings.workers} worker{_s(settings.workers)}, ledger {ledger}, "
            f"profile {profile_name}")
    if settings.split:
        text += "; mixed files split (accepted claims to accepted/, the rest to rejected/)"
    if redo:
        text += f"; {redo} file{_s(redo)} left in work/ redone"
    return text


@dataclass(frozen=True, slots=True)
class WatchOutcome:
    """How a watcher's run ended: what it filed, and what it had to leave in inbox/."""

    filed: int  # files filed under accepted/, rejected/ or failed/
    # inbox entries that could not be taken when it ended (immutable, not ours to move,
    # not even to be looked at), by name: they stay in inbox/, filed nowhere
    untaken: tuple[str, ...] = ()


def run_watch(settings: WatchSettings, stop: threading.Event | None = None,
              once: bool = False) -> WatchOutcome:
    """Run the watcher; SIGTERM and SIGINT stop it after the files in hand are done."""
    stop = stop or threading.Event()
    watcher = Watcher(settings, stop)

    def stopping(*_: object) -> None:
        stop.set()
        watcher.wake.set()

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, stopping)
    filed = watcher.run(once=once)
    return WatchOutcome(filed, tuple(sorted(watcher.untaken)))
