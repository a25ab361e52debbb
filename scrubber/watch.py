"""The drop-folder watcher: files in, verdicts and reports out, none ever lost.

Folders under one root (created if missing)::

    inbox/     files arrive here (write name.tmp, then rename; or let it settle)
    work/      files being scrubbed; the journal of what happens to them
    accepted/  rejected/  failed/   every input ends in exactly one of these
    reports/   per input: JSON and text summaries, 277CA / TA1

Crash safety rests on renames within one filesystem, which are atomic: a file
is taken by renaming it from inbox/ into work/ under a job name, its reports
are written under that job name (so a redo overwrites, never duplicates), and
it is done the moment it is renamed out of work/. On start, anything still in
work/ is redone from scratch; the ledger records a submission idempotently, so
a redo never counts a claim twice. The journal (work/journal.jsonl) records each
step for people, not for recovery: the folders are the truth.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import stat
import threading
import time
import traceback
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

from scrubber.files import write_private

log = logging.getLogger("scrubber.watch")

FOLDERS = ("inbox", "work", "accepted", "rejected", "failed", "reports")


@dataclass(frozen=True, slots=True)
class WatchSettings:
    """Where the folders are and how patiently to take files."""

    root: Path
    settle_seconds: float = 2.0  # size and mtime unchanged this long = complete
    poll_seconds: float = 0.5
    workers: int = os.cpu_count() or 1
    use_events: bool = True  # watchdog events; False polls only (network filesystems)
    ledger_path: str | None = None  # None: no ledger
    profile_path: str | None = None
    companion: str | None = None  # a payer companion guide of x12_maps/ig-overrides.xml
    ncci: object | None = None  # scrubber.ncci.NcciTables (pickles by reopening its index)

    def folder(self, name: str) -> Path:
        return self.root / name


def ensure_folders(settings: WatchSettings) -> None:
    for name in FOLDERS:
        settings.folder(name).mkdir(mode=0o700, parents=True, exist_ok=True)


def _journal(settings: WatchSettings, **entry: object) -> None:
    entry["at"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    line = json.dumps(entry) + "\n"
    fd = os.open(settings.folder("work") / "journal.jsonl",
                 os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, line.encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def _free_name(folder: Path, name: str) -> Path:
    """``name`` in ``folder``, suffixed (.1, .2 ...) when taken: never overwrite."""
    target = folder / name
    n = 0
    while os.path.lexists(target):
        n += 1
        target = folder / f"{name}.{n}"
    return target


def _job_file(job: str, settings: WatchSettings) -> tuple[str, str, str | None, str | None]:
    """Scrub one taken file (in a worker process): its verdict and reports.

    Returns (job, verdict, summary line, error). Anything the scrubber raises
    makes the file poison: it goes to failed/ with the error, and the watcher
    goes on.
    """
    from scrubber.api import process_file
    from scrubber.ledger import Ledger
    from scrubber.rules import load_profile

    path = settings.folder("work") / job
    reports = settings.folder("reports")
    try:
        mode = os.lstat(path).st_mode
        if not stat.S_ISREG(mode):
            kind = "a symbolic link" if stat.S_ISLNK(mode) else "not a regular file"
            return job, "failed", None, f"{job.split('__', 1)[-1]} is {kind}; not read"
        ledger = Ledger.open(settings.ledger_path) if settings.ledger_path else None
        try:
            outcome = process_file(str(path), str(reports), stem=job, ledger=ledger,
                                   profile=load_profile(settings.profile_path),
                                   companion=settings.companion, ncci=settings.ncci)
        finally:
            if ledger is not None:
                ledger.close()
    except Exception as exc:  # a poison file must not stop the watcher
        return job, "failed", None, "".join(traceback.format_exception_only(exc)).strip()
    line = (f"claims {outcome.claims} accepted {outcome.accepted} rejected {outcome.rejected}"
            f" envelope problems {outcome.envelope_errors}")
    return job, outcome.verdict, line, outcome.reason or None


class Watcher:
    """Takes complete files from inbox/, scrubs them in worker processes, files them away."""

    def __init__(self, settings: WatchSettings, stop: threading.Event | None = None):
        self.settings = settings
        self.stop = stop or threading.Event()
        self.wake = threading.Event()
        self._seen: dict[str, tuple[int, float, float]] = {}  # name -> size, mtime, since
        self._counter = 0
        self.done = 0

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
            try:
                info = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
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
        return sorted(ready)

    def _take(self, name: str) -> str | None:
        self._counter += 1
        job = f"{time.time_ns()}-{os.getpid()}-{self._counter}__{name}"
        try:
            os.rename(self.settings.folder("inbox") / name, self.settings.folder("work") / job)
        except FileNotFoundError:
            return None
        self._seen.pop(name, None)
        _journal(self.settings, step="taken", job=job)
        return job

    # -- finishing files ---------------------------------------------------------------
    def _finish(self, job: str, verdict: str, line: str | None, error: str | None,
                seconds: float) -> None:
        name = job.split("__", 1)[-1]
        if verdict == "failed" and error:
            write_private(self.settings.folder("reports") / f"{job}.reason.txt",
                          (error + "\n").encode("utf-8", "replace"))
        target = _free_name(self.settings.folder(verdict), name)
        os.rename(self.settings.folder("work") / job, target)
        _journal(self.settings, step="done", job=job, verdict=verdict, to=target.name)
        self.done += 1
        log.info("%s: %s; %s (%.2f s)", name, verdict, line or error or "", seconds)

    def recover(self) -> list[str]:
        """Jobs a crash left in work/: they are redone from scratch."""
        return sorted(e.name for e in os.scandir(self.settings.folder("work"))
                      if e.name != "journal.jsonl")

    # -- the loop ----------------------------------------------------------------------
    def run(self, once: bool = False) -> int:
        """Process files until stopped (or, with ``once``, until the inbox is empty)."""
        ensure_folders(self.settings)
        observer = self._observe() if self.settings.use_events and not once else None
        pending: dict[Future, tuple[str, float]] = {}
        queue = self.recover()
        for job in queue:
            _journal(self.settings, step="redo", job=job)
        pool = ProcessPoolExecutor(max_workers=max(1, self.settings.workers))
        try:
            while True:
                if not self.stop.is_set():
                    for name in self._ready():
                        job = self._take(name)
                        if job:
                            queue.append(job)
                while queue and len(pending) < 2 * self.settings.workers:
                    job = queue.pop(0)
                    pending[pool.submit(_job_file, job, self.settings)] = (job, time.monotonic())
                for future in [f for f in pending if f.done()]:
                    job, started = pending.pop(future)
                    try:
                        result = future.result()
                    except BrokenProcessPool as exc:  # the worker itself died
                        result = (job, "failed", None, f"the scrubber process died: {exc}")
                        pool.shutdown(wait=False, cancel_futures=True)
                        pool = ProcessPoolExecutor(max_workers=max(1, self.settings.workers))
                        for other, (other_job, _) in list(pending.items()):
                            queue.append(other_job)
                            del pending[other]
                    self._finish(*result, seconds=time.monotonic() - started)
                if self.stop.is_set() and not pending:
                    return self.done  # what was queued but not started stays in work/
                if once and not pending and not queue and not self._inbox_busy():
                    return self.done
                self.wake.wait(self.settings.poll_seconds if not pending else 0.05)
                self.wake.clear()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            if observer is not None:
                observer.stop()
                observer.join(timeout=2)

    def _inbox_busy(self) -> bool:
        """Whether the inbox still holds files that are settling."""
        return any(not (e.name.startswith(".") or e.name.endswith(".tmp"))
                   for e in os.scandir(self.settings.folder("inbox")))

    def _observe(self):
        """Wake the loop on file events (watchdog); polling still runs underneath."""
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer

        wake = self.wake

        class Wake(FileSystemEventHandler):
            def on_any_event(self, event) -> None:
                wake.set()

        observer = Observer()
        observer.schedule(Wake(), str(self.settings.folder("inbox")), recursive=False)
        observer.start()
        return observer


def run_watch(settings: WatchSettings, stop: threading.Event | None = None,
              once: bool = False) -> int:
    """Run the watcher; SIGTERM and SIGINT stop it after the files in hand are done."""
    stop = stop or threading.Event()
    watcher = Watcher(settings, stop)
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: (stop.set(), watcher.wake.set()))
    return watcher.run(once=once)
