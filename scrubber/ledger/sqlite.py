"""The embedded ledger: one SQLite file per user or site, nothing to install or start.

WAL mode lets a CLI run and watchers share the file. Every write is a
``BEGIN IMMEDIATE`` transaction: SQLite then holds its one write lock, so
decisions that record are serialized per database, a superset of per
patient-day key. The key lives beside the database (``ledger.sqlite.key``),
owner-only, unless one is given or set in the environment.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from scrubber.ledger import migrations
from scrubber.ledger.keys import LedgerError
from scrubber.ledger.sqlbase import CLAIM_COLUMNS, SqlStore
from scrubber.ledger.store import PreparedClaim
from scrubber.paths import private_dir, state_dir

_BUSY_MS = 30000
_RETRIES = 20
_VARIABLES = 900  # bound parameters per statement: under SQLite's oldest limit (999)
# A file that gets one line per write transaction of this process's SQLite ledgers:
# "<wait ms> <hold ms> <holder thread's CPU ms>" (no claim, no path): the queue's figures
# for bench/serve_bench.py, which do not depend on the machine's load as latency does.
TRACE_ENV = "SCRUBBER_LEDGER_TRACE"


class SqliteStore(SqlStore):
    """The ledger in one SQLite file (open it with scrubber.ledger.open_store)."""

    kind = "sqlite"

    def __init__(self, location: str, key: bytes, connection: sqlite3.Connection):
        super().__init__(location, key)
        self._db = connection
        # a recording's lease: an exclusive flock on <ledger>.recordings/<id>, which the
        # kernel lets go when the process dies, however it dies
        self._leases_dir = Path(f"{location}.recordings")
        self._leases: dict[str, int] = {}
        # the writers' queue: an exclusive flock on <ledger>.writers taken before BEGIN
        # IMMEDIATE (see ``_queue``); None when the file system cannot lock it
        self._writers: int | None = None
        self._queued = False

    @classmethod
    def open(cls, path: Path, *, key: bytes | str | os.PathLike | None = None
             ) -> SqliteStore:
        try:
            # the default folder is ours alone; a folder the user named is left as it is
            private_dir(path.parent, own=path.parent == state_dir())
            if not path.exists():
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        except OSError as exc:
            raise LedgerError(f"the ledger {path} cannot be created ({exc.strerror})") from None
        try:
            db = sqlite3.connect(path, timeout=_BUSY_MS / 1000, isolation_level=None,
                                 check_same_thread=False)
            db.execute(f"PRAGMA busy_timeout = {_BUSY_MS}")
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")
            store = cls(str(path), b"", db)
            store._migrate()
            store._count("claims")
        except sqlite3.OperationalError as exc:  # the file is fine; the disk or access is not
            raise LedgerError(f"the ledger {path} cannot be used: {_failure(exc, path)}"
                              ) from None
        except sqlite3.DatabaseError as exc:
            raise LedgerError(f"{path} is not a usable ledger ({exc}); move it aside to "
                              "start a new one") from None
        for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            if name.exists():
                os.chmod(name, 0o600)
        try:
            store._adopt_key(key, path.with_name(path.name + ".key"))
        except BaseException:
            store.close()
            raise
        store.sweep()  # what a killed run left held goes at the next start
        return store

    def _migrate(self) -> None:
        if self._version() == migrations.SCHEMA_VERSION:
            return
        with self._transaction():
            version = migrations.apply(migrations.SQLITE_STEPS, self._run, self._version())
            self._db.execute(f"PRAGMA user_version = {int(version)}")

    def _version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def _run(self, sql: str, params: Sequence[Any] = ()) -> Any:
        try:
            return self._db.execute(sql, tuple(params))
        except sqlite3.OperationalError as exc:  # disk full, I/O error, locked too long
            raise LedgerError(f"the ledger {self.location} failed: "
                              f"{_failure(exc, self.location)}") from None

    def _run_many(self, sql: str, rows: list[tuple]) -> None:
        try:
            self._db.executemany(sql, rows)
        except sqlite3.OperationalError as exc:
            raise LedgerError(f"the ledger {self.location} failed: "
                              f"{_failure(exc, self.location)}") from None

    def commit_recording(self, recording: str) -> int:
        """Send what ``recording`` holds; with other threads of this process committing
        recordings of this ledger at the same time, in one transaction with theirs.

        Group commit: the thread whose turn it is takes the writers' queue, then
        every commit asked for by then, and sends each recording in turn (as
        their own transactions one after the other would) in its one
        transaction: it commits or rolls back as a whole, so each recording is
        sent whole or stays held, whatever kills the process when. A thread
        whose commit an earlier turn took waits for that turn's outcome (its
        error, if it failed). Each store then ends its own recording's lease.
        """
        if self._queued:  # inside this store's own transaction: it holds the queue already
            return super().commit_recording(recording)
        group = _group(self.location)
        ask = _Ask(recording)
        with group.lock:
            group.waiting.append(ask)
        with group.turn:
            if not ask.done:  # nobody took it yet: this thread sends what waits
                batch: list[_Ask] = []
                try:
                    with self._transaction():
                        with group.lock:
                            batch, group.waiting = group.waiting, []
                        sent = [self._send_recording(each.recording) for each in batch]
                except BaseException as exc:
                    if not batch:  # failed before it took them: its own ask alone fails
                        with group.lock:
                            group.waiting.remove(ask)
                        batch = [ask]
                    for each in batch:
                        each.finish(None, exc)
                    raise
                for each, count in zip(batch, sent, strict=True):
                    each.finish(count, None)
        if ask.error is not None:  # the turn of another thread failed: nothing was sent
            raise LedgerError(f"the ledger {self.location} could not send the recording "
                              f"({ask.error})") from None
        self._end(recording)
        return int(ask.sent or 0)

    def _insert_many(self, claims: list[tuple[str, PreparedClaim]], recorded_at: str,
                     recording: str | None = None) -> None:
        """New claims and their lines in a few multi-row statements, not two or more each.

        Each statement lets the GIL go while SQLite steps it, and inside the
        write lock a thread of a busy server then waits to get it back (up to
        the switch interval, every time): a hundred claims inserted one by one
        held the lock about ten times their CPU. The claims get the ids they
        would get one by one (the highest + 1, ...: the write lock is held),
        so the ledger's rows are the same.
        """
        if not claims:
            return
        (last,) = self._run("SELECT COALESCE(MAX(id), 0) FROM claims").fetchone()
        status = "sent" if recording is None else "held"
        claim_rows: list[tuple] = []
        line_rows: list[tuple] = []
        for ident, (submission, claim) in enumerate(claims, start=int(last) + 1):
            claim_rows.append((ident, *claim.key, claim.frequency, submission, recorded_at,
                               claim.content, claim.patient, len(claim.rows), status,
                               recording))
            line_rows.extend((ident, claim.patient, *row) for row in claim.rows)
        self._insert_rows(f"claims (id, {CLAIM_COLUMNS}, patient, line_count, status, "
                          "recording)", claim_rows)
        self._insert_rows("lines (claim, patient, service_date, procedure, modifiers, units, "
                          "line_number)", line_rows)

    def _insert_rows(self, table: str, rows: list[tuple]) -> None:
        if not rows:
            return
        width = len(rows[0])
        marks = "(" + ", ".join("?" * width) + ")"
        step = max(1, _VARIABLES // width)
        for start in range(0, len(rows), step):
            part = rows[start:start + step]
            self._run(f"INSERT INTO {table} VALUES {', '.join([marks] * len(part))}",
                      [value for row in part for value in row])

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        with self._queue():
            yield from self._write_transaction()

    @contextmanager
    def _queue(self) -> Iterator[None]:
        """Wait for the ledger's write lock in the kernel, not in SQLite's busy handler.

        SQLite's busy handler polls with sleeps that grow to 100 ms, so a writer
        that has waited long sleeps through the moments the lock is free and a
        newcomer takes it: with 16 submissions at once some waited 15 s. A
        blocking flock wakes a waiter the moment the holder lets go (and the
        kernel lets go for a process that dies). Every write of this ledger
        (any process of ours) queues here first, so BEGIN IMMEDIATE then finds
        the lock free.
        """
        if self._queued:  # a transaction inside this store's own: it holds the queue
            yield
            return
        fd = self._writers_fd()
        began = time.perf_counter()
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        got, cpu = time.perf_counter(), time.thread_time()
        self._queued = True
        try:
            yield
        finally:
            self._queued = False
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)
            if os.environ.get(TRACE_ENV):
                _trace(os.environ[TRACE_ENV], got - began, time.perf_counter() - got,
                       time.thread_time() - cpu)

    def _writers_fd(self) -> int | None:
        if self._writers is None:
            try:
                self._writers = os.open(f"{self.location}.writers",
                                        os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
            except OSError:
                return None  # no queue file (a read-only folder): SQLite's handler alone
        return self._writers

    def _write_transaction(self) -> Iterator[None]:
        for attempt in range(_RETRIES):  # busy_timeout covers most waits; this the rest
            try:
                self._db.execute("BEGIN IMMEDIATE")
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise LedgerError(f"the ledger could not be written: {exc}") from None
                time.sleep(0.05 * (attempt + 1))
        else:
            raise LedgerError("the ledger stayed locked by another process; try again")
        try:
            yield
        except BaseException:
            self._rollback()
            raise
        try:
            self._db.execute("COMMIT")
        except sqlite3.OperationalError as exc:  # a full disk at the last moment, say
            self._rollback()
            raise LedgerError(f"the ledger {self.location} failed: "
                              f"{_failure(exc, self.location)}") from None

    def _rollback(self) -> None:
        try:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
        except sqlite3.OperationalError:
            pass  # SQLite rolled back already (a full disk rolls back on its own)

    def _lock(self, keys: list[str]) -> None:
        """BEGIN IMMEDIATE already holds the database's one write lock."""

    def _lease(self, recording: str) -> None:
        try:
            self._leases_dir.mkdir(mode=0o700, exist_ok=True)
            fd = os.open(self._leases_dir / recording, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW,
                         0o600)
        except OSError as exc:
            raise LedgerError(f"the ledger {self.location} cannot start a recording "
                              f"({exc.strerror})") from None
        fcntl.flock(fd, fcntl.LOCK_EX)
        self._leases[recording] = fd

    def _unlease(self, recording: str) -> None:
        fd = self._leases.pop(recording, None)
        if fd is None:
            return
        try:
            os.unlink(self._leases_dir / recording)
        except OSError:
            pass
        os.close(fd)

    def _take_lease(self, recording: str) -> bool:
        try:
            fd = os.open(self._leases_dir / recording, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW,
                         0o600)
        except OSError:
            return False  # cannot tell: leave it to a look that can
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False  # held: its run goes on
        self._leases[recording] = fd
        return True

    def close(self) -> None:
        for recording, state in list(self._mine.items()):
            if state == "open":  # never committed: its run failed before its end
                try:
                    self.discard_recording(recording)
                except LedgerError:
                    pass
        for recording in list(self._leases):
            self._unlease(recording)
        if self._writers is not None:
            os.close(self._writers)
            self._writers = None
        self._db.close()


