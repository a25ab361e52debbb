"""Ledger: claims recorded per second on each store, with 1 and with 8 writers.

    python bench/ledger_bench.py [--claims 2000] [--writers 1,8] [--pg URL]

Each writer is its own process with its own generated 837P (bench/gen837.py,
a different seed each, so different providers and patients) and its own
connection; all start at a barrier on a fresh ledger. Three ways, each timed
from the barrier until the writer's last claim:

- ``scrub``: the core's scrub without a ledger (the floor: no ledger work at all);
- ``scrub+record``: the scrub with ``record=True`` on the store, every batch of
  claims decided inside a transaction holding its patient-day keys, the
  accepted ones recorded before commit (what an intake worker does);
- ``record``: store.record(submission, claims) of already scrubbed claims
  (the store's write path alone).

Figures are claims per second summed over the writers. PostgreSQL runs in a
fresh schema of the server at --pg (default $SCRUBBER_TEST_PG_URL or
postgresql://postgres@127.0.0.1:5432/postgres), dropped afterwards; it is
skipped when the server cannot be reached. Prints a Markdown table and writes
bench/out/ledger-last-run.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

KEY = b"\x42" * 32
MODES = ("scrub", "scrub+record", "record")


def _writer(mode: str, target: str, path: str, start, results) -> None:
    from scrubber.core import Scrubber
    from scrubber.ledger import open_store
    from scrubber.options import ScrubOptions
    from scrubber.rules.context import submission_id
    from scrubber.rules.findings import ScrubbedClaim
    from scrubber.rules.profile import load_profile

    def scrub_source(path: str, *, profile, ledger=None, record: bool = False) -> list:
        options = ScrubOptions(profile=profile, conformance=False, record=record)
        with Scrubber(options, ledger=ledger) as scrubber:
            return list(scrubber.events(path))

    profile = load_profile()
    store = open_store(target, key=KEY)
    claims: list[ScrubbedClaim] = []
    if mode == "record":  # scrubbed before the clock starts: only the writes are timed
        claims = [e for e in scrub_source(path, profile=profile)
                  if isinstance(e, ScrubbedClaim)]
    start.wait()
    began = time.perf_counter()
    if mode == "record":
        count = store.record(submission_id(claims[0].record), claims).recorded_claims
    else:
        ledger = store if mode == "scrub+record" else None
        count = sum(1 for e in scrub_source(path, profile=profile, ledger=ledger,
                                            record=ledger is not None)
                    if isinstance(e, ScrubbedClaim))
    results.put((count, time.perf_counter() - began))
    store.close()


def run(mode: str, target: str, files: list[str]) -> dict:
    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(len(files)), context.Queue()
    processes = [context.Process(target=_writer, args=(mode, target, f, start, results))
                 for f in files]
    for process in processes:
        process.start()
    done = [results.get(timeout=1800) for _ in processes]
    for process in processes:
        process.join()
    claims = sum(count for count, _ in done)
    seconds = max(elapsed for _, elapsed in done)
    return {"claims": claims, "seconds": round(seconds, 3),
            "claims_per_second": round(claims / seconds)}


def _pg_schema(url: str):
    """A fresh schema on the server (URL with its search_path) and a function dropping it."""
    try:
        import psycopg

        admin = psycopg.connect(url, autocommit=True, connect_timeout=5)
    except Exception as exc:  # no driver or no server: PostgreSQL is skipped
        print(f"PostgreSQL skipped: {type(exc).__name__}: {exc}", file=sys.stderr)
        return None, None
    schema = f"scrub_bench_{uuid.uuid4().hex[:10]}"
    admin.execute(f"CREATE SCHEMA {schema}")
    joiner = "&" if "?" in url else "?"

    def drop() -> None:
        admin.execute(f"DROP SCHEMA {schema} CASCADE")
        admin.close()

    return f"{url}{joiner}options=-csearch_path%3D{schema}", drop


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--claims", type=int, default=2000, help="claims per writer")
    parser.add_argument("--writers", default="1,8", help="writer counts, comma-separated")
    parser.add_argument("--pg", default=os.environ.get(
        "SCRUBBER_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    args = parser.parse_args(argv)
    from gen837 import generate

    writer_counts = [int(n) for n in args.writers.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="ledger-bench-") as scratch:
        files = []
        for seed in range(max(writer_counts)):
            path = os.path.join(scratch, f"w{seed}.x12")
            generate(path, args.claims, "P", seed=seed + 1)
            files.append(path)
        for store in ("sqlite", "postgresql"):
            for writers in writer_counts:
                for mode in MODES:
                    floor = [r for r in rows if r["mode"] == mode == "scrub"
                             and r["writers"] == writers]
                    if floor:  # the same with or without a store: measured once
                        rows.append({**floor[0], "store": store})
                        continue
                    if store == "postgresql":
                        target, drop = _pg_schema(args.pg)
                        if target is None:
                            break
                    else:
                        target, drop = os.path.join(scratch, f"{uuid.uuid4().hex}.sqlite"), None
                    if mode != "scrub":
                        from scrubber.ledger import open_store

                        open_store(target, key=KEY).close()
                    try:
                        figures = run(mode, target, files[:writers])
                    finally:
                        if drop is not None:
                            drop()
                    rows.append({"store": store, "writers": writers, "mode": mode, **figures})
                    print(f"{store:<10} {writers} writer(s) {mode:<13} "
                          f"{figures['claims_per_second']:>7} claims/s", file=sys.stderr)
    print("| store | writers | scrub (no ledger) | scrub+record | record only |")
    print("|---|---:|---:|---:|---:|")
    for store in ("sqlite", "postgresql"):
        for writers in writer_counts:
            cells = {r["mode"]: r["claims_per_second"] for r in rows
                     if r["store"] == store and r["writers"] == writers}
            if cells:
                print(f"| {store} | {writers} | " + " | ".join(
                    str(cells.get(mode, "-")) for mode in MODES) + " |")
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    (out / "ledger-last-run.json").write_text(json.dumps(
        {"claims_per_writer": args.claims, "cpus": os.cpu_count(), "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
