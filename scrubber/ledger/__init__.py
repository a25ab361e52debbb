"""The claim-history ledger: accepted claims' service lines, across submissions.

96523 must be the sole service of a patient on a day, and the other service
often comes in another submission: a port flush sent this morning, an office
visit this afternoon. The ledger remembers what was accepted so the afternoon
batch is checked against the morning's.

Storage is SQLite (WAL, so a CLI run and watchers can share it). Patients are
stored only as an HMAC of their identity under a per-ledger secret kept beside
the database (owner-only); names and member ids never reach the file. Billing
NPI and service date are kept in clear: they identify providers and days, not
people, and they are what the look-up is indexed on.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import sqlite3
import time
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Iterable

from scrubber.model.claims import CHANGE_FREQUENCIES
from scrubber.model.keys import patient_identity
from scrubber.paths import state_dir
from scrubber.rules.context import service_date
from scrubber.rules.findings import ScrubbedClaim

SCHEMA_VERSION = 1
_SECRET_BYTES = 32
_BATCH = 1000
_RETRIES = 20

_SCHEMA = """
CREATE TABLE IF NOT EXISTS lines (
    patient BLOB NOT NULL,          -- HMAC of the patient identity
    npi TEXT NOT NULL,              -- billing provider
    service_date TEXT NOT NULL,     -- ISO date
    procedure TEXT NOT NULL,
    modifiers TEXT NOT NULL,        -- colon-joined
    units TEXT NOT NULL,
    claim_id TEXT NOT NULL,         -- CLM01
    line_number INTEGER,            -- LX01
    submission TEXT NOT NULL,       -- ISA sender : ISA13
    recorded_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS lines_day ON lines (patient, service_date);
CREATE INDEX IF NOT EXISTS lines_claim ON lines (npi, claim_id);
CREATE INDEX IF NOT EXISTS lines_submission ON lines (submission);
"""


class LedgerError(Exception):
    """The ledger cannot be used: not a ledger, corrupt, or its secret is missing."""


@dataclass(frozen=True, slots=True)
class LedgerLine:
    """A service line of a claim accepted earlier."""

    claim_id: str
    line_number: int | None
    procedure: str
    modifiers: tuple[str, ...]
    units: Decimal | None
    service_date: date
    submission: str


@dataclass(frozen=True, slots=True)
class RecordStats:
    """What one record() call did."""

    recorded_claims: int
    recorded_lines: int
    removed_claims: int  # replaced (CLM05-3 = 7) or voided (8) earlier claims
    skipped_rejected: int
    skipped_undated: int  # lines with no single date of service


@dataclass(frozen=True, slots=True)
class PreparedClaim:
    """A scrubbed claim reduced to its ledger rows (no segments, no names)."""

    rejected: bool
    npi: str
    claim_id: str
    frequency: str
    rows: tuple[tuple, ...]
    undated: int


def default_ledger_path() -> Path:
    """The per-user ledger: $XDG_STATE_HOME/scrubber/ledger.sqlite (~/.local/state/...)."""
    return state_dir() / "ledger.sqlite"


def _secret(path: Path) -> bytes:
    """The ledger's HMAC key: created once, owner-only; two racing processes agree on it."""
    key_path = path.with_name(path.name + ".key")
    try:
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "wb") as out:
            out.write(os.urandom(_SECRET_BYTES))
            out.flush()
            os.fsync(out.fileno())
    for _ in range(50):  # the creator may still be writing it
        try:
            secret = key_path.read_bytes()
        except OSError as exc:
            raise LedgerError(f"the ledger secret {key_path} cannot be read ({exc.strerror}); "
                              "without it earlier patients cannot be matched") from None
        if len(secret) == _SECRET_BYTES:
            return secret
        time.sleep(0.01)
    raise LedgerError(f"the ledger secret {key_path} is damaged ({len(secret)} bytes, want "
                      f"{_SECRET_BYTES}); move the ledger aside to start a new one")


