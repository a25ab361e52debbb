"""Slow clients against ``scrub serve``: /healthz latency while slow-loris connections are held.

    python bench/serve_slow_clients.py [--connections 2000] [--seconds 20] [--fd-limit 1024]
                                       [--workers 1]

Starts a real ``scrub serve`` (no ledger) whose file-descriptor limit is
``--fd-limit`` (soft and hard: the service may raise its soft limit to its
hard one), then a separate process that holds ``--connections`` connections,
each sending a request head one header line a second and never finishing it,
opening again at once any the server closes (``tests/servekit.py``
``SlowClients``). Meanwhile this process asks ``GET /healthz`` on a fresh
connection every 0.25 s for ``--seconds`` and times it from connect to the
last byte. Prints the latencies (p50, p99, max, how many within 1 s) and
what the server's log says it closed; writes
bench/out/serve-slow-last-run.json.

The attacker, the prober and the server share the machine's CPUs; a loaded
machine shows longer times.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "tests"))  # servekit: the server launcher the tests use

PROBE = b"GET /healthz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"


def attack(port: int, connections: int) -> None:
    """Hold ``connections`` slow connections until SIGTERM (run in its own process)."""
    from servekit import SlowClients, descriptors

    stop = False

    def ended(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, ended)
    with descriptors(connections + 256), SlowClients(port, connections) as slow:
        while not stop:
            time.sleep(0.2)
        print(json.dumps({"opened": slow.opened, "answers": dict(slow.answers),
                          "failed_connects": slow.failed_connects}), flush=True)


def probe(port: int, timeout: float = 30.0) -> float | None:
    """Seconds for one /healthz on a fresh connection; None if it failed or timed out."""
    began = time.perf_counter()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(PROBE)
            received = b""
            while chunk := sock.recv(4096):
                received += chunk
    except OSError:
        return None
    return time.perf_counter() - began if received.startswith(b"HTTP/1.1 200") else None


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--fd-limit", type=int, default=1024)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--attack", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.attack:
        attack(args.attack, args.connections)
        return 0

    from servekit import served

    with tempfile.TemporaryDirectory(prefix="serve-slow-") as tmp, \
            served(Path(tmp), "--no-ledger", "--workers", str(args.workers),
                   fd_limit=args.fd_limit) as server:
        before = [probe(server.port) for _ in range(20)]
        attacker = subprocess.Popen(
            [sys.executable, __file__, "--attack", str(server.port), "--connections",
             str(args.connections)], stdout=subprocess.PIPE, text=True)
        time.sleep(3)  # let it open its connections
        times: list[float | None] = []
        end = time.monotonic() + args.seconds
        while time.monotonic() < end:
            times.append(probe(server.port))
            time.sleep(0.25)
        attacker.send_signal(signal.SIGTERM)
        said, _ = attacker.communicate(timeout=60)
        closed = [line.split(" scrubber.serve ", 1)[1] for line in
                  server.log.read_text().splitlines() if "connections closed" in line]
        log_lines = len(server.log.read_text().splitlines())
    answered = [t for t in times if t is not None]
    figures = {
        "connections": args.connections, "fd_limit": args.fd_limit, "workers": args.workers,
        "probes": len(times), "answered": len(answered),
        "within_1s": sum(t <= 1.0 for t in answered),
        "p50_ms": _percentile(answered, 0.5) * 1000 if answered else None,
        "p99_ms": _percentile(answered, 0.99) * 1000 if answered else None,
        "max_ms": max(answered) * 1000 if answered else None,
        "idle_p50_ms": _percentile([t for t in before if t], 0.5) * 1000,
        "attacker": json.loads(said.strip().splitlines()[-1]) if said.strip() else None,
        "server_log_lines": log_lines, "closed": closed,
        "cpus": os.cpu_count(), "load_average": os.getloadavg(),
    }
    print(json.dumps(figures, indent=2))
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    (out / "serve-slow-last-run.json").write_text(json.dumps(figures, indent=2))
    return 0 if figures["answered"] == figures["probes"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
