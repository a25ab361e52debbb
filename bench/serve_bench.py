"""Load figure of ``scrub serve``: requests/s and p50/p99 latency, 1 and 4 workers.

    python bench/serve_bench.py [--claims 100] [--requests 200] [--clients 8]
    python bench/serve_bench.py --clients 16 --requests 96 --workers 1 4 \\
        --endpoints submissions --check-runs 0 --trees /work/main . --pairs 2

The second form alternates source trees (each server runs with PYTHONPATH set
to its tree) in one run, a round per ``--pairs``, and gives the server
processes' CPU per request and the ledger's write transactions per request
with their mean queue wait, lock hold and the holder thread's CPU inside it
(traced by scrubber.ledger.sqlite when the tree has the trace; these do not
depend on the machine's load as latency does). The last line gives p50/p99.

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
from collections.abc import Iterable
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


def load(base: str, path: Path, endpoint: str, requests: int, clients: int, *,
         warm: bool = True) -> dict:
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
        if warm:
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


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes so far (Linux /proc; 0 for one that is gone)."""
    total = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def _transactions(trace: Path, since: int) -> dict:
    """The ledger's write transactions traced after line ``since`` (scrubber.ledger.sqlite
    TRACE_ENV): how many, and their mean wait, hold and holder CPU in ms."""
    rows = [tuple(map(float, line.split()))
            for line in trace.read_text().splitlines()[since:]] if trace.exists() else []
    if not rows:
        return {"transactions": 0}
    n = len(rows)
    return {"transactions": n, "wait_ms": sum(r[0] for r in rows) / n,
            "hold_ms": sum(r[1] for r in rows) / n, "hold_cpu_ms": sum(r[2] for r in rows) / n}


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def serve_rows(tree: Path, label: str, path: Path, folder: Path, workers: int,
               args: argparse.Namespace) -> list[dict]:
    """One ``scrub serve`` of ``tree``'s code (PYTHONPATH) with ``workers``; its rows."""
    from servekit import children, served

    run = folder / f"{label}-w{workers}-{time.monotonic_ns()}"
    run.mkdir()
    trace = run / "ledger-trace.txt"
    saved = {name: os.environ.get(name) for name in ("PYTHONPATH", "SCRUBBER_LEDGER_TRACE")}
    os.environ["PYTHONPATH"] = str(tree)
    os.environ["SCRUBBER_LEDGER_TRACE"] = str(trace)  # a tree without the trace ignores it
    rows = []
    try:
        with served(run, "--workers", str(workers), "--ledger", str(run / "ledger.sqlite"),
                    "--retention-days", "0", ready_within=600) as server:
            base = server.base
            pids = [server.process.pid, *children(server.process.pid)]
            for endpoint in args.endpoints:
                url = f"/v1/{endpoint}"
                load(base, path, url, args.clients * 2, args.clients)  # warm
                since, cpu = _lines(trace), _cpu_seconds(pids)
                figures = load(base, path, url, args.requests, args.clients, warm=False)
                used = _cpu_seconds(pids) - cpu
                figures["cpu_ms_per_request"] = used * 1000 / figures["requests"]
                figures["load_average"] = os.getloadavg()[0]
                queue = _transactions(trace, since)
                queue["per_request"] = queue["transactions"] / figures["requests"]
                rows.append({"how": f"`POST {url}`, {label}, {workers} worker"
                                    f"{'s' if workers > 1 else ''}, {args.clients} clients",
                             "tree": label, "workers": workers, "endpoint": endpoint,
                             **figures, "ledger": queue})
                print(rows[-1], file=sys.stderr, flush=True)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claims", type=int, default=100)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--check-runs", type=int, default=30,
                        help="`scrub check` and `check_files` loops (0: none)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--endpoints", nargs="+", default=["validate", "submissions"],
                        choices=["validate", "submissions"])
    parser.add_argument("--trees", type=Path, nargs="+", default=[HERE.parent],
                        help="source trees to serve from, alternated (default: this one)")
    parser.add_argument("--pairs", type=int, default=1,
                        help="rounds of the trees, alternated in one run")
    args = parser.parse_args(argv)

    from servekit import generated

    rows = []
    labels = [f"{tree.name}@{_head(tree)}" for tree in args.trees]
    with tempfile.TemporaryDirectory(prefix="serve-bench-") as tmp:
        folder = Path(tmp)
        os.environ["XDG_STATE_HOME"] = str(folder / "state")
        path = generated(folder / "batch.x12", args.claims, seed=7)
        size = path.stat().st_size
        for _ in range(args.pairs):
            for workers in args.workers:
                for tree, label in zip(args.trees, labels, strict=True):
                    rows += serve_rows(tree.resolve(), label, path, folder, workers, args)
        if args.check_runs > 0:
            ledger = folder / "check-ledger.sqlite"
            rows.append({"how": "`scrub check --format json` in a loop (a process per file)",
                         **check_loop(path, ledger, args.check_runs)})
            rows.append({"how": "`check_files` in a loop (one process, no HTTP)",
                         **library_loop(path, ledger, args.requests)})
    load_average = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\n{args.claims}-claim 837P ({size:,} bytes), {os.cpu_count()} CPUs, load average "
          f"{load_average} at the end\n")
    print("| how | load | requests | requests/s | p50 ms | p99 ms | CPU ms/request "
          "| ledger writes/request | wait ms | hold ms | hold CPU ms |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        queue = row.get("ledger", {})
        cells = [f"{row['load_average']:.1f}" if "load_average" in row else "",
                 str(row["requests"]), f"{row['per_second']:.1f}", f"{row['p50_ms']:.0f}",
                 f"{row['p99_ms']:.0f}",
                 f"{row['cpu_ms_per_request']:.0f}" if "cpu_ms_per_request" in row else "",
                 f"{queue['per_request']:.2f}" if "per_request" in queue else "",
                 *(f"{queue[k]:.1f}" if k in queue else ""
                   for k in ("wait_ms", "hold_ms", "hold_cpu_ms"))]
        print(f"| {row['how']} | {' | '.join(cells)} |")
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    (out / "serve-last-run.json").write_text(json.dumps(
        {"claims": args.claims, "bytes": size, "clients": args.clients,
         "load_average": os.getloadavg(), "rows": rows}, indent=2))
    summary = []
    for label in labels:
        for workers in args.workers:
            mine = [r for r in rows if r.get("tree") == label and r["workers"] == workers
                    and r["endpoint"] == "submissions"]
            if mine:
                summary.append(f"{label} {workers}w: p50 "
                               f"{_mean(r['p50_ms'] for r in mine):.0f} ms p99 "
                               f"{_mean(r['p99_ms'] for r in mine):.0f} ms")
    if summary:
        print(f"\nPOST /v1/submissions, {args.clients} clients, mean of {args.pairs} run(s): "
              + "; ".join(summary))
    return 0


def _mean(values: Iterable[float]) -> float:
    items = list(values)
    return sum(items) / len(items)


def _head(tree: Path) -> str:
    """The tree's commit, short, with "+" when it has changes not committed."""
    try:
        head = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(tree), "status", "--porcelain",
                                "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"
    return head + ("+" if dirty else "")


if __name__ == "__main__":
    raise SystemExit(main())
