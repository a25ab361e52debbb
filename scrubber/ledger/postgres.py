"""The shared ledger: PostgreSQL (psycopg 3), for many intake workers on many hosts.

Selected by URL (``postgresql://user@host/db``). The scrubber creates and
migrates its tables itself, under an advisory lock so that workers starting
together migrate once. A decision that records takes a transaction-scoped
advisory lock per patient-day key (and per claim identity), all in sorted
order, so two workers touching the same patient and day take turns and
never deadlock; workers on other patients do not wait. The HMAC key never
sits in the database: it comes from $SCRUBBER_LEDGER_KEY or a key file.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from scrubber.ledger import migrations
from scrubber.ledger.keys import LedgerError
from scrubber.ledger.sqlbase import CLAIM_COLUMNS, SqlStore
from scrubber.ledger.store import PreparedClaim

_MIGRATION_LOCK = 0x5C12_B0E5  # advisory lock id held while the schema is migrated


def safe_url(url: str) -> str:
    """The URL without its password, fit for messages and logs.

    Parsed, not matched: a password holding "@" (the user info ends at the
    last one) is dropped whole, never shown in part.
    """
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}@{host}" if user else host))


def _psycopg_error() -> type[Exception]:
    import psycopg

    return psycopg.Error


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def lock_id(key: str) -> int:
    """A signed 64-bit advisory lock id for a patient-day or claim key."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big",
                          signed=True)


class PostgresStore(SqlStore):
    """The ledger in a PostgreSQL database (open it with scrubber.ledger.open_store)."""

    kind = "postgresql"

    def __init__(self, location: str, key: bytes, connection: Any):
        super().__init__(location, key)
        self._db = connection
        self._error: type[Exception] = _psycopg_error()
        # a recording's lease: a session advisory lock of this connection, which the
        # server lets go when the connection ends, however it ends (a cut included)
        self._leases: set[str] = set()

    @classmethod
    def open(cls, url: str, *, key: bytes | str | os.PathLike | None = None
             ) -> PostgresStore:
        try:
            import psycopg
        except ImportError:
            raise LedgerError("a PostgreSQL ledger needs psycopg 3: "
                              "python3 -m pip install 'psycopg[binary]>=3'") from None
        try:
            db = psycopg.connect(url, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            raise LedgerError(f"the ledger {safe_url(url)} cannot be reached: "
                              f"{_first_line(exc)}") from None
        store = cls(safe_url(url), b"", db)
        try:
            store._notice_dead_clients()
            store._migrate()
            store._adopt_key(key, None)
            store.sweep()  # what a killed run or a cut connection left held goes now
        except BaseException:
            store.close()
            raise
        return store

    def _notice_dead_clients(self) -> None:
        """Have the server check this connection's client every second while it runs a
        statement: a process killed mid-statement then loses its leases (and a recording's
        held claims go to the next sweep) within a second, not when the statement ends.
        A server before PostgreSQL 14 lacks the setting; it still lets go, only later."""
        try:
            self._db.execute("SET client_connection_check_interval = 1000")
        except self._error:
            pass

    def _migrate(self) -> None:
        with self._transaction():
            self._run("SELECT pg_advisory_xact_lock(?)", (_MIGRATION_LOCK,))
            self._run("CREATE TABLE IF NOT EXISTS scrubber_schema (version INTEGER NOT NULL)")
            row = self._run("SELECT version FROM scrubber_schema").fetchone()
            current = row[0] if row else 0
            version = migrations.apply(migrations.POSTGRES_STEPS, self._run, current)
            if row is None:
                self._run("INSERT INTO scrubber_schema (version) VALUES (?)", (version,))
            elif version != current:
                self._run("UPDATE scrubber_schema SET version = ?", (version,))

    def _run(self, sql: str, params: Sequence[Any] = ()) -> Any:
        try:
            return self._db.execute(sql.replace("?", "%s"), tuple(params))
        except self._error as exc:  # the server went away, a statement timed out ...
            raise LedgerError(f"the ledger {self.location} failed: {_first_line(exc)}"
                              ) from None

    def _run_many(self, sql: str, rows: list[tuple]) -> None:
        try:
            with self._db.cursor() as cursor:
                cursor.executemany(sql.replace("?", "%s"), rows)
        except self._error as exc:
            raise LedgerError(f"the ledger {self.location} failed: {_first_line(exc)}"
                              ) from None

    def _in(self, types: tuple[str, ...], rows: Sequence[tuple]) -> tuple[str, list]:
        """Arrays, one per column: one query text whatever the count, so it is prepared once."""
        columns = [[row[i] for row in rows] for i in range(len(types))]
        return ("(SELECT * FROM unnest(" + ", ".join(f"?::{t}[]" for t in types) + "))",
                columns)

    def _insert_many(self, claims: list[tuple[str, PreparedClaim]], recorded_at: str,
                     recording: str | None = None) -> None:
        """New claims and their lines in one statement, arrays in: one round trip."""
        claim_rows, params = self._in(
            ("text", "text", "text", "text", "text", "text", "text", "bytea", "integer", "text",
             "text"),
            [(*claim.key, claim.frequency, submission, recorded_at, claim.content,
              claim.patient, len(claim.rows), "sent" if recording is None else "held",
              recording) for submission, claim in claims])
        line_rows, line_params = self._in(
            ("integer", "text", "text", "text", "bytea", "text", "text", "text", "text",
             "integer"),
            [(order, *line) for order, line in enumerate(
                (*claim.key, claim.patient, *row) for _, claim in claims for row in claim.rows)])
        self._run(
            f"WITH c AS (INSERT INTO claims ({CLAIM_COLUMNS}, patient, line_count, status, "
            "recording) "
            f"SELECT * FROM {claim_rows} AS v RETURNING id, npi, payer, claim_id) "
            "INSERT INTO lines (claim, patient, service_date, procedure, modifiers, units, "
            f"line_number) SELECT c.id, v.pt, v.d, v.p, v.m, v.u, v.n FROM {line_rows} "
            "AS v(o, npi, payer, cid, pt, d, p, m, u, n) JOIN c ON c.npi = v.npi AND "
            "c.payer = v.payer AND c.claim_id = v.cid ORDER BY v.o", params + line_params)

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        try:
            with self._db.transaction():
                yield
        except self._error as exc:  # at COMMIT: the server went away, say
            raise LedgerError(f"the ledger {self.location} failed: {_first_line(exc)}"
                              ) from None

    def _lock(self, keys: list[str]) -> None:
        ids = sorted({lock_id(k) for k in keys})
        if ids:
            self._run("SELECT pg_advisory_xact_lock(k) FROM unnest(?::bigint[]) AS k "
                      "ORDER BY k", (ids,))

    def _lease(self, recording: str) -> None:
        self._run("SELECT pg_advisory_lock(?)", (lock_id("recording\x1f" + recording),))
        self._leases.add(recording)

    def _unlease(self, recording: str) -> None:
        if recording in self._leases:
            self._leases.discard(recording)
            try:
                self._run("SELECT pg_advisory_unlock(?)",
                          (lock_id("recording\x1f" + recording),))
            except LedgerError:
                pass  # the connection is gone, and the lock with it

    def _take_lease(self, recording: str) -> bool:
        (free,) = self._run("SELECT pg_try_advisory_lock(?)",
                            (lock_id("recording\x1f" + recording),)).fetchone()
        if free:
            self._leases.add(recording)
        return bool(free)

    def close(self) -> None:
        for recording, state in list(self._mine.items()):
            if state == "open":  # never committed: its run failed before its end
                try:
                    self.discard_recording(recording)
                except LedgerError:
                    pass
        self._db.close()
