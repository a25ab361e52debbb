"""What both SQL stores share: the schema, recording, reading, retention and export.

A subclass supplies the connection and its dialect: how a statement runs, how
a write transaction begins, how patient-day keys are locked inside it, and how
the schema version is kept (``migrations``).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import socket
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from scrubber.ledger.keys import LedgerError, key_check, resolve_key
from scrubber.ledger.migrations import LEGACY_HOLD, SCHEMA_VERSION
from scrubber.ledger.store import (
    ClaimEntry,
    LedgerLine,
    LedgerStore,
    PatientIdentity,
    PreparedClaim,
    RecordingInfo,
    RecordStats,
    SubmissionInfo,
)
from scrubber.model.claims import ClaimRecord
from scrubber.model.keys import patient_identity
from scrubber.rules.context import ClaimKey, SentClaim, claim_content, claim_key, service_date
from scrubber.rules.findings import ScrubbedClaim

_CHUNK = 500  # claims per transaction when recording or importing a batch
_PREFETCH = 200  # keys per prefetch query
_SWEEP_EVERY = 10.0  # seconds between looks for dead recordings while deciding
CLAIM_COLUMNS = "npi, payer, claim_id, frequency, submission, recorded_at, content"
OPEN, PREPARED = "open", "prepared"  # a recording's states (committed ones are gone)

log = logging.getLogger(__name__)


def owner() -> str:
    """Who records, for `scrub ledger list`: host and process (no path, no user)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def now_utc() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class SqlStore:
    """The ledger over one SQL connection; see scrubber.ledger.store.LedgerStore."""

    kind = "sql"
    location: str
    # Cleared only by the concurrency test, to show that it fails without the lock.
    _serialize = True
    # Cleared only by the fault drills, to show that they fail when a recording's claims
    # are written as sent at once instead of held until the recording commits.
    _hold = True

    def __init__(self, location: str, key: bytes):
        self.location = location
        self._key = key
        self._mine: dict[str, str] = {}  # the recordings this store began: id -> state
        self._swept = 0.0  # monotonic time of the last look for dead recordings

    # -- dialect, supplied by the subclass -------------------------------------------------

    def _run(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Execute ``sql`` (``?`` placeholders) and return a cursor."""
        raise NotImplementedError

    def _run_many(self, sql: str, rows: list[tuple]) -> None:
        raise NotImplementedError

    def _transaction(self) -> AbstractContextManager[None]:
        """A write transaction: committed when the block ends, rolled back on an error."""
        raise NotImplementedError

    def _lock(self, keys: list[str]) -> None:
        """Inside a transaction, hold ``keys`` (sorted) until it ends."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def _lease(self, recording: str) -> None:
        """Hold ``recording``'s lease for as long as this store lives (or ``_unlease``): a
        process that dies, or loses its connection, lets it go, and with it the recording."""
        raise NotImplementedError

    def _unlease(self, recording: str) -> None:
        raise NotImplementedError

    def _take_lease(self, recording: str) -> bool:
        """Take the lease of another store's recording if nobody holds it (its owner is
        gone): True then, and the caller ends it with ``_unlease``; False: it is alive."""
        raise NotImplementedError

    def _in(self, types: tuple[str, ...], rows: Sequence[tuple]) -> tuple[str, list]:
        """A set of rows for ``(a, b) IN <set>`` and its parameters (``types``: SQL types)."""
        marks = "(" + ", ".join("?" * len(types)) + ")"
        return f"(VALUES {', '.join([marks] * len(rows))})", [v for row in rows for v in row]

    # -- opening: the key and its check value ---------------------------------------------

    def _adopt_key(self, key: bytes | str | Any, default_file: Any) -> None:
        """Take the key, refusing one that is not the key this ledger was made with."""
        stored = self._meta("key_check")
        fresh = stored is None and self._count("claims") == 0
        self._key = resolve_key(key, default_file, may_create=fresh)
        check = key_check(self._key)
        if stored is None:
            self._run("INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT (name) "
                      "DO NOTHING", ("key_check", check))  # a racing first opener may win
            stored = self._meta("key_check")
        if stored != check:
            raise LedgerError(f"the ledger key does not match the ledger {self.location}: "
                              "it was made with another key, so its patients could not be "
                              "matched; give the site's key ($SCRUBBER_LEDGER_KEY or "
                              "$SCRUBBER_LEDGER_KEY_FILE)")

    def _meta(self, name: str) -> str | None:
        row = self._run("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None

    def _count(self, table: str) -> int:
        return int(self._run(f"SELECT COUNT(*) FROM {table}").fetchone()[0])

    def __enter__(self) -> LedgerStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- keys ------------------------------------------------------------------------------

    def patient_hash(self, identity: PatientIdentity) -> bytes:
        return hmac.new(self._key, "\x1f".join(identity).encode("utf-8"),
                        hashlib.sha256).digest()

    def lock_keys(self, record: ClaimRecord) -> frozenset[str]:
        """The claim's patient-day keys and its identity: what its decision must hold."""
        patient = self.patient_hash(patient_identity(record)).hex()
        keys = {"claim\x1f" + "\x1f".join(claim_key(record))}
        for line in record.claim.lines:
            day = service_date(record, line)
            if day is not None:
                keys.add(f"day\x1f{patient}\x1f{day.isoformat()}")
        return frozenset(keys)

    @staticmethod
    def prepared_keys(claim: PreparedClaim) -> set[str]:
        """``lock_keys`` of a claim already prepared (``prepare``): the same keys, from its
        rows, without building the claim's lines or hashing its patient again."""
        keys = {"claim\x1f" + "\x1f".join(claim.key)}
        keys.update(f"day\x1f{claim.patient.hex()}\x1f{row[0]}" for row in claim.rows)
        return keys

    # -- reading ---------------------------------------------------------------------------

    def lines_for(self, identity: PatientIdentity, service_date: date, *,
                  exclude_submission: str | None = None) -> list[LedgerLine]:
        """Lines of recorded claims for this patient (and billing NPI) on ``service_date``."""
        rows = self._run(
            "SELECT c.claim_id, l.line_number, l.procedure, l.modifiers, l.units, "
            "l.service_date, c.submission, c.payer FROM lines l JOIN claims c ON c.id = l.claim "
            "WHERE l.patient = ? AND l.service_date = ? AND c.npi = ? AND c.submission <> ? "
            "ORDER BY c.id, l.id",
            (self.patient_hash(identity), service_date.isoformat(), identity[0],
             exclude_submission if exclude_submission is not None else "\x1f"))
        return [_line(row) for row in rows.fetchall()]

    def lines_between(self, identity: PatientIdentity, first: date, last: date, *,
                      exclude_submission: str | None = None) -> list[LedgerLine]:
        """``lines_for`` over the dates ``first`` to ``last`` (a global surgery period)."""
        rows = self._run(
            "SELECT c.claim_id, l.line_number, l.procedure, l.modifiers, l.units, "
            "l.service_date, c.submission, c.payer FROM lines l JOIN claims c ON c.id = l.claim "
            "WHERE l.patient = ? AND l.service_date BETWEEN ? AND ? AND c.npi = ? "
            "AND c.submission <> ? ORDER BY l.service_date, c.id, l.id",
            (self.patient_hash(identity), first.isoformat(), last.isoformat(), identity[0],
             exclude_submission if exclude_submission is not None else "\x1f"))
        return [_line(row) for row in rows.fetchall()]

    def sent_claim(self, key: ClaimKey) -> SentClaim | None:
        """The copy of the claim with this identity recorded as sent; failing that, the
        latest one a recording holds (being sent now, by this run or another: ``held``)."""
        rows = self._run(f"SELECT {CLAIM_COLUMNS}, status FROM claims WHERE "
                         "npi = ? AND payer = ? AND claim_id = ? ORDER BY id", key).fetchall()
        return _sent_copy(rows)

    def reader(self, keys: Iterable[str]) -> _Decision:
        """A read-only view that answers ``lines_for`` and ``sent_claim`` for ``keys``
        (``lock_keys``' of many claims) from a few batched queries, taking no lock, and
        anything else from the store: for a reader of many claims at once (a Spark
        partition), where one query per claim and date costs the round trips."""
        view = _Decision(self, locked=False)
        view.prefetch(sorted(set(keys)))
        return view

    # -- recording -------------------------------------------------------------------------

    def prepare(self, scrubbed: ScrubbedClaim) -> PreparedClaim:
        """What recording needs of a claim, small enough to hold for a whole submission."""
        record = scrubbed.record
        claim = record.claim
        npi, payer, claim_id = claim_key(record)
        rows, undated = [], 0
        for line in claim.lines:
            day = service_date(record, line)
            if day is None:
                undated += 1
                continue
            rows.append((day.isoformat(), line.procedure, ":".join(line.modifiers),
                         line.units_text, line.number))
        return PreparedClaim(scrubbed.rejected, npi, payer, claim_id, claim.frequency,
                             self.patient_hash(patient_identity(record)), tuple(rows), undated,
                             claim_content(record))

    @contextmanager
    def deciding(self, keys: Iterable[str], *, recording: str | None = None
                 ) -> Iterator[_Decision]:
        """A transaction holding ``keys``: read the day, decide, record, then commit.

        Two workers deciding on a shared patient-day key take turns, so the
        second one reads what the first recorded (see docs/ledger.md). With
        ``recording``, the claims recorded are held under it until it commits.
        """
        if recording is not None and time.monotonic() - self._swept > _SWEEP_EVERY:
            self.sweep()
        keys = sorted(set(keys))
        decision = _Decision(self, locked=self._serialize, recording=recording)
        if not self._serialize:  # the lost update the lock prevents: read, then write
            decision.prefetch(keys)
            yield decision
            with self._transaction():
                decision.flush()
            return
        with self._transaction():
            self._lock(keys)
            decision.prefetch(keys)
            yield decision
            decision.flush()

    def record(self, submission: str,
               claims: Iterable[ScrubbedClaim | PreparedClaim]) -> RecordStats:
        """Record the accepted claims of a submission, a few hundred per transaction.

        A claim takes the place of any recorded claim with the same identity
        (billing NPI, payer, CLM01): a rerun or resend never counts twice, a
        replacement (CLM05-3 = 7) replaces, a void (8) removes.
        """
        totals = [0, 0, 0, 0, 0]
        chunk: list[PreparedClaim] = []

        def flush() -> None:
            keys = set().union(*(self.prepared_keys(c) for c in chunk))
            with self.deciding(keys) as decision:
                for item in chunk:
                    decision.record(submission, item)
            for i, value in enumerate(decision.totals):
                totals[i] += value
            chunk.clear()

        for item in claims:
            chunk.append(item if isinstance(item, PreparedClaim) else self.prepare(item))
            if len(chunk) >= _CHUNK:
                flush()
        if chunk:
            flush()
        return RecordStats(*totals)

    def _write(self, submission: str, claim: PreparedClaim, recorded_at: str
               ) -> tuple[int, int]:
        """Put ``claim`` in place of its identity's sent copy: (claims removed, lines)."""
        removed = 0
        for (old,) in self._run("SELECT id FROM claims WHERE npi = ? AND payer = ? AND "
                                "claim_id = ? AND status = 'sent'", claim.key).fetchall():
            self._run("DELETE FROM lines WHERE claim = ?", (old,))
            self._run("DELETE FROM claims WHERE id = ?", (old,))
            removed += 1
        if claim.frequency == "8":
            return removed, 0
        self._insert(submission, claim, recorded_at)
        return removed, len(claim.rows)

    def _insert_many(self, claims: list[tuple[str, PreparedClaim]], recorded_at: str,
                     recording: str | None = None) -> None:
        """Insert new claims (none of them sent yet), held under ``recording`` when given;
        a dialect may batch them."""
        for submission, claim in claims:
            self._insert(submission, claim, recorded_at, recording)

    def _insert(self, submission: str, claim: PreparedClaim, recorded_at: str,
                recording: str | None = None) -> None:
        """Insert the claim row, then its lines (a dialect may do both in one statement)."""
        (new,) = self._run(
            f"INSERT INTO claims ({CLAIM_COLUMNS}, patient, line_count, status, recording) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (*claim.key, claim.frequency, submission, recorded_at, claim.content,
             claim.patient, len(claim.rows), "sent" if recording is None else "held",
             recording)).fetchone()
        if claim.rows:
            self._run_many("INSERT INTO lines (claim, patient, service_date, procedure, "
                           "modifiers, units, line_number) VALUES (?, ?, ?, ?, ?, ?, ?)",
                           [(new, claim.patient, *row) for row in claim.rows])

    def release(self, submission: str) -> int:
        """Mark the claims held for ``submission`` as sent, whatever recording holds them
        (`scrub ledger release`, by hand: a hold of an older ledger, say). Claims."""
        with self._transaction():
            return self._send("{t}.status = 'held' AND {t}.submission = ?", (submission,))

    # -- recordings: claims held until their submission is done ----------------------------

    def begin_recording(self, coordinator: str | None = None) -> str:
        """A new recording: the claims recorded under it are held (in every day context at
        once, so concurrent workers see them) and sent only by ``commit_recording``.

        Its lease lives with this store: if the process dies or loses the connection
        first, a store's next look (``sweep``, at its opening and every few seconds
        while it records) discards what it held. With ``coordinator``, the recording
        begins prepared for it (``prepare_recording``) in the same transaction: one
        write where a submission took two.
        """
        if time.monotonic() - self._swept > _SWEEP_EVERY:
            self.sweep()
        recording = uuid.uuid4().hex
        self._lease(recording)
        state = OPEN if coordinator is None else PREPARED
        try:
            with self._transaction():
                self._run("INSERT INTO recordings (id, owner, started_at, state, coordinator) "
                          "VALUES (?, ?, ?, ?, ?)",
                          (recording, owner(), now_utc(), state, coordinator))
        except BaseException:
            self._unlease(recording)
            raise
        self._mine[recording] = state
        return recording

    def prepare_recording(self, recording: str, coordinator: str) -> None:
        """Hand the recording's outcome to ``coordinator``, which keeps its own record of it
        ("serve:<submission id>": the service's submission store; "watch:<root>": the
        watcher's journal): from now on only ``commit_recording`` or ``discard_recording``
        ends it, even after its process."""
        with self._transaction():
            self._run("UPDATE recordings SET state = ?, coordinator = ? WHERE id = ?",
                      (PREPARED, coordinator, recording))
        if recording in self._mine:
            self._mine[recording] = PREPARED

    def commit_recording(self, recording: str) -> int:
        """Send what ``recording`` holds, in one transaction: each claim takes the place of
        its identity's sent copy (a replacement replaces, a void removes). Claims sent."""
        with self._transaction():
            sent = self._send_recording(recording)
        self._end(recording)
        return sent

    def _send_recording(self, recording: str) -> int:
        """Inside a transaction: send what ``recording`` holds and end it. Claims sent."""
        sent = self._send("{t}.status = 'held' AND {t}.recording = ?", (recording,))
        self._run("DELETE FROM recordings WHERE id = ?", (recording,))
        return sent

    def discard_recording(self, recording: str) -> int:
        """Drop what ``recording`` holds: its submission failed or was never finished."""
        with self._transaction():
            dropped = self._drop(recording)
        self._end(recording)
        return dropped

    def withdraw_from_recording(self, recording: str,
                                keys: Iterable[tuple[str, str, str, str]]) -> int:
        """Drop from ``recording`` the held claims ``keys`` name (billing NPI, payer, CLM01,
        submission): decided, but not going out with it (a split holds a claim whose
        conflict partner was rejected). Claims dropped."""
        ids: list[int] = []
        with self._transaction():
            for npi, payer, claim_id, submission in keys:
                ids += [row[0] for row in self._run(
                    "SELECT id FROM claims WHERE recording = ? AND status = 'held' AND "
                    "npi = ? AND payer = ? AND claim_id = ? AND submission = ?",
                    (recording, npi, payer, claim_id, submission)).fetchall()]
            self._delete_claims(ids)
        return len(ids)

    def resubmit_recording(self, recording: str, submissions: Iterable[tuple[str, str]]
                           ) -> int:
        """Record the claims ``recording`` holds as sent in other submissions: (as scrubbed,
        as sent) pairs of "sender:ISA13" (a split sends them under fresh control numbers).
        Claims moved."""
        moved = 0
        with self._transaction():
            for old, new in submissions:
                moved += int(self._run(
                    "UPDATE claims SET submission = ? WHERE recording = ? AND "
                    "status = 'held' AND submission = ?", (new, recording, old)).rowcount)
        return moved

    def _drop(self, recording: str) -> int:
        self._run("DELETE FROM lines WHERE claim IN (SELECT id FROM claims WHERE "
                  "recording = ? AND status = 'held')", (recording,))
        dropped = int(self._run("DELETE FROM claims WHERE recording = ? AND status = 'held'",
                                (recording,)).rowcount)
        self._run("DELETE FROM recordings WHERE id = ?", (recording,))
        return dropped

    def _end(self, recording: str) -> None:
        if self._mine.pop(recording, None) is not None:
            self._unlease(recording)

    def _send(self, where: str, params: tuple) -> int:
        """Inside a transaction: the held claims ``where`` selects (written over a table
        alias ``{t}``) become sent, each in place of its identity's sent copy; of two held
        copies of one identity the later wins, and a void removes the sent copy."""
        mine, other = where.format(t="h"), where.format(t="d")
        # two commits sending one identity take turns, as decisions do (the same key order)
        self._lock(sorted("claim\x1f" + "\x1f".join(row) for row in self._run(
            f"SELECT DISTINCT h.npi, h.payer, h.claim_id FROM claims h WHERE {mine}",
            params).fetchall()))
        held = f"SELECT h.id FROM claims h WHERE {mine}"
        later = (f"{held} AND EXISTS (SELECT 1 FROM claims d WHERE {other} AND "
                 "d.npi = h.npi AND d.payer = h.payer AND d.claim_id = h.claim_id AND "
                 "d.id > h.id)")
        superseded = ("SELECT s.id FROM claims s WHERE s.status = 'sent' AND EXISTS (SELECT 1 "
                      f"FROM claims h WHERE {mine} AND h.npi = s.npi AND h.payer = s.payer "
                      "AND h.claim_id = s.claim_id)")
        for query, copies in ((later, 2), (superseded, 1), (f"{held} AND h.frequency = '8'", 1)):
            self._delete_claims([row[0] for row in self._run(query, params * copies)])
        return int(self._run("UPDATE claims SET status = 'sent', recording = NULL, "
                             f"recorded_at = ? WHERE {where.format(t='claims')}",
                             (now_utc(), *params)).rowcount)

    def _delete_claims(self, ids: list[int]) -> None:
        for start in range(0, len(ids), _CHUNK):
            part = ids[start:start + _CHUNK]
            marks = ", ".join("?" * len(part))
            self._run(f"DELETE FROM lines WHERE claim IN ({marks})", part)
            self._run(f"DELETE FROM claims WHERE id IN ({marks})", part)

    def sweep(self) -> int:
        """Discard the open recordings whose owner is gone (a process killed, a connection
        cut); a prepared one is its coordinator's to end (``prepared``). Recordings."""
        self._swept = time.monotonic()
        swept = 0
        try:
            rows = self._run("SELECT id, state FROM recordings").fetchall()
        except LedgerError:
            return 0
        for recording, state in rows:
            if recording in self._mine or state != OPEN or not self._take_lease(recording):
                continue
            try:
                with self._transaction():
                    held = self._drop(recording)
                log.info("discarded the %d held claim(s) of a recording whose process is gone",
                         held)
                swept += 1
            except LedgerError as exc:  # a full disk: the next look tries again
                log.warning("could not discard a dead recording yet: %s", exc)
            finally:
                self._unlease(recording)
        return swept

    def prepared(self, coordinator: str) -> list[tuple[str, str]]:
        """(recording, coordinator) of the prepared recordings whose owner is gone and whose
        coordinator begins with ``coordinator``: for it to end."""
        gone = []
        for recording, said in self._run(
                "SELECT id, coordinator FROM recordings WHERE state = ?",
                (PREPARED,)).fetchall():
            if not str(said or "").startswith(coordinator) or recording in self._mine \
                    or not self._take_lease(recording):
                continue
            self._unlease(recording)
            gone.append((recording, str(said)))
        return gone

    def recordings(self) -> list[RecordingInfo]:
        """Every recording not yet committed or discarded, with what it holds."""
        rows = self._run(
            "SELECT r.id, r.owner, r.started_at, r.state, COUNT(c.id) FROM recordings r "
            "LEFT JOIN claims c ON c.recording = r.id AND c.status = 'held' "
            "GROUP BY r.id, r.owner, r.started_at, r.state ORDER BY r.started_at").fetchall()
        return [RecordingInfo(ident, who, started, state, int(held))
                for ident, who, started, state, held in rows]

    # -- retention and administration ------------------------------------------------------

    def submissions(self) -> list[SubmissionInfo]:
        """Every submission with recorded claims, oldest first, its sent claims apart from
        those a recording still holds: counts only, no patients."""
        rows = self._run(
            "SELECT c.submission, c.status, c.recording, r.state, MIN(c.recorded_at), "
            "MAX(c.recorded_at), COUNT(*), SUM(c.line_count) FROM claims c LEFT JOIN "
            "recordings r ON r.id = c.recording GROUP BY c.submission, c.status, c.recording, "
            "r.state ORDER BY MIN(c.recorded_at), c.submission, c.status DESC").fetchall()
        out = []
        for sub, status, recording, state, first, last, n, lines in rows:
            if status == "sent":
                said = "sent"
            elif recording == LEGACY_HOLD:
                said = "held"  # by an older ledger: released or forgotten by hand
            else:
                said = f"held ({state or 'ended'} recording {recording[:12]})"
            out.append(SubmissionInfo(sub, sub.rpartition(":")[0], first, last, int(n),
                                      int(lines), int(n) if status == "held" else 0, said))
        return out

    def claims(self, claim_id: str) -> list[ClaimEntry]:
        """The recorded claims with this CLM01 (one per billing provider and payer)."""
        out = []
        for row in self._run(f"SELECT id, {CLAIM_COLUMNS} FROM claims WHERE claim_id = ? "
                             "ORDER BY id", (claim_id,)).fetchall():
            sent = SentClaim(*row[1:8])
            lines = self._run(
                "SELECT line_number, procedure, modifiers, units, service_date FROM lines "
                "WHERE claim = ? ORDER BY id", (row[0],)).fetchall()
            out.append(ClaimEntry(sent, tuple(
                _line((sent.claim_id, *line, sent.submission, sent.payer)) for line in lines)))
        return out

    def _forget(self, where: str, params: tuple, dry_run: bool) -> int:
        if dry_run:  # what would go, and nothing goes
            return int(self._run(f"SELECT COUNT(*) FROM claims WHERE {where}", params
                                 ).fetchone()[0])
        with self._transaction():
            ids = [row[0] for row in self._run(f"SELECT id FROM claims WHERE {where}",
                                               params).fetchall()]
            for start in range(0, len(ids), _CHUNK):
                part = ids[start:start + _CHUNK]
                marks = ", ".join("?" * len(part))
                self._run(f"DELETE FROM lines WHERE claim IN ({marks})", part)
                self._run(f"DELETE FROM claims WHERE id IN ({marks})", part)
        return len(ids)

    def forget_submission(self, submission: str, *, dry_run: bool = False) -> int:
        """Remove every claim last recorded in ``submission`` (one never sent, say); with
        ``dry_run``, only count them."""
        return self._forget("submission = ?", (submission,), dry_run)

    def forget_claim(self, claim_id: str, *, npi: str | None = None,
                     payer: str | None = None, dry_run: bool = False) -> int:
        """Remove the claim(s) with this CLM01 (held, or never sent), narrowed by NPI/payer;
        with ``dry_run``, only count them."""
        where, params = "claim_id = ?", [claim_id]
        for column, value in (("npi", npi), ("payer", payer)):
            if value is not None:
                where += f" AND {column} = ?"
                params.append(value)
        return self._forget(where, tuple(params), dry_run)

    def prune(self, before: date, *, dry_run: bool = False) -> int:
        """Retention: remove the claims recorded before ``before`` (a UTC date); with
        ``dry_run``, only count them."""
        return self._forget("recorded_at < ?", (before.isoformat(),), dry_run)

    def service_dates(self, recorded_since: date) -> list[tuple[date, int]]:
        """(date of service, lines) of the claims recorded since ``recorded_since``: dates
        and counts only, no patient and no claim (``scrub data status`` asks whether the
        installed releases cover them)."""
        rows = self._run("SELECT l.service_date, COUNT(*) FROM lines l JOIN claims c ON "
                         "c.id = l.claim WHERE c.recorded_at >= ? GROUP BY l.service_date "
                         "ORDER BY l.service_date", (recorded_since.isoformat(),)).fetchall()
        return [(date.fromisoformat(day), int(count)) for day, count in rows]

    def stats(self) -> dict:
        """Counts and dates: no patient, no claim."""
        oldest, newest = self._run("SELECT MIN(recorded_at), MAX(recorded_at) FROM claims"
                                   ).fetchone()
        return {"store": self.kind, "location": self.location,
                "schema_version": SCHEMA_VERSION, "claims": self._count("claims"),
                "lines": self._count("lines"),
                "submissions": int(self._run("SELECT COUNT(DISTINCT submission) FROM claims"
                                             ).fetchone()[0]),
                "held_claims": int(self._run("SELECT COUNT(*) FROM claims WHERE status = "
                                             "'held'").fetchone()[0]),
                "recordings": {state: n for state, n in self._run(
                    "SELECT state, COUNT(*) FROM recordings GROUP BY state").fetchall()},
                "oldest_recorded": oldest, "newest_recorded": newest}

    def export(self) -> Iterator[dict]:
        """A header, then one dict per claim with its lines: JSON lines for `ledger export`.

        Patients stay hashed: the file is only usable with the same key, which
        ``import_`` checks.
        """
        yield {"scrubber_ledger": SCHEMA_VERSION, "key_check": key_check(self._key)}
        last = 0
        while True:
            rows = self._run(f"SELECT id, {CLAIM_COLUMNS}, patient, status FROM claims "
                             "WHERE id > ? "
                             f"ORDER BY id LIMIT {_CHUNK}", (last,)).fetchall()
            if not rows:
                return
            ids = [row[0] for row in rows]
            lines: dict[int, list] = {i: [] for i in ids}
            for claim, *line in self._run(
                    "SELECT claim, service_date, procedure, modifiers, units, line_number "
                    f"FROM lines WHERE claim IN ({', '.join('?' * len(ids))}) ORDER BY id",
                    ids).fetchall():
                lines[claim].append(line)
            for row in rows:
                (npi, payer, claim_id, frequency, submission, recorded_at, content, patient,
                 status) = row[1:]
                yield {"npi": npi, "payer": payer, "claim_id": claim_id,
                       "frequency": frequency, "submission": submission,
                       "recorded_at": recorded_at, "status": status, "content": content,
                       "patient": bytes(patient).hex(), "lines": lines[row[0]]}
            last = ids[-1]

    def import_(self, items: Iterable[dict]) -> int:
        """Load what ``export`` wrote (from any store); the key must be the same. Claims."""
        stream = iter(items)
        header = next(stream, None)
        if not header or "scrubber_ledger" not in header:
            raise LedgerError("not a ledger export: its first line is no scrubber_ledger header")
        if header.get("key_check") != key_check(self._key):
            raise LedgerError("the export was made under another ledger key: its patients "
                              "would match no one here; import with the key of the ledger "
                              "it came from")
        count, chunk = 0, []
        for item in stream:
            try:
                chunk.append((item["submission"], item["recorded_at"], PreparedClaim(
                    False, item["npi"], item["payer"], item["claim_id"], item["frequency"],
                    bytes.fromhex(item["patient"]),
                    tuple((d, p, m, u, n) for d, p, m, u, n in item["lines"]), 0,
                    item.get("content")), item.get("status", "sent") == "held"))
            except (KeyError, TypeError, ValueError) as exc:
                raise LedgerError(f"claim {count + len(chunk) + 1} of the export is damaged "
                                  f"({type(exc).__name__}: {exc})") from None
            if len(chunk) >= _CHUNK:
                count += self._import_chunk(chunk)
                chunk = []
        return count + (self._import_chunk(chunk) if chunk else 0)

    def _import_chunk(self, chunk: list[tuple[str, str, PreparedClaim, bool]]) -> int:
        keys = set().union(*(self.prepared_keys(claim) for _, _, claim, _ in chunk))
        with self._transaction():
            self._lock(sorted(keys))
            for submission, recorded_at, claim, held in chunk:
                if held:  # held where it came from: held here too, until released by hand
                    self._insert(submission, claim, recorded_at, LEGACY_HOLD)
                else:
                    self._write(submission, claim, recorded_at)
        return len(chunk)


class _Decision:
    """Reads and records of one ``deciding`` block.

    Its reads see its own records: a read of a key with a record pending
    writes the pending records first. Without the lock (the test's lost-update
    case) the reads happen before the writing transaction even begins. With a
    ``recording``, what it records is held under that recording (new rows only:
    nothing sent is touched before the recording commits).
    """

    def __init__(self, store: SqlStore, *, locked: bool, recording: str | None = None):
        self._store = store
        self._locked = locked
        self._recording = recording
        self._recorded_at = now_utc()
        self._pending: list[tuple[str, PreparedClaim]] = []
        self.totals = [0, 0, 0, 0, 0]  # as RecordStats
        # what the block's keys held when it began: (patient, day) -> [(npi, line)], and
        # claim key -> its recorded copy; an entry goes once the block records over it
        self._days: dict[tuple[bytes, str], list[tuple[str, LedgerLine]]] = {}
        self._sent: dict[tuple[str, ...], SentClaim | None] = {}
        self._present: set[tuple[str, ...]] = set()  # prefetched keys sent
        self._touched_claims: set[tuple[str, ...]] = set()  # keys with writes pending
        self._touched_days: set[tuple[bytes, str]] = set()

    def prefetch(self, keys: list[str]) -> None:
        """Read the day lines and claims of every key in a few queries, not one per claim:
        with a networked store the round trips, not the rows, are the cost."""
        days: list[tuple[bytes, str]] = []
        claims: list[tuple[str, ...]] = []
        for key in keys:
            kind, *parts = key.split("\x1f")
            if kind == "day":
                days.append((bytes.fromhex(parts[0]), parts[1]))
            else:
                claims.append(tuple(parts))
        run = self._store._run
        for start in range(0, len(days), _PREFETCH):
            part = days[start:start + _PREFETCH]
            for day in part:
                self._days[day] = []
            rows, params = self._store._in(("bytea", "text"), part)
            for patient, npi, *line in run(
                    "SELECT l.patient, c.npi, c.claim_id, l.line_number, l.procedure, "
                    "l.modifiers, l.units, l.service_date, c.submission, c.payer FROM lines l "
                    "JOIN claims c ON c.id = l.claim WHERE (l.patient, l.service_date) IN "
                    f"{rows} ORDER BY c.id, l.id", params).fetchall():
                self._days[(bytes(patient), line[5])].append((npi, _line(line)))
        for start in range(0, len(claims), _PREFETCH):
            some = claims[start:start + _PREFETCH]
            copies: dict[tuple[str, ...], list] = {claim: [] for claim in some}
            rows, params = self._store._in(("text", "text", "text"), some)
            for row in run(f"SELECT {CLAIM_COLUMNS}, status FROM claims WHERE "
                           f"(npi, payer, claim_id) IN {rows} ORDER BY id", params).fetchall():
                copies[tuple(row[:3])].append(row)
                if row[7] == "sent":
                    self._present.add(tuple(row[:3]))
            for claim, found in copies.items():
                self._sent[claim] = _sent_copy(found)

    def lines_for(self, identity: PatientIdentity, service_date: date, *,
                  exclude_submission: str | None = None) -> list[LedgerLine]:
        day = (self._store.patient_hash(identity), service_date.isoformat())
        if day in self._touched_days:
            self.flush()
        known = self._days.get(day)
        if known is None:
            return self._store.lines_for(identity, service_date,
                                         exclude_submission=exclude_submission)
        return [line for npi, line in known
                if npi == identity[0] and line.submission != exclude_submission]

    def lines_between(self, identity: PatientIdentity, first: date, last: date, *,
                      exclude_submission: str | None = None) -> list[LedgerLine]:
        """A read only: what this block recorded in the period is written first."""
        if any(first.isoformat() <= day <= last.isoformat() for _, day in self._touched_days):
            self.flush()
        return self._store.lines_between(identity, first, last,
                                         exclude_submission=exclude_submission)

    def sent_claim(self, key: ClaimKey) -> SentClaim | None:
        if key in self._touched_claims:
            self.flush()
        if key in self._sent:
            return self._sent[key]
        return self._store.sent_claim(key)

    def record(self, submission: str, claim: ScrubbedClaim | PreparedClaim) -> None:
        """Record ``claim`` (if accepted) in ``submission`` before this block commits: held
        under the block's recording, or, without one, sent at once.

        Writes wait until the block ends, or until a read or record of the same
        key in the block needs them: then a block's new claims go in a few
        statements instead of one or more each.
        """
        if not isinstance(claim, PreparedClaim):
            claim = self._store.prepare(claim)
        if claim.rejected:
            self.totals[3] += 1
            return
        if claim.key in self._touched_claims:
            self.flush()  # the same claim twice in a block: the later replaces the earlier
        self._pending.append((submission, claim))
        self._touched_claims.add(claim.key)
        self._touched_days.update((claim.patient, row[0]) for row in claim.rows)

    def flush(self) -> None:
        """Write what the block recorded; what was read of those keys is then stale."""
        new: list[tuple[str, PreparedClaim]] = []
        held = self._recording is not None and self._store._hold
        for submission, claim in self._pending:
            if claim.frequency != "8":
                self.totals[0] += 1
                self.totals[1] += len(claim.rows)
                self.totals[4] += claim.undated
            if held:  # a new held row, a void's included: its commit does the replacing
                new.append((submission, claim))
                continue
            # under the lock, a key read as unsent stays so: nothing to replace
            if self._locked and claim.key in self._sent and claim.key not in self._present:
                if claim.frequency != "8":
                    new.append((submission, claim))
                continue
            removed, _ = self._store._write(submission, claim, self._recorded_at)
            if claim.frequency in ("7", "8"):
                self.totals[2] += removed
        if new:
            self._store._insert_many(new, self._recorded_at, self._recording if held else None)
        for _, claim in self._pending:
            self._sent.pop(claim.key, None)
            self._present.discard(claim.key)
            for row in claim.rows:
                self._days.pop((claim.patient, row[0]), None)
        self._pending.clear()
        self._touched_claims.clear()
        self._touched_days.clear()


def _sent_copy(rows: Sequence[Sequence[Any]]) -> SentClaim | None:
    """Of a claim identity's rows (claim columns and status, oldest first): the sent copy,
    or else the latest one held (a run is sending it now)."""
    held = None
    for row in rows:
        if row[7] == "sent":
            return SentClaim(*row[:7])
        held = row
    if held is None:
        return None
    npi, payer, claim_id, frequency, submission, recorded_at, content = held[:7]
    return SentClaim(npi, payer, claim_id, frequency, submission, recorded_at, content,
                     held=True)


def _line(row: Sequence[Any]) -> LedgerLine:
    claim_id, number, procedure, modifiers, units, day, submission, payer = row
    return LedgerLine(claim_id, number, procedure, tuple(m for m in modifiers.split(":") if m),
                      _units(units), date.fromisoformat(day), submission, payer)


def _units(text: str) -> Decimal | None:
    try:
        return Decimal(text) if text else None
    except InvalidOperation:
        return None
