"""Benchmark the scrubber against pyx12 on the same generated files, in one run.

    python bench/run.py                      # defaults: about 3 minutes on 2 cores
    python bench/run.py --claims 100000 --pyx12-claims 3000 --big-mb 1000

Each measurement runs in its own process, so its peak RSS is its own. pyx12's
validator manages about 300 claims a second, so it gets a smaller file, and
our reader and scrub are timed on that same file too: ratios are always
same-file. A second, larger file checks that our memory stays flat.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
sys.path.insert(0, str(HERE))

from gen837 import generate  # noqa: E402


def child(tool: str, path: str) -> None:
    """Run one tool on one file; print seconds, claims and peak RSS as JSON.

    Imports happen before the clock starts: start-up is not what is measured.
    """
    import scrubber.api  # noqa: F401
    import pyx12.x12n_document  # noqa: F401
    start = time.perf_counter()
    claims = 0
    if tool == "reader":
        from scrubber.model import ClaimRecord, read
        claims = sum(1 for e in read(path) if e.__class__ is ClaimRecord)
    elif tool == "scrub":
        from scrubber.api import scrub_events
        from scrubber.emit.json_report import JsonWriter
        from scrubber.rules import ScrubbedClaim
        with open(os.devnull, "w") as sink:
            writer = JsonWriter(sink)
            writer.begin_file(path)
            for event in scrub_events(path):
                claims += event.__class__ is ScrubbedClaim
                writer.event(event)
            writer.end_file()
            writer.close()
    elif tool == "split":
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                for seg in chunk.split(b"~"):
                    seg.split(b"*")
                    claims += seg.startswith(b"\nCLM")
    elif tool == "pyx12":
        import io
        import logging
        import pyx12.params
        import pyx12.x12n_document
        logging.getLogger("pyx12").addHandler(logging.NullHandler())
        logging.getLogger("pyx12").propagate = False
        ok = pyx12.x12n_document.x12n_document(pyx12.params.params(), path, io.StringIO(),
                                               None, None, io.StringIO())
        if not ok:
            raise SystemExit("pyx12 rejected the generated file")
        with open(path, "rb") as f:
            claims = f.read().count(b"\nCLM*")
    else:
        raise SystemExit(f"unknown tool {tool}")
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "claims": claims, "peak_mb": peak}))


def measure(tool: str, path: Path) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", tool, str(path)],
                         check=True, capture_output=True, text=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["mb"] = path.stat().st_size / 1e6
    return result


def make(name: str, claims: int, kind: str) -> Path:
    path = OUT / name
    if not path.exists():
        generate(path, claims, kind, seed=1)
    return path


def claims_for_mb(mb: float, kind: str) -> int:
    probe = OUT / f"probe-{kind}.x12"
    counts = generate(probe, 2000, kind, seed=1)
    probe.unlink()
    return int(mb * 1e6 / (counts["bytes"] / counts["claims"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claims", type=int, default=60000, help="claims in the main file")
    parser.add_argument("--pyx12-claims", type=int, default=2000,
                        help="claims in the file pyx12 and we both read")
    parser.add_argument("--kind", choices=["P", "I", "both"], default="both")
    parser.add_argument("--big-mb", type=float, default=200,
                        help="size of the file for the flat-memory check (0 to skip)")
    parser.add_argument("--child", nargs=2, metavar=("TOOL", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    OUT.mkdir(exist_ok=True)
    kinds = ["P", "I"] if args.kind == "both" else [args.kind]
    rows = []
    print(f"{'tool':<8} {'file':<24} {'MB':>7} {'claims':>8} {'s':>7} {'MB/s':>7} "
          f"{'claims/s':>9} {'peak MB':>8} {'x pyx12':>8}")
    for kind in kinds:
        small = make(f"837{kind}-{args.pyx12_claims}.x12", args.pyx12_claims, kind)
        main_file = make(f"837{kind}-{args.claims}.x12", args.claims, kind)
        base = measure("pyx12", small)
        base_rate = base["mb"] / base["seconds"]
        plan = [("pyx12", small, base), ("reader", small, None), ("scrub", small, None),
                ("split", main_file, None), ("reader", main_file, None),
                ("scrub", main_file, None)]
        for tool, path, result in plan:
            result = result or measure(tool, path)
            rate = result["mb"] / result["seconds"]
            row = dict(tool=tool, file=path.name, **result, mb_s=rate,
                       claims_s=result["claims"] / result["seconds"], ratio=rate / base_rate)
            rows.append(row)
            print(f"{tool:<8} {path.name:<24} {row['mb']:7.1f} {row['claims']:8d} "
                  f"{row['seconds']:7.2f} {rate:7.2f} {row['claims_s']:9.0f} "
                  f"{row['peak_mb']:8.0f} {row['ratio']:7.1f}x", flush=True)
    if args.big_mb:
        big = make(f"837P-{int(args.big_mb)}MB.x12", claims_for_mb(args.big_mb, "P"), "P")
        result = measure("reader", big)
        print(f"\nflat memory: reader on {big.name} ({result['mb']:.0f} MB, {result['claims']} "
              f"claims): peak {result['peak_mb']:.0f} MB, {result['mb'] / result['seconds']:.1f} "
              "MB/s")
        rows.append(dict(tool="reader-big", file=big.name, **result))
    (OUT / "last-run.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
