"""The ledger store: what the engine reads, what recording writes, what retention removes.

One protocol, ``LedgerStore``, two implementations (``sqlite.SqliteStore``,
the embedded default, and ``postgres.PostgresStore``, shared by many
workers), and one factory, ``open_store(target)``: a path (or None, the
per-user default) opens SQLite, a ``postgresql://`` URL opens PostgreSQL.
No caller constructs a store class directly.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Protocol

from scrubber.ledger.keys import LedgerError
from scrubber.model.claims import ClaimRecord
from scrubber.paths import state_dir
from scrubber.rules.context import ClaimKey, SentClaim
from scrubber.rules.findings import ScrubbedClaim

PatientIdentity = tuple[str, str, str, str, str]


@dataclass(frozen=True, slots=True)
class LedgerLine:
    """A service line of a claim recorded earlier."""

    claim_id: str  # CLM01
    line_number: int | None  # LX01
    procedure: str
    modifiers: tuple[str, ...]
    units: Decimal | None
    service_date: date
    submission: str  # interchange sender:control number
    payer: str = ""  # NM109 of 2010BB: with the billing NPI and CLM01, the claim's identity


@dataclass(frozen=True, slots=True)
class PreparedClaim:
    """A scrubbed claim reduced to its ledger rows (no segments, no names)."""

    rejected: bool
    npi: str  # billing provider
    payer: str
    claim_id: str  # CLM01
    frequency: str  # CLM05-3
    patient: bytes  # HMAC of the patient identity
    rows: tuple[tuple[str, str, str, str, int | None], ...]  # day, code, modifiers, units, LX01
    undated: int  # lines with no single date of service: not recorded
    held: bool = False  # recorded before it is forwarded: counts for the day, not yet sent

    @property
    def key(self) -> ClaimKey:
        return (self.npi, self.payer, self.claim_id)


@dataclass(frozen=True, slots=True)
class RecordStats:
    """What one record() call did."""

    recorded_claims: int
    recorded_lines: int
    removed_claims: int  # replaced (CLM05-3 = 7) or voided (8) earlier claims
    skipped_rejected: int
    skipped_undated: int  # lines with no single date of service


@dataclass(frozen=True, slots=True)
class SubmissionInfo:
    """One submission as the ledger holds it: no patient, only counts."""

    submission: str  # ISA06:ISA13
    sender: str  # ISA06
    first_recorded: str  # ISO 8601 UTC
    last_recorded: str
    claims: int
    lines: int
    held: int = 0  # claims recorded as held: decided, not yet released as sent


@dataclass(frozen=True, slots=True)
class ClaimEntry:
    """A recorded claim with its lines, for `scrub ledger show` (patient only as a hash)."""

    sent: SentClaim
    lines: tuple[LedgerLine, ...]


class Decision(Protocol):
    """One locked transaction over some patient-day keys: read, decide, record, commit."""

    def lines_for(self, identity: PatientIdentity, service_date: date, *,
                  exclude_submission: str | None = None) -> Sequence[LedgerLine]: ...

    def lines_between(self, identity: PatientIdentity, first: date, last: date, *,
                      exclude_submission: str | None = None) -> Sequence[LedgerLine]: ...

    def sent_claim(self, key: ClaimKey) -> SentClaim | None: ...

    def record(self, submission: str, claim: ScrubbedClaim | PreparedClaim, *,
               held: bool = False) -> None: ...


class LedgerStore(Protocol):
    """Claim history: what the engine reads, what recording writes, retention and admin."""

    location: str  # a path, or a URL without its password: safe to print

    @property
    def path(self) -> str:
        """``location`` under the name the front ends used before the PostgreSQL store."""
        ...

    # -- what the engine reads (outside recording: a check that records nothing)
    def lines_for(self, identity: PatientIdentity, service_date: date, *,
                  exclude_submission: str | None = None) -> Sequence[LedgerLine]: ...

    def lines_between(self, identity: PatientIdentity, first: date, last: date, *,
                      exclude_submission: str | None = None) -> Sequence[LedgerLine]: ...

    def sent_claim(self, key: ClaimKey) -> SentClaim | None: ...

    # -- recording
    def lock_keys(self, record: ClaimRecord) -> frozenset[str]: ...

    def deciding(self, keys: Iterable[str]) -> AbstractContextManager[Decision]: ...

    def prepare(self, scrubbed: ScrubbedClaim) -> PreparedClaim: ...

    def record(self, submission: str,
               claims: Iterable[ScrubbedClaim | PreparedClaim]) -> RecordStats: ...

    def release(self, submission: str) -> int: ...

    # -- retention and administration
    def submissions(self) -> list[SubmissionInfo]: ...

    def claims(self, claim_id: str) -> list[ClaimEntry]: ...

    def forget_submission(self, submission: str) -> int: ...

    def forget_claim(self, claim_id: str, *, npi: str | None = None,
                     payer: str | None = None) -> int: ...

    def prune(self, before: date) -> int: ...

    def stats(self) -> dict: ...

    def export(self) -> Iterator[dict]: ...

    def import_(self, items: Iterable[dict]) -> int: ...

    def close(self) -> None: ...

    def __enter__(self) -> LedgerStore: ...

    def __exit__(self, *exc: object) -> None: ...


def default_ledger_path() -> Path:
    """The per-user ledger: $XDG_STATE_HOME/scrubber/ledger.sqlite (~/.local/state/...)."""
    return state_dir() / "ledger.sqlite"


def is_url(target: str | os.PathLike | None) -> bool:
    return isinstance(target, str) and target.startswith(("postgresql://", "postgres://"))


def open_store(target: str | os.PathLike | None = None, *,
               key: bytes | str | os.PathLike | None = None) -> LedgerStore:
    """Open (creating and migrating if needed) the ledger at ``target``.

    ``target``: None (the per-user SQLite ledger), a file path (SQLite) or a
    ``postgresql://user@host/db`` URL. ``key``: the HMAC key (bytes) or a key
    file; by default $SCRUBBER_LEDGER_KEY, $SCRUBBER_LEDGER_KEY_FILE, and for
    SQLite the ``.key`` file beside the database (created with a new ledger).
    """
    if is_url(target):
        from scrubber.ledger.postgres import PostgresStore

        return PostgresStore.open(str(target), key=key)
    if isinstance(target, str) and "://" in target:
        raise LedgerError(f"unknown ledger URL scheme in {target.split('://')[0]}://...; "
                          "use a file path (SQLite) or postgresql://user@host/db")
    from scrubber.ledger.sqlite import SqliteStore

    return SqliteStore.open(Path(target) if target is not None else default_ledger_path(),
                            key=key)
