"""Submissions and idempotency keys, shared by every worker process of the service.

One table: a submission's id, its client, the client's idempotency key
(unique per client), the SHA-256 of the body, when it came, whether it is
done, and the answer it got (status and JSON body) with the folder of its
reports. Claiming a key is one ``INSERT ... ON CONFLICT DO NOTHING``: exactly
one request wins it and scrubs; any other with that key waits for the
winner's answer and returns it, so nothing is scrubbed or recorded twice,
whichever worker each request reached.

A pending row names its owner (``procs.Owner``: machine, pid and start time
of the worker process scrubbing it) and carries a lease the owner renews
while it works. When the owner is known dead (it ran on this machine and is
gone) or its lease has run out (any machine), nobody will ever finish the
row: the next request with its key deletes it, with a ``DELETE`` that only
one request can win, and claims the key again. A live owner keeps its key;
an owner that loses its row (a lease that ran out while it was stopped)
cannot finish it either (``SubmissionLost``).

Backends: a SQLite file (WAL: several local workers share it) or a
PostgreSQL database by ``postgresql://`` URL (psycopg 3), chosen by
``open_submissions``. The service creates the table itself.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import sqlite3
import threading
import uuid
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from scrubber.ledger.postgres import safe_url
from scrubber.procs import Owner

_COLUMNS = ("id, client, idem_key, body_sha256, created, state, status, answer, folder, owner, "
            "lease_until")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS serve_submissions (
    id TEXT PRIMARY KEY,
    client TEXT NOT NULL,
    idem_key TEXT,                  -- the client's Idempotency-Key; NULL: none given
    body_sha256 TEXT NOT NULL,
    created TEXT NOT NULL,          -- ISO 8601 UTC
    state TEXT NOT NULL,            -- 'pending' while scrubbed, then 'done'
    status INTEGER,                 -- the HTTP status answered
    answer TEXT,                    -- the JSON body answered
    folder TEXT,                    -- where its reports and acknowledgements are
    owner TEXT,                     -- the worker process scrubbing it (procs.Owner)
    lease_until TEXT,               -- ISO 8601 UTC; the owner renews it while it scrubs
    UNIQUE (client, idem_key)
)
"""
log = logging.getLogger("scrubber.serve")

#: columns added after the first release: a table made by it gets them on opening
_ADDED = ("owner", "lease_until")
#: a pending row of the first release (no lease) counts as its worker's for this long
_LEGACY_LEASE = timedelta(hours=1)


class StoreError(Exception):
    """The submission store cannot be reached or used."""


class SubmissionLost(StoreError):
    """A submission's row is no longer its owner's: its lease ran out and it was taken over."""


@dataclass(frozen=True, slots=True)
class Submission:
    """A row of the store."""

    id: str
    client: str
    idem_key: str | None
    body_sha256: str
    created: str
    state: str
    status: int | None
    answer: dict | None
    folder: str | None
    owner: str | None = None  # str(procs.Owner) of the worker scrubbing it
    lease_until: str | None = None

    @property
    def done(self) -> bool:
        return self.state == "done"

    def orphaned(self) -> bool:
        """Pending with nobody left to finish it: its owner is known dead, or its lease ran out."""
        if self.done:
            return False
        owner = Owner.parse(self.owner)
        if owner is not None and owner.known_dead():
            return True
        if self.lease_until is None:
            return self.created < _moment(-_LEGACY_LEASE)
        return self.lease_until < _moment()


@dataclass(frozen=True, slots=True)
class KeyClaim:
    """The outcome of claiming an idempotency key: ours to scrub, or someone else's."""

    submission: Submission
    won: bool


def _moment(offset: timedelta = timedelta()) -> str:
    """Now plus ``offset``, written as ``created`` is: ISO strings compare as times."""
    return (datetime.now(UTC) + offset).isoformat(timespec="microseconds")


def _row(row: tuple) -> Submission:
    values = list(row)
    values[7] = json.loads(values[7]) if values[7] else None
    return Submission(*values)


