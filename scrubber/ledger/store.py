"""The ledger store: what the engine reads, what recording writes, what retention removes.

One protocol, ``LedgerStore``, two implementations (``sqlite.SqliteStore``,
the embedded default, and ``postgres.PostgresStore``, shared by many
workers), and one factory, ``open_store(target)``: a path (or None, the
per-user default) opens SQLite, a ``postgresql://`` URL opens PostgreSQL.
No caller constructs a store class directly.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Protocol

from scrubber.ledger.keys import LedgerError
from scrubber.model.claims import ClaimRecord
from scrubber.paths import state_dir
from scrubber.rules.context import ClaimKey, LedgerLine, SentClaim
from scrubber.rules.findings import ScrubbedClaim

PatientIdentity = tuple[str, str, str, str, str]


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
    content: str | None = None  # rules.context.claim_content: what the claim said

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
    held: int = 0  # of them held by a recording: decided, not yet sent
    state: str = "sent"  # "sent", or "held (...)" naming the recording that holds them


@dataclass(frozen=True, slots=True)
class RecordingInfo:
    """A recording not yet ended: the claims one run holds until its submission is done."""

    id: str
    owner: str  # host:pid of the process that began it
    started_at: str  # ISO 8601 UTC
    state: str  # "open" (its process runs it) or "prepared" (its coordinator ends it)
    held: int  # claims it holds


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

    def record(self, submission: str, claim: ScrubbedClaim | PreparedClaim) -> None: ...


class LedgerStore(Protocol):
    """Claim history: what the engine reads, what recording writes, retention and admin."""

    location: str  # a path, or a URL without its password: safe to print

    # -- what the engine reads (outside recording: a check that records nothing)
    def lines_for(self, identity: PatientIdentity, service_date: date, *,
                  exclude_submission: str | None = None) -> Sequence[LedgerLine]: ...

    def lines_between(self, identity: PatientIdentity, first: date, last: date, *,
                      exclude_submission: str | None = None) -> Sequence[LedgerLine]: ...

    def sent_claim(self, key: ClaimKey) -> SentClaim | None: ...

    def reader(self, keys: Iterable[str]) -> Decision:
        """The same reads for ``keys`` (``lock_keys``' of many claims), batched, no lock."""
        ...

    # -- recording: a run's claims are held under its recording until it commits
    def begin_recording(self, coordinator: str | None = None) -> str: ...

    def prepare_recording(self, recording: str, coordinator: str) -> None: ...

    def commit_recording(self, recording: str) -> int: ...

    def discard_recording(self, recording: str) -> int: ...

    def withdraw_from_recording(self, recording: str,
                                keys: Iterable[tuple[str, str, str, str]]) -> int: ...

    def resubmit_recording(self, recording: str,
                           submissions: Iterable[tuple[str, str]]) -> int: ...

    def sweep(self) -> int: ...

    def prepared(self, coordinator: str) -> list[tuple[str, str]]: ...

    def recordings(self) -> list[RecordingInfo]: ...

    def lock_keys(self, record: ClaimRecord) -> frozenset[str]: ...

    def prepared_keys(self, claim: PreparedClaim) -> set[str]: ...

    def deciding(self, keys: Iterable[str], *, recording: str | None = None
                 ) -> AbstractContextManager[Decision]: ...

    def prepare(self, scrubbed: ScrubbedClaim) -> PreparedClaim: ...

    def record(self, submission: str,
               claims: Iterable[ScrubbedClaim | PreparedClaim]) -> RecordStats: ...

    def release(self, submission: str) -> int: ...

    # -- retention and administration
    def submissions(self) -> list[SubmissionInfo]: ...

    def claims(self, claim_id: str) -> list[ClaimEntry]: ...

    # forget and prune return the claims removed; with dry_run, those they would remove
    def forget_submission(self, submission: str, *, dry_run: bool = False) -> int: ...

    def forget_claim(self, claim_id: str, *, npi: str | None = None,
                     payer: str | None = None, dry_run: bool = False) -> int: ...

    def prune(self, before: date, *, dry_run: bool = False) -> int: ...

    def stats(self) -> dict: ...

    def service_dates(self, recorded_since: date) -> list[tuple[date, int]]: ...

    def export(self) -> Iterator[dict]: ...

    def import_(self, items: Iterable[dict]) -> int: ...

    def close(self) -> None: ...

    def __enter__(self) -> LedgerStore: ...

    def __exit__(self, *exc: object) -> None: ...


def default_ledger_path() -> Path:
    """The per-user ledger: $XDG_STATE_HOME/scrubber/ledger.sqlite (~/.local/state/...)."""
    return state_dir() / "ledger.sqlite"


Opener = Callable[..., LedgerStore]  # (target, *, key=...) -> an open store


@dataclass(frozen=True, slots=True)
class StoreScheme:
    """A kind of ledger store, chosen by the scheme of its URL (``scheme://...``).

    ``open(target, key=...)`` opens (creating and migrating) the store at
    ``target``; several processes open the same target at once and share it, so a
    store must be one every process can reach from the URL alone. ``test_target``
    gives a fresh target under a test's folder, so that every store test (the
    eight-process concurrency test too) runs on it (tests/conftest.py).
    """

    name: str  # the URL scheme: "postgresql"
    open: Opener
    test_target: Callable[[Path], str] | None = None


STORE_GROUP = "scrubber.ledger_stores"  # entry points: name = module:StoreScheme


def _postgres(target: str, *, key: bytes | str | os.PathLike | None = None) -> LedgerStore:
    from scrubber.ledger.postgres import PostgresStore

    return PostgresStore.open(target, key=key)


def _sqlite(target: str | os.PathLike, *, key: bytes | str | os.PathLike | None = None
            ) -> LedgerStore:
    from scrubber.ledger.sqlite import SqliteStore

    return SqliteStore.open(Path(target), key=key)


_SCHEMES: dict[str, StoreScheme] = {
    "postgresql": StoreScheme("postgresql", _postgres),
    "postgres": StoreScheme("postgres", _postgres),
}


def store_schemes() -> dict[str, StoreScheme]:
    """The stores by URL scheme: PostgreSQL's, and those installed distributions name in
    the ``scrubber.ledger_stores`` entry-point group (a plain path is SQLite)."""
    from importlib.metadata import entry_points

    schemes = dict(_SCHEMES)
    for point in entry_points(group=STORE_GROUP):
        scheme = point.load()
        if isinstance(scheme, StoreScheme):
            schemes.setdefault(scheme.name, scheme)
    return schemes


def is_url(target: str | os.PathLike | None) -> bool:
    return isinstance(target, str) and "://" in target


def open_store(target: str | os.PathLike | None = None, *,
               key: bytes | str | os.PathLike | None = None) -> LedgerStore:
    """Open (creating and migrating if needed) the ledger at ``target``.

    ``target``: None (the per-user SQLite ledger), a file path (SQLite) or a
    URL whose scheme names the store (``postgresql://user@host/db``; see
    ``store_schemes``). ``key``: the HMAC key (bytes) or a key file; by default
    $SCRUBBER_LEDGER_KEY, $SCRUBBER_LEDGER_KEY_FILE, and for SQLite the ``.key``
    file beside the database (created with a new ledger).
    """
    if is_url(target):
        scheme = str(target).split("://", 1)[0]
        found = store_schemes().get(scheme)
        if found is None:
            raise LedgerError(f"unknown ledger URL scheme in {scheme}://...; use a file path "
                              "(SQLite), postgresql://user@host/db, or a scheme of an "
                              "installed store")
        return found.open(str(target), key=key)
    return _sqlite(target if target is not None else default_ledger_path(), key=key)
