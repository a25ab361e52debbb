"""Load figure of ``scrub serve``: requests/s and p50/p99 latency, 1 and 4 workers.

    python bench/serve_bench.py [--claims 100] [--requests 200] [--clients 8]

Generates one 837P of ``--claims`` claims (bench/gen837.py, fictional data),
starts a real ``scrub serve`` on 127.0.0.1 for each worker count (SQLite
ledger and submission store in a temporary folder), and sends ``--requests``
requests from ``--clients`` concurrent HTTP clients (httpx, one connection
each), first to ``POST /v1/validate`` and then to ``POST /v1/submissions``
(each records the file's accepted claims). The same file then goes through
``scrub check --ledger L --format json`` in a loop of fresh processes (what a
shell script or a cron job pays per file), and through the library's
``check_files`` in one process (the scrub alone, no start-up).

The clients run on the same machine as the server and take CPU from it;
latency is from the client's side (send to last byte). Prints a Markdown
table and writes bench/out/serve-last-run.json.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "tests"))  # servekit: the server launcher the tests use


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _figures(latencies: list[float], elapsed: float) -> dict:
    return {"requests": len(latencies), "per_second": len(latencies) / elapsed,
            "p50_ms": _percentile(latencies, 0.50) * 1000,
            "p99_ms": _percentile(latencies, 0.99) * 1000}


def load(base: str, path: Path, endpoint: str, requests: int, clients: int) -> dict:
    """Send ``requests`` POSTs of ``path`` from ``clients`` threads; their figures."""
    import httpx
    from servekit import auth

    body = path.read_bytes()
    local = threading.local()

    def one(_: int) -> float:
        if not hasattr(local, "client"):
            local.client = httpx.Client(base_url=base, timeout=300)
        start = time.perf_counter()
        answer = local.client.post(endpoint, content=body, headers=auth())
        answer.read()
        if answer.status_code not in (200, 201):
            raise SystemExit(f"{endpoint}: {answer.status_code} {answer.text[:300]}")
        return time.perf_counter() - start

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, range(clients * 2)))  # warm every worker and connection
        start = time.perf_counter()
        latencies = list(pool.map(one, range(requests)))
        elapsed = time.perf_counter() - start
    return _figures(latencies, elapsed)


def check_loop(path: Path, ledger: Path, runs: int) -> dict:
    """``scrub check`` as a fresh process per file, one after the other."""
    latencies = []
    start = time.perf_counter()
    for _ in range(runs):
        began = time.perf_counter()
        subprocess.run([sys.executable, "-m", "scrubber", "check", str(path), "--ledger",
                        str(ledger), "--format", "json"], stdout=subprocess.DEVNULL,
                       check=False)
        latencies.append(time.perf_counter() - began)
    return _figures(latencies, time.perf_counter() - start)


def library_loop(path: Path, ledger: Path, runs: int) -> dict:
    """The same scrub through ``check_files`` in this process: no start-up, no HTTP."""
    from scrubber.api import check_files
    from scrubber.core import ScrubOptions

    options = ScrubOptions(ledger=str(ledger))
    check_files([str(path)], io.StringIO(), fmt="json", options=options)  # warm
    latencies = []
    start = time.perf_counter()
    for _ in range(runs):
        began = time.perf_counter()
        check_files([str(path)], io.StringIO(), fmt="json", options=options)
        latencies.append(time.perf_counter() - began)
    return _figures(latencies, time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claims", type=int, default=100)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--check-runs", type=int, default=30)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4])
    args = parser.parse_args(argv)

    from servekit import generated, running_server

    rows = []
    with tempfile.TemporaryDirectory(prefix="serve-bench-") as tmp:
        folder = Path(tmp)
        os.environ["XDG_STATE_HOME"] = str(folder / "state")
        path = generated(folder / "batch.x12", args.claims, seed=7)
        size = path.stat().st_size
        for workers in args.workers:
            run = folder / f"w{workers}"
            run.mkdir()
            with running_server(run, "--workers", str(workers), "--ledger",
                                str(run / "ledger.sqlite"), "--retention-days", "0") as (base, _):
                for endpoint in ("/v1/validate", "/v1/submissions"):
                    figures = load(base, path, endpoint, args.requests, args.clients)
                    rows.append({"how": f"`POST {endpoint}`, {workers} worker"
                                        f"{'s' if workers > 1 else ''}, {args.clients} clients",
                                 **figures})
                    print(rows[-1], file=sys.stderr)
        ledger = folder / "check-ledger.sqlite"
        rows.append({"how": "`scrub check --format json` in a loop (a process per file)",
                     **check_loop(path, ledger, args.check_runs)})
        rows.append({"how": "`check_files` in a loop (one process, no HTTP)",
                     **library_loop(path, ledger, args.requests)})
    load_average = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\n{args.claims}-claim 837P ({size:,} bytes), {os.cpu_count()} CPUs, load average "
          f"{load_average} at the end\n")
    print("| how | requests | requests/s | p50 ms | p99 ms |")
    print("|---|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row['how']} | {row['requests']} | {row['per_second']:.1f} | "
              f"{row['p50_ms']:.0f} | {row['p99_ms']:.0f} |")
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    (out / "serve-last-run.json").write_text(json.dumps(
        {"claims": args.claims, "bytes": size, "clients": args.clients,
         "load_average": os.getloadavg(), "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