class Ledger:
    """Accepted claims' service lines, keyed by patient (hashed), provider and date."""

    def __init__(self, path: Path, connection: sqlite3.Connection, secret: bytes):
        self.path = path
        self._db = connection
        self._secret = secret

    @classmethod
    def open(cls, path: str | Path | None = None) -> "Ledger":
        """Open (creating if needed) the ledger at ``path`` (None: the per-user default)."""
        path = Path(path) if path is not None else default_ledger_path()
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        secret = _secret(path)
        try:
            db = sqlite3.connect(path, timeout=30, isolation_level=None)
            db.execute("PRAGMA busy_timeout = 30000")
            db.execute("PRAGMA journal_mode = WAL")
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:
                _retry(lambda: _create(db))
            elif version != SCHEMA_VERSION:
                raise LedgerError(f"{path} is a ledger of schema version {version}; this "
                                  f"scrubber reads version {SCHEMA_VERSION}")
            db.execute("SELECT 1 FROM lines LIMIT 1")
        except sqlite3.DatabaseError as exc:
            raise LedgerError(f"{path} is not a usable ledger ({exc}); move it aside to "
                              "start a new one") from None
        for name in (path, Path(str(path) + "-wal"), Path(str(path) + "-shm")):
            if name.exists():
                os.chmod(name, 0o600)
        return cls(path, db, secret)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "Ledger":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _key(self, identity: tuple[str, ...]) -> bytes:
        return hmac.new(self._secret, "\x1f".join(identity).encode("utf-8"),
                        hashlib.sha256).digest()

    def lines_for(self, identity: tuple[str, str, str, str, str], service_date: date, *,
                  exclude_submission: str | None = None) -> list[LedgerLine]:
        """Lines of accepted claims for this patient (and billing NPI) on ``service_date``."""
        rows = self._db.execute(
            "SELECT claim_id, line_number, procedure, modifiers, units, service_date, "
            "submission FROM lines WHERE patient = ? AND npi = ? AND service_date = ? "
            "AND submission IS NOT ? ORDER BY rowid",
            (self._key(identity), identity[0], service_date.isoformat(), exclude_submission))
        return [LedgerLine(claim_id, line_number, procedure,
                           tuple(m for m in modifiers.split(":") if m), _units(units),
                           date.fromisoformat(day), submission)
                for claim_id, line_number, procedure, modifiers, units, day, submission in rows]

    def prepare(self, scrubbed: ScrubbedClaim) -> PreparedClaim:
        """What record() needs of a claim, small enough to hold for a whole submission."""
        record = scrubbed.record
        claim = record.claim
        identity = patient_identity(record)
        key = self._key(identity)
        rows, undated = [], 0
        for line in claim.lines:
            day = service_date(record, line)
            if day is None:
                undated += 1
                continue
            rows.append((key, identity[0], day.isoformat(), line.procedure,
                         ":".join(line.modifiers), line.units_text, claim.id, line.number))
        return PreparedClaim(scrubbed.rejected, identity[0], claim.id, claim.frequency,
                             tuple(rows), undated)

    def record(self, submission: str,
               claims: Iterable[ScrubbedClaim | PreparedClaim]) -> RecordStats:
        """Record a submission's accepted claims, in one transaction.

        Recording the same submission again first removes its own entries, so a
        rerun never conflicts with itself nor counts twice. A replacement
        (CLM05-3 = 7) takes the place of the earlier claim with that id from the
        same billing provider; a void (8) removes it.
        """
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        # A list can be written again if the database was locked; any other iterable is
        # consumed once, inside the transaction, so that a large batch is never held.
        replayable = isinstance(claims, list)
        consumed = [False]
        stats = [0, 0, 0, 0, 0]

        def write() -> None:
            stats[:] = [0, 0, 0, 0, 0]
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute("DELETE FROM lines WHERE submission = ?", (submission,))
                batch: list[tuple] = []
                if consumed[0] and not replayable:
                    raise LedgerError("the ledger was locked in the middle of recording "
                                      f"submission {submission}; scrub the file again")
                consumed[0] = True
                for item in claims:
                    claim = item if isinstance(item, PreparedClaim) else self.prepare(item)
                    if claim.rejected:
                        stats[3] += 1
                        continue
                    if claim.frequency in CHANGE_FREQUENCIES:
                        removed = db.execute("DELETE FROM lines WHERE npi = ? AND claim_id = ?",
                                             (claim.npi, claim.claim_id)).rowcount
                        stats[2] += 1 if removed else 0
                        if claim.frequency == "8":
                            continue
                    stats[0] += 1
                    stats[1] += len(claim.rows)
                    stats[4] += claim.undated
                    batch.extend(row + (submission, now) for row in claim.rows)
                    if len(batch) >= _BATCH:
                        _insert(db, batch)
                        batch = []
                _insert(db, batch)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

        _retry(write)
        return RecordStats(*stats)


def _insert(db: sqlite3.Connection, batch: list[tuple]) -> None:
    if batch:
        db.executemany("INSERT INTO lines VALUES (?,?,?,?,?,?,?,?,?,?)", batch)


def _create(db: sqlite3.Connection) -> None:
    db.execute("BEGIN IMMEDIATE")
    try:
        if db.execute("PRAGMA user_version").fetchone()[0] == 0:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def _retry(action) -> None:
    """Run a write, waiting out another writer's lock (busy_timeout covers most waits)."""
    for attempt in range(_RETRIES):
        try:
            action()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise LedgerError(f"the ledger could not be written: {exc}") from None
            time.sleep(0.05 * (attempt + 1))
    raise LedgerError("the ledger stayed locked by another process; try again")


def _units(text: str) -> Decimal | None:
    try:
        return Decimal(text) if text else None
    except InvalidOperation:
        return None