class SubmissionStore:
    """The store's operations over a DB-API connection factory (SQL written with ``?``).

    ``owner`` is the process this store claims keys for; ``lease`` how long a
    claim holds without ``renew``.
    """

    placeholder = "?"

    def __init__(self, owner: Owner | None = None, lease: float = 30.0):
        self.owner = str(owner or Owner.current())
        self.lease = timedelta(seconds=lease)

    def _connection(self) -> Any:  # a context manager yielding a DB-API connection
        raise NotImplementedError

    def _execute(self, sql: str, params: tuple = ()) -> tuple[int, list[tuple]]:
        """Run one statement in its own transaction: (rows affected, rows returned)."""
        sql = sql.replace("?", self.placeholder)
        with self._connection() as db:
            cursor = db.execute(sql, params)
            rows = cursor.fetchall() if cursor.description else []
            return cursor.rowcount, rows

    def close(self) -> None:
        pass

    def ping(self) -> None:
        """Raise StoreError unless the store answers."""
        self._execute("SELECT count(*) FROM serve_submissions WHERE id = ?", ("",))

    def claim(self, client: str, key: str | None, body_sha256: str,
              submission_id: str | None = None) -> KeyClaim:
        """Start a submission (id ``submission_id`` or a new one) owned by this store's
        process; with a key already claimed, return the holder instead."""
        new_id = submission_id or uuid.uuid4().hex
        inserted, _ = self._execute(
            f"INSERT INTO serve_submissions ({_COLUMNS}) VALUES (?,?,?,?,?,'pending',NULL,NULL,"
            "NULL,?,?) ON CONFLICT (client, idem_key) DO NOTHING",
            (new_id, client, key, body_sha256, _moment(), self.owner, _moment(self.lease)))
        if inserted == 1:
            found = self.get(client, new_id)
            assert found is not None
            return KeyClaim(found, True)
        holder = self.by_key(client, key or "")
        if holder is None:  # the holder gave up in between: try again
            return self.claim(client, key, body_sha256, new_id)
        return KeyClaim(holder, False)

    def renew(self, submission_ids: Collection[str]) -> None:
        """Extend the lease of these pending submissions of ours (the owner's heartbeat)."""
        if not submission_ids:
            return
        marks = ",".join("?" * len(submission_ids))
        self._execute(f"UPDATE serve_submissions SET lease_until = ? WHERE state = 'pending' "
                      f"AND owner = ? AND id IN ({marks})",
                      (_moment(self.lease), self.owner, *submission_ids))

    def finish(self, submission_id: str, status: int, answer: dict, folder: str | None) -> None:
        """Store a submission's answer; SubmissionLost if the row is no longer ours."""
        done, _ = self._execute(
            "UPDATE serve_submissions SET state = 'done', status = ?, answer = ?, folder = ?, "
            "lease_until = NULL WHERE id = ? AND state = 'pending' AND owner = ?",
            (status, json.dumps(answer), folder, submission_id, self.owner))
        if done != 1:
            raise SubmissionLost(f"submission {submission_id} was taken over by another "
                                 "request after its lease ran out")

    def abandon(self, submission_id: str) -> None:
        """Drop a submission that could not be scrubbed, so a retry can claim its key."""
        self._execute("DELETE FROM serve_submissions WHERE id = ? AND state = 'pending'",
                      (submission_id,))

    def take_over(self, holder: Submission, abandoned: bool = False) -> bool:
        """Delete ``holder`` if nobody will finish it (``Submission.orphaned``): deleted?

        ``abandoned``: its owner (this process) knows it gave it up, though
        it could not delete it then (the store was full or down). The
        ``DELETE`` repeats the test in SQL, so of several requests that found
        the same orphan exactly one deletes it, and an owner that renewed its
        lease in the meantime keeps it.
        """
        if not (abandoned or holder.orphaned()):
            return False
        owner = Owner.parse(holder.owner)
        dead = holder.owner if abandoned or (owner is not None and owner.known_dead()) else None
        deleted, _ = self._execute(
            "DELETE FROM serve_submissions WHERE id = ? AND state = 'pending' AND (owner = ? "
            "OR lease_until < ? OR (lease_until IS NULL AND created < ?))",
            (holder.id, dead, _moment(), _moment(-_LEGACY_LEASE)))
        return deleted == 1

    def orphans(self) -> list[Submission]:
        """Pending submissions nobody will finish (their worker died)."""
        _, rows = self._execute(f"SELECT {_COLUMNS} FROM serve_submissions "
                                "WHERE state = 'pending'")
        return [found for found in map(_row, rows) if found.orphaned()]

    def by_id(self, submission_id: str) -> Submission | None:
        """Any client's submission by its id (for the service itself, never for a client)."""
        _, rows = self._execute(f"SELECT {_COLUMNS} FROM serve_submissions WHERE id = ?",
                                (submission_id,))
        return _row(rows[0]) if rows else None

    def get(self, client: str, submission_id: str) -> Submission | None:
        _, rows = self._execute(f"SELECT {_COLUMNS} FROM serve_submissions WHERE id = ? "
                                "AND client = ?", (submission_id, client))
        return _row(rows[0]) if rows else None

    def by_key(self, client: str, key: str) -> Submission | None:
        _, rows = self._execute(f"SELECT {_COLUMNS} FROM serve_submissions WHERE client = ? "
                                "AND idem_key = ?", (client, key))
        return _row(rows[0]) if rows else None

    def page(self, client: str, limit: int, before: Submission | None = None
             ) -> list[Submission]:
        """A client's submissions, newest first: ``limit`` of them, those after ``before``
        in that order (keyset paging: a page stays right while new ones arrive)."""
        where, params = "client = ?", [client]
        if before is not None:
            where += " AND (created < ? OR (created = ? AND id < ?))"
            params += [before.created, before.created, before.id]
        _, rows = self._execute(f"SELECT {_COLUMNS} FROM serve_submissions WHERE {where} "
                                "ORDER BY created DESC, id DESC LIMIT ?",
                                (*params, limit))
        return [_row(row) for row in rows]

    def expired(self, days: int) -> list[Submission]:
        """Finished submissions older than ``days`` days."""
        _, rows = self._execute(f"SELECT {_COLUMNS} FROM serve_submissions WHERE created < ? "
                                "AND state = 'done'", (_moment(-timedelta(days=days)),))
        return [_row(row) for row in rows]

    def remove(self, submission_id: str) -> None:
        self._execute("DELETE FROM serve_submissions WHERE id = ?", (submission_id,))


