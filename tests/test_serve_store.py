"""The submission store's owners and leases: a dead worker's key is taken over, a live one's never.

Run on SQLite and on PostgreSQL (a fresh database at $SCRUBBER_TEST_PG_URL,
skipped without a server unless CI=true). Owners of this machine are told
dead by /proc (pid and start time); owners elsewhere only by their lease.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time

import pytest
from servekit import pg_database

from scrubber.procs import Owner
from scrubber.serve.store import SubmissionLost, open_submissions

DIGEST = "f" * 64


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request, tmp_path):
    if request.param == "sqlite":
        yield str(tmp_path / "store.sqlite")
        return
    with pg_database() as url:
        yield url


def _dead_owner() -> Owner:
    """A process of this machine that has ended: a child run to its end."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        with open(f"/proc/{child.pid}/stat") as handle:
            stat = handle.read()
        started = int(stat[stat.rfind(")") + 2:].split()[19])
        owner = Owner(Owner.current().machine, child.pid, started)
        assert not owner.known_dead()
    finally:
        child.kill()
        child.wait()
    return owner


def test_an_owner_is_known_dead_only_on_its_own_machine():
    me = Owner.current()
    assert Owner.parse(str(me)) == me and not me.known_dead()
    assert Owner(me.machine, me.pid, me.started + 1).known_dead()  # the pid, reused
    assert _dead_owner().known_dead()
    elsewhere = Owner("another-host/boot/1", 1, 1)
    assert not elsewhere.known_dead()  # only its lease can tell
    assert Owner.parse("garbage") is None and Owner.parse(None) is None


def _all_at_once(work, count: int) -> None:
    """Run ``work`` in ``count`` threads released together."""
    start = threading.Barrier(count)

    def run() -> None:
        start.wait()
        work()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_one_claim_wins_an_idempotency_key(target):
    winners, holders = [], set()

    def claim() -> None:
        found = open_submissions(target).claim("acme", "same-key", DIGEST)
        holders.add(found.submission.id)
        if found.won:
            winners.append(found.submission.id)

    _all_at_once(claim, 12)
    assert len(winners) == 1 and holders == set(winners)
    store = open_submissions(target)
    store.finish(winners[0], 201, {"id": winners[0]}, "/nowhere")
    again = store.claim("acme", "same-key", DIGEST)
    assert not again.won and again.submission.answer == {"id": winners[0]}
    assert store.claim("beta", "same-key", DIGEST).won
    assert store.claim("acme", None, DIGEST).won and store.claim("acme", None, DIGEST).won


def test_a_dead_owners_key_is_taken_over_by_exactly_one_request(target):
    dead = open_submissions(target, owner=_dead_owner())
    held = dead.claim("acme", "key-1", DIGEST)
    assert held.won and held.submission.orphaned()
    taken, results = [], []

    def retry() -> None:  # what a request with the key does: claim, else take an orphan over
        store = open_submissions(target)
        found = store.claim("acme", "key-1", DIGEST)
        if not found.won:
            results.append(store.take_over(found.submission))
            found = store.claim("acme", "key-1", DIGEST)
        if found.won:
            taken.append(found.submission.id)

    _all_at_once(retry, 8)
    assert results.count(True) == 1  # one request deleted the orphan
    assert len(taken) == 1 and taken != [held.submission.id]  # one scrubs the key again
    with pytest.raises(SubmissionLost):  # the dead owner, were it to wake, cannot finish
        dead.finish(held.submission.id, 201, {}, None)


def test_a_live_owners_key_is_never_taken_over(target):
    live = open_submissions(target)  # this process, lease 30 s
    held = live.claim("acme", "key-2", DIGEST).submission
    other = open_submissions(target, owner=Owner("another-host/boot/1", 1, 1))
    assert not held.orphaned() and not other.take_over(held)
    live.finish(held.id, 201, {"id": held.id}, "/nowhere")
    done = other.claim("acme", "key-2", DIGEST)
    assert not done.won and done.submission.answer == {"id": held.id}
    assert not other.take_over(done.submission)  # a finished one is never an orphan


def test_a_lease_holds_while_renewed_and_ends_when_not(target):
    far = Owner("another-host/boot/1", 7, 7)  # this machine cannot see it die
    brief = open_submissions(target, owner=far, lease=0.3)
    kept = brief.claim("acme", "renewed", DIGEST).submission
    left = brief.claim("acme", "left", DIGEST).submission
    time.sleep(0.5)
    other = open_submissions(target)
    assert {found.id for found in other.orphans()} == {kept.id, left.id}
    open_submissions(target, owner=far, lease=30).renew([kept.id])  # its heartbeat, late
    assert [found.id for found in other.orphans()] == [left.id]
    assert not other.take_over(other.by_key("acme", "renewed"))
    assert other.take_over(other.by_key("acme", "left"))


def test_a_store_of_the_first_release_gains_owners_and_leases(tmp_path):
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("""CREATE TABLE serve_submissions (id TEXT PRIMARY KEY, client TEXT NOT NULL,
            idem_key TEXT, body_sha256 TEXT NOT NULL, created TEXT NOT NULL,
            state TEXT NOT NULL, status INTEGER, answer TEXT, folder TEXT,
            UNIQUE (client, idem_key))""")
        db.executemany("INSERT INTO serve_submissions VALUES (?,?,?,?,?,'pending',NULL,NULL,"
                       "NULL)", [("a" * 32, "acme", "old", DIGEST, "2020-01-01T00:00:00+00:00"),
                                 ("b" * 32, "acme", "new", DIGEST, "2999-01-01T00:00:00+00:00")])
    store = open_submissions(str(path))
    # a pending row without a lease counts as its worker's for an hour after it came
    assert store.take_over(store.by_key("acme", "old"))
    assert not store.take_over(store.by_key("acme", "new"))
    assert store.claim("acme", "fresh", DIGEST).won
    columns = {row[1] for row in sqlite3.connect(path).execute(
        "PRAGMA table_info(serve_submissions)")}
    assert {"owner", "lease_until"} <= columns
