"""No lost update: 8 processes scrub conflicting claims for the same 300 patient-days at once.

Every process sends, for each of 300 patient-day keys, its own claim with a
96523 for that patient and day. 96523 is billed once a day (96523-units), so
whatever the interleaving exactly one claim per key may be accepted: the
first to decide; every later one must see it in the ledger. The processes
start together and walk the keys in the same order, the worst case for a
read-then-write race. Both stores.

With the serialization removed (SCRUBBER_TEST_UNSERIALIZED=1 in the
environment: the workers then read the day outside the locked transaction and
record afterwards) this test fails on both stores: every key accepted more than
once; see docs/ledger.md.
"""

from __future__ import annotations

import importlib.util
import multiprocessing
import os
from collections import Counter
from pathlib import Path

from scrubber.ledger import open_store

ROOT = Path(__file__).resolve().parent.parent
WORKERS = 8
KEYS = 300
KEY = b"\x3c" * 32


def _build():
    spec = importlib.util.spec_from_file_location("rules_fixture_build",
                                                  ROOT / "fixtures" / "rules" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def batch(worker: int) -> bytes:
    """Worker ``worker``'s submission: one 96523 claim for each patient-day key, in order."""
    build = _build()
    claims = [build.claim(f"C{worker}K{k:03d}", [build.line("96523", day=f"202611{1 + k % 3:02d}")],
                          patient=("TESTCASE", f"P{k // 3:03d}", "19700101",
                                   f"FAKE{k // 3:07d}"))
              for k in range(KEYS)]
    return build.interchange("837p", [claims], control=f"{worker + 1:09d}").encode()


def _worker(target: str, worker: int, start, results) -> None:
    from scrubbing import scrub_source

    from scrubber.ledger.sqlbase import SqlStore
    from scrubber.rules.findings import ScrubbedClaim
    from scrubber.rules.profile import load_profile

    if os.environ.get("SCRUBBER_TEST_UNSERIALIZED") == "1":
        SqlStore._serialize = False
    data = batch(worker)
    profile = load_profile()
    with open_store(target, key=KEY) as store:
        start.wait()
        accepted = sum(1 for e in scrub_source(data, profile=profile,
                                               ledger=store, record=True)
                       if isinstance(e, ScrubbedClaim) and not e.rejected)
    results.put(accepted)


def test_exactly_one_claim_per_patient_day_across_8_processes(ledger_target):
    open_store(ledger_target, key=KEY).close()  # created (and migrated) once, up front
    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(WORKERS), context.Queue()
    processes = [context.Process(target=_worker, args=(ledger_target, w, start, results))
                 for w in range(WORKERS)]
    for process in processes:
        process.start()
    accepted = [results.get(timeout=240) for _ in processes]
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    with open_store(ledger_target, key=KEY) as store:
        claims = list(store.export())[1:]
    per_key = Counter((claim["patient"], line[0]) for claim in claims for line in claim["lines"])
    twice = sorted(key for key, count in per_key.items() if count > 1)
    assert len(twice) == 0, f"{len(twice)} patient-day keys accepted more than once"
    assert len(per_key) == KEYS and sum(accepted) == KEYS, accepted
