"""A recording's decision holds the ledger's lock for the ledger's part only, and writers queue.

On SQLite every decision takes the ledger's one write lock, so whatever runs
inside it runs one submission at a time. The rules that read nothing of the
ledger run before the lock is taken; inside it run only the rules that read the
ledger (directly, or through a value another rule derived from it with
``ClaimContext.once``), with what the ledger holds then. Writers wait for the
lock in a kernel queue (a flock on ``<ledger>.writers``) rather than in SQLite's
sleeping busy handler. Both stores for the first part; the queue is SQLite's.
"""

from __future__ import annotations

import fcntl
import os
import threading
from contextlib import contextmanager
from pathlib import Path

from scrubbing import scrub_source

from scrubber.ledger import open_store
from scrubber.rules.engine import Engine
from scrubber.rules.findings import ScrubbedClaim, Severity
from scrubber.rules.profile import load_profile
from scrubber.rules.registry import Hit, Rule

ROOT = Path(__file__).resolve().parent.parent
MULTI = ROOT / "fixtures" / "837p-multi.x12"
KEY = b"\x5a" * 32


def watched(store, inside: list[bool]):
    """``store`` with ``inside[0]`` True while one of its decisions is open."""
    real = store.deciding

    @contextmanager
    def deciding(keys, **options):
        with real(keys, **options) as decision:
            inside[0] = True
            try:
                yield decision
            finally:
                inside[0] = False

    store.deciding = deciding
    return store


def test_rules_that_read_no_ledger_run_before_the_lock(ledger_target):
    inside = [False]
    runs: list[tuple[str, bool]] = []

    def local(ctx):
        runs.append(("local", inside[0]))
        yield Hit("local finding", "none")

    def ledger(ctx):  # reads the ledger itself
        runs.append(("ledger", inside[0]))
        if ctx.sent() is not None:
            yield Hit("sent before", "none")

    def derived(ctx):  # reads it only through the value ``ledger2`` derived from it
        runs.append(("derived", inside[0]))
        if ctx.once("sent-copy", ctx.sent) is not None:
            yield Hit("sent before (derived)", "none")

    def ledger2(ctx):
        ctx.once("sent-copy", ctx.sent)
        return ()

    rules = [Rule(name, Severity.WARN, "s", "src", None, check, "doc")
             for name, check in (("t-ledger2", ledger2), ("t-local", local),
                                 ("t-ledger", ledger), ("t-derived", derived))]
    engine = Engine(load_profile(), rules)
    with open_store(ledger_target, key=KEY) as store:
        watched(store, inside)
        first = [e for e in scrub_source(MULTI, ledger=store, record=True, engine=engine)
                 if isinstance(e, ScrubbedClaim)]
        claims = len(first)
        assert claims > 1
        assert runs.count(("local", False)) == claims and ("local", True) not in runs
        assert runs.count(("ledger", True)) == claims
        assert runs.count(("derived", True)) == claims
        assert all(sorted(f.rule for f in c.findings) == ["t-local"] for c in first)
        runs.clear()
        again = [e for e in scrub_source(MULTI, ledger=store, record=True, engine=engine)
                 if isinstance(e, ScrubbedClaim)]
    # the same claims again: the ledger holds them now, and the rules reading it say so
    assert [sorted(f.rule for f in c.findings) for c in again] == \
        [["t-derived", "t-ledger", "t-local"]] * claims
    assert ("local", True) not in runs


def test_a_writer_waits_for_the_ledger_in_the_queue(tmp_path):
    target = tmp_path / "ledger.sqlite"
    with open_store(str(target), key=KEY) as store:
        queue = os.open(f"{target}.writers", os.O_RDWR)
        fcntl.flock(queue, fcntl.LOCK_EX)  # another writer holds the queue
        done = threading.Event()
        began: list[str] = []

        def write():
            began.append(store.begin_recording())
            done.set()

        writer = threading.Thread(target=write)
        writer.start()
        try:
            assert not done.wait(0.5), "wrote past a writer holding the queue"
        finally:
            fcntl.flock(queue, fcntl.LOCK_UN)
            os.close(queue)
        assert done.wait(60)
        writer.join()
        store.discard_recording(began[0])