class SqliteSubmissions(SubmissionStore):
    """The store in a SQLite file (WAL), owner-only; one connection per thread."""

    def __init__(self, path: str | Path, owner: Owner | None = None, lease: float = 30.0):
        super().__init__(owner, lease)
        self.path = Path(path)
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not self.path.exists():
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
        self._local = threading.local()
        try:
            with self._connection() as db:
                db.execute("PRAGMA journal_mode = WAL")
                db.execute("BEGIN IMMEDIATE")  # workers starting at once: one migrates
                try:
                    db.execute(_SCHEMA)
                    have = {row[1] for row in db.execute("PRAGMA table_info(serve_submissions)")}
                    for name in _ADDED:
                        if name not in have:
                            db.execute(f"ALTER TABLE serve_submissions ADD COLUMN {name} TEXT")
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
        except StoreError as exc:
            cause = exc.__cause__ or exc
            raise StoreError(f"{self.path} is not a usable submission store ({cause})") from None

    def _execute(self, sql: str, params: tuple = ()) -> tuple[int, list[tuple]]:
        """A write waits its turn on a flock of ``<store>.writers`` (a read never waits in
        WAL): SQLite's busy handler sleeps up to 100 ms a poll, so under load a writer
        slept through the moments the store was free (as the ledger's did, issue 29)."""
        if sql.lstrip()[:6].upper() == "SELECT":
            return super()._execute(sql, params)
        fd = self._writers()
        if fd is None:
            return super()._execute(sql, params)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            return super()._execute(sql, params)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def _writers(self) -> int | None:
        """This thread's descriptor of the writers' file (a flock is per open file, so
        threads of one process queue only on descriptors of their own); None: no queue."""
        fd = getattr(self._local, "writers", None)
        if fd is None:
            try:
                fd = os.open(f"{self.path}.writers", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW,
                             0o600)
            except OSError:
                return None
            self._local.writers = fd
        return int(fd)

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                                 check_same_thread=False)
            db.execute("PRAGMA busy_timeout = 30000")
            self._local.db = db
        try:
            yield db
        except sqlite3.Error as exc:
            raise StoreError(f"the submission store failed: {exc}") from exc


