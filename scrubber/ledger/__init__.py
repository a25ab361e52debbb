"""The claim-history ledger: claims recorded as sent, and their service lines.

96523 must be the sole service of a patient on a day, and the other service
often comes in another submission: a port flush sent this morning, an office
visit this afternoon. The ledger remembers what was sent so the afternoon
batch is checked against the morning's, and so a claim sent again as an
original is caught as the duplicate a payer would deny.

Open a ledger with ``open_store(path_or_url)``: a path (or None, the
per-user default) is an embedded SQLite file, a ``postgresql://`` URL a
database shared by many workers. Patients are stored only as an HMAC of
their identity under a key kept outside the database (scrubber.ledger.keys);
names and member ids never reach it. Billing NPI, payer id, claim id and
service date are kept in clear: they identify providers, claims and days,
and they are what the look-ups are indexed on. See docs/ledger.md.
"""

from __future__ import annotations

from scrubber.ledger.keys import LedgerError
from scrubber.ledger.migrations import SCHEMA_VERSION
from scrubber.ledger.store import (
    ClaimEntry,
    Decision,
    LedgerLine,
    LedgerStore,
    PreparedClaim,
    RecordingInfo,
    RecordStats,
    SubmissionInfo,
    default_ledger_path,
    open_store,
)

__all__ = ["SCHEMA_VERSION", "ClaimEntry", "Decision", "LedgerError", "LedgerLine",
           "LedgerStore", "PreparedClaim", "RecordStats", "RecordingInfo", "SubmissionInfo",
           "default_ledger_path", "open_store"]