class _Ask:
    """One recording's commit, asked for and (once a turn sends it) answered."""

    def __init__(self, recording: str):
        self.recording = recording
        self.done = False
        self.sent: int | None = None
        self.error: BaseException | None = None

    def finish(self, sent: int | None, error: BaseException | None) -> None:
        self.sent, self.error, self.done = sent, error, True


class _Group:
    """The commits of one ledger that threads of this process wait to send."""

    def __init__(self) -> None:
        self.lock = threading.Lock()  # guards ``waiting``
        self.turn = threading.Lock()  # one sending turn at a time
        self.waiting: list[_Ask] = []


_GROUPS: dict[str, _Group] = {}
_GROUPS_LOCK = threading.Lock()


def _group(location: str) -> _Group:
    key = os.path.realpath(location)
    with _GROUPS_LOCK:
        return _GROUPS.setdefault(key, _Group())


def _trace(path: str, wait: float, hold: float, cpu: float) -> None:
    """Append one write transaction's queue figures to ``path`` (see ``TRACE_ENV``)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    except OSError:
        return
    try:
        os.write(fd, f"{wait * 1000:.2f} {hold * 1000:.2f} {cpu * 1000:.2f}\n".encode())
    finally:
        os.close(fd)


def _failure(exc: sqlite3.Error, path: str | os.PathLike) -> str:
    """SQLite's words for ``exc``, with the cause it often hides: a full disk ("disk I/O
    error" when there was no room for the journal)."""
    text = str(exc)
    try:
        stats = os.statvfs(os.path.dirname(os.path.abspath(path)))
    except OSError:
        return text
    if stats.f_bavail * stats.f_frsize < (1 << 20) and "full" not in text:
        text += " (no space left on the device)"
    return text
