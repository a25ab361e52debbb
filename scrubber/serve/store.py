"""Submissions and idempotency keys, shared by every worker process of the service.

One table: a submission's id, its client, the client's idempotency key
(unique per client), the SHA-256 of the body, when it came, whether it is
done, and the answer it got (status and JSON body) with the folder of its
reports. Claiming a key is one ``INSERT ... ON CONFLICT DO NOTHING``: exactly
one request wins it and scrubs; any other with that key waits for the
winner's answer and returns it, so nothing is scrubbed or recorded twice,
whichever worker each request reached.

Backends: a SQLite file (WAL: several local workers share it) or a
PostgreSQL database by ``postgresql://`` URL (psycopg 3), chosen by
``open_store``. The service creates the table itself.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from scrubber.ledger.postgres import safe_url

_COLUMNS = "id, client, idem_key, body_sha256, created, state, status, answer, folder"
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
    UNIQUE (client, idem_key)
)
"""


class StoreError(Exception):
    """The submission store cannot be reached or used."""


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

    @property
    def done(self) -> bool:
        return self.state == "done"


@dataclass(frozen=True, slots=True)
class Claim:
    """The outcome of claiming an idempotency key: ours to scrub, or someone else's."""

    submission: Submission
    won: bool


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _ago(span: timedelta) -> str:
    """The moment ``span`` ago, written as ``created`` is: ISO strings compare as times."""
    return (datetime.now(UTC) - span).isoformat(timespec="microseconds")


def _row(row: tuple) -> Submission:
    values = list(row)
    values[7] = json.loads(values[7]) if values[7] else None
    return Submission(*values)


class SubmissionStore:
    """The store's operations over a DB-API connection factory (SQL written with ``?``)."""

    placeholder = "?"

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

    def claim(self, client: str, key: str | None, body_sha256: str) -> Claim:
        """Start a submission; with a key already claimed, return the holder instead."""
        new_id = uuid.uuid4().hex
        inserted, _ = self._execute(
            f"INSERT INTO serve_submissions ({_COLUMNS}) VALUES (?,?,?,?,?,'pending',NULL,NULL,"
            "NULL) ON CONFLICT (client, idem_key) DO NOTHING",
            (new_id, client, key, body_sha256, _now()))
        if inserted == 1:
            found = self.get(client, new_id)
            assert found is not None
            return Claim(found, True)
        holder = self.by_key(client, key or "")
        if holder is None:  # the holder gave up in between: try again
            return self.claim(client, key, body_sha256)
        return Claim(holder, False)

    def finish(self, submission_id: str, status: int, answer: dict, folder: str | None) -> None:
        self._execute("UPDATE serve_submissions SET state = 'done', status = ?, answer = ?, "
                      "folder = ? WHERE id = ?",
                      (status, json.dumps(answer), folder, submission_id))

    def abandon(self, submission_id: str) -> None:
        """Drop a submission that could not be scrubbed, so a retry can claim its key."""
        self._execute("DELETE FROM serve_submissions WHERE id = ? AND state = 'pending'",
                      (submission_id,))

    def drop_stale(self, submission_id: str, seconds: float) -> bool:
        """Drop a submission pending for more than ``seconds`` (its worker died): dropped?"""
        cutoff = _ago(timedelta(seconds=seconds))
        dropped, _ = self._execute("DELETE FROM serve_submissions WHERE id = ? AND state = "
                                   "'pending' AND created < ?", (submission_id, cutoff))
        return dropped == 1

    def get(self, client: str, submission_id: str) -> Submission | None:
        _, rows = self._execute(f"SELECT {_COLUMNS} FROM serve_submissions WHERE id = ? "
                                "AND client = ?", (submission_id, client))
        return _row(rows[0]) if rows else None

    def by_key(self, client: str, key: str) -> Submission | None:
        _, rows = self._execute(f"SELECT {_COLUMNS} FROM serve_submissions WHERE client = ? "
                                "AND idem_key = ?", (client, key))
        return _row(rows[0]) if rows else None

    def expired(self, days: int) -> list[Submission]:
        """Finished submissions older than ``days`` days."""
        before = _ago(timedelta(days=days))
        _, rows = self._execute(f"SELECT {_COLUMNS} FROM serve_submissions WHERE created < ? "
                                "AND state = 'done'", (before,))
        return [_row(row) for row in rows]

    def remove(self, submission_id: str) -> None:
        self._execute("DELETE FROM serve_submissions WHERE id = ?", (submission_id,))


class SqliteStore(SubmissionStore):
    """The store in a SQLite file (WAL), owner-only; one connection per thread."""

    def __init__(self, path: str | Path):
        import os

        self.path = Path(path)
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not self.path.exists():
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
        self._local = threading.local()
        try:
            with self._connection() as db:
                db.execute("PRAGMA journal_mode = WAL")
                db.execute(_SCHEMA)
        except StoreError as exc:
            cause = exc.__cause__ or exc
            raise StoreError(f"{self.path} is not a usable submission store ({cause})") from None

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


class PostgresStore(SubmissionStore):
    """The store in a PostgreSQL database (psycopg 3); a connection per operation."""

    placeholder = "%s"

    def __init__(self, url: str):
        import psycopg

        self.url = url
        self._psycopg = psycopg
        try:
            with psycopg.connect(url, autocommit=False, connect_timeout=10) as db:
                # several workers start at once: one creates the table, the others wait
                db.execute("SELECT pg_advisory_xact_lock(hashtext('scrubber-serve-schema'))")
                db.execute(_SCHEMA)
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


def open_store(target: str) -> SubmissionStore:
    """The store at ``target``: a ``postgresql://`` URL, else a SQLite file path."""
    if target.startswith(("postgresql://", "postgres://")):
        return PostgresStore(target)
    return SqliteStore(target)