class PostgresSubmissions(SubmissionStore):
    """The store in a PostgreSQL database (psycopg 3); a connection per operation."""

    placeholder = "%s"

    def __init__(self, url: str, owner: Owner | None = None, lease: float = 30.0):
        import psycopg

        super().__init__(owner, lease)
        self.url = url
        self._psycopg = psycopg
        try:
            with psycopg.connect(url, autocommit=False, connect_timeout=10) as db:
                # several workers start at once: one creates the table, the others wait
                db.execute("SELECT pg_advisory_xact_lock(hashtext('scrubber-serve-schema'))")
                db.execute(_SCHEMA)
                have = {row[0] for row in db.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = "
                    "'serve_submissions' AND table_schema = current_schema()")}
                for name in _ADDED:  # ALTER locks the table: only when a column is missing
                    if name not in have:
                        db.execute(f"ALTER TABLE serve_submissions ADD COLUMN {name} TEXT")
                db.commit()
        except psycopg.Error as exc:
            raise StoreError(f"the submission store at {safe_url(url)} cannot be used: "
                             f"{exc}") from None

    @contextmanager
    def _connection(self) -> Iterator[Any]:
        psycopg = self._psycopg
        try:
            with psycopg.connect(self.url, autocommit=True, connect_timeout=10) as db:
                yield db
        except psycopg.Error as exc:
            raise StoreError(f"the submission store failed: {exc}") from None


def open_submissions(target: str, owner: Owner | None = None, lease: float = 30.0
                     ) -> SubmissionStore:
    """The store at ``target``: a ``postgresql://`` URL, else a SQLite file path.

    ``owner`` (default: this process) is whose claims it makes; ``lease`` the
    seconds a claim holds without renewal.
    """
    if target.startswith(("postgresql://", "postgres://")):
        return PostgresSubmissions(target, owner, lease)
    return SqliteSubmissions(target, owner, lease)


class LeaseKeeper:
    """Renew the leases of the submissions this process is scrubbing, three times a lease.

    An id is added before its key is claimed and discarded once its
    submission is finished or abandoned, so a pending row of this process
    whose id is not here was given up (``SubmissionStore.take_over``). One
    daemon thread per store, started with the first id: a worker that dies
    stops renewing, and its rows are orphans within a lease.
    """

    def __init__(self, store: SubmissionStore):
        self._store = store
        self._every = store.lease.total_seconds() / 3
        self._held: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __contains__(self, submission_id: object) -> bool:
        with self._lock:
            return submission_id in self._held

    def add(self, submission_id: str) -> None:
        with self._lock:
            self._held.add(submission_id)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="scrubber-leases",
                                                daemon=True)
                self._thread.start()

    def discard(self, submission_id: str) -> None:
        with self._lock:
            self._held.discard(submission_id)

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            with self._lock:
                held = list(self._held)
            try:
                self._store.renew(held)
            except StoreError as exc:  # the next beat tries again; the lease has two more
                log.warning("leases not renewed: %s", exc)

    def close(self) -> None:
        self._stop.set()
