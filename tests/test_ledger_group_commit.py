"""The SQLite ledger's fewer writes: group commit, multi-row inserts, a recording begun prepared.

What `scrub serve` leans on to take the ledger's one write lock fewer times per
submission (docs/performance.md, "Issue 29, serve round 2"); each test shows the
records are the same as with one write each, and whole or absent when a write fails.
"""

from __future__ import annotations

import fcntl
import importlib.util
import os
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from scrubber.ledger import LedgerError, open_store
from scrubber.ledger import sqlite as sqlite_store
from scrubber.ledger.sqlbase import SqlStore
from scrubber.model import ClaimRecord, read
from scrubber.rules.findings import ScrubbedClaim

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("rules_fixture_build",
                                               ROOT / "fixtures" / "rules" / "build.py")
assert _spec is not None and _spec.loader is not None
build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build)
VISIT = build.line("99213", charge="100")


def claims(*ids: str, control: str = "000009652") -> list[ScrubbedClaim]:
    data = build.interchange("837p", [[build.claim(i, [VISIT, build.line("36415", charge="9")])
                                       for i in ids]], control=control).encode()
    return [ScrubbedClaim(e, ()) for e in read(data) if isinstance(e, ClaimRecord)]


def held(store, recording: str, items: list[ScrubbedClaim]) -> None:
    with store.deciding(set(), recording=recording) as decision:
        for claim in items:
            decision.record("SENDER:9652", claim)


def rows(path: Path) -> list[tuple]:
    with sqlite3.connect(path) as db:
        return (db.execute("SELECT id, npi, payer, claim_id, frequency, submission, content, "
                           "patient, line_count, status, recording FROM claims ORDER BY id"
                           ).fetchall()
                + db.execute("SELECT id, claim, patient, service_date, procedure, modifiers, "
                             "units, line_number FROM lines ORDER BY id").fetchall())


@pytest.fixture
def two_recordings(tmp_path):
    """Two stores of one ledger (two request threads' stores), each holding a recording."""
    path = tmp_path / "ledger.sqlite"
    first, second = open_store(path), open_store(path)
    one, two = first.begin_recording(), second.begin_recording()
    held(first, one, claims("A1", "A2"))
    held(second, two, claims("B1", "B2", "B3", control="000009653"))
    yield path, (first, one), (second, two)
    first.close()
    second.close()


def _commit_together(path: Path, pairs) -> list:
    """Commit each (store, recording) in its own thread while the writers' queue is held,
    so that every commit waits; then let the queue go. What each thread got."""
    results: list = [None] * len(pairs)
    blocker = os.open(f"{path}.writers", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(blocker, fcntl.LOCK_EX)

    def commit(index: int, store, recording: str) -> None:
        try:
            results[index] = store.commit_recording(recording)
        except LedgerError as exc:
            results[index] = exc

    threads = [threading.Thread(target=commit, args=(i, *pair)) for i, pair in enumerate(pairs)]
    for thread in threads:
        thread.start()
    group = sqlite_store._group(str(path))
    deadline = time.monotonic() + 60
    while len(group.waiting) < len(pairs) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(group.waiting) == len(pairs)  # every commit waits for the same turn
    fcntl.flock(blocker, fcntl.LOCK_UN)
    os.close(blocker)
    for thread in threads:
        thread.join(60)
    return results


def test_commits_that_wait_together_go_in_one_transaction_each_sent_whole(
        two_recordings, tmp_path, monkeypatch):
    path, first, second = two_recordings
    trace = tmp_path / "trace.txt"
    monkeypatch.setenv(sqlite_store.TRACE_ENV, str(trace))
    assert _commit_together(path, [first, second]) == [2, 3]
    assert len(trace.read_text().splitlines()) == 1  # one write transaction for both
    with open_store(path) as store:
        stats = store.stats()
        assert (stats["claims"], stats["held_claims"], store.recordings()) == (5, 0, [])


def test_a_failed_turn_sends_none_of_the_recordings_it_took(two_recordings, monkeypatch):
    """The turn's one transaction rolls back whole: both recordings stay held, both
    callers hear of it, and each can be committed later."""
    path, first, second = two_recordings
    send = SqlStore._send_recording
    failing = {second[1]}

    def flaky(self, recording: str) -> int:
        sent = send(self, recording)  # the first recording's writes are made, then undone
        if recording in failing:
            raise LedgerError("the disk is full")
        return sent

    monkeypatch.setattr(SqlStore, "_send_recording", flaky)
    results = _commit_together(path, [first, second])
    assert all(isinstance(result, LedgerError) for result in results)
    with open_store(path) as store:
        stats = store.stats()
        assert (stats["claims"], stats["held_claims"], len(store.recordings())) == (5, 5, 2)
    failing.clear()
    assert first[0].commit_recording(first[1]) == 2
    assert second[0].commit_recording(second[1]) == 3


def test_multi_row_inserts_write_the_rows_one_by_one_inserts_wrote(tmp_path, monkeypatch):
    batch = claims("C1", "C2", "C3") + claims("C2", "C4", control="000009653")
    for name in ("many", "single"):
        if name == "single":  # the shared one-claim-at-a-time insert
            monkeypatch.setattr(sqlite_store.SqliteStore, "_insert_many",
                                SqlStore._insert_many)
        with open_store(tmp_path / f"{name}.sqlite", key=b"k" * 32) as store:
            store.record("SENDER:1", batch[:2])  # sent rows first: ids to continue from
            store.forget_claim("C1")  # a gap below the highest id
            recording = store.begin_recording()
            held(store, recording, batch[2:])
            store.commit_recording(recording)
    many, single = rows(tmp_path / "many.sqlite"), rows(tmp_path / "single.sqlite")
    assert len(many) > 5
    assert many == single


def test_a_recording_can_begin_prepared_for_its_coordinator(tmp_path):
    path = tmp_path / "ledger.sqlite"
    store = open_store(path)
    recording = store.begin_recording("serve:abc:1")
    (info,) = store.recordings()
    assert (info.id, info.state) == (recording, "prepared")
    store.close()  # a prepared recording outlives its process: its coordinator ends it
    with open_store(path) as other:
        assert other.prepared("serve:abc") == [(recording, "serve:abc:1")]
