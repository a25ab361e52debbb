"""A clearinghouse's day of files, scrubbed by `scrub check` and by Spark: claims/s and memory.

    python bench/spark_bench.py                    # 40 files, about 20,000 claims
    python bench/spark_bench.py --files 8 --claims 200 --masters local[2]

``make_day`` writes the day (also used by tests/test_spark.py): half the files
come from bench/gen837.py (837P and 837I by turns), the other half are later
submissions of the same patients on the same days (a new interchange control
number and new claim ids, same services), so every patient-day of a first file
is met again in another file: the cross-file day context a clearinghouse's
run has to get right.

Each tool runs in its own process; "s" is its wall time (start-up included:
Spark's JVM takes about 20 s of it here), "claims/s" claims over that, "peak
RSS" the largest process's (getrusage RUSAGE_CHILDREN: the JVM for Spark) and,
for Spark, the largest Python worker's (as its tasks report it).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def make_day(folder: str | os.PathLike, files: int = 40, claims: int = 500, seed: int = 1
             ) -> list[Path]:
    """Write ``files`` 837s of ``claims`` claims each into ``folder``; return their paths."""
    from gen837 import generate

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    firsts = (files + 1) // 2
    for number in range(firsts):
        path = folder / f"day-{number:03d}.x12"
        generate(path, claims, "P" if number % 2 == 0 else "I", seed=seed + number,
                 claims_per_transaction=max(1, claims // 2))
        made.append(path)
    for number in range(files - firsts):
        made.append(_again(made[number], folder / f"day-{firsts + number:03d}.x12"))
    return made


def _again(first: Path, path: Path) -> Path:
    """``first`` sent again later: another interchange control number, other CLM01s."""
    text = first.read_text()
    isa = re.search(r"^ISA(.)(?:[^~]*?\1){12}(\d{9})\1", text)
    assert isa is not None, first
    separator, control = isa.group(1), isa.group(2)
    later = f"{(int(control) + 500_000) % 999_999_999:09d}"
    text = text.replace(f"{separator}{control}{separator}", f"{separator}{later}{separator}", 1)
    iea = f"IEA{separator}1{separator}"
    text = text.replace(f"{iea}{control}", f"{iea}{later}")
    text = re.sub(r"(~\s*CLM\*[PI]\d{3})C", r"\1L", text)
    path.write_text(text)
    return path


def _timed(command: list[str], env: dict[str, str] | None = None) -> tuple[float, int, str]:
    """Wall seconds, peak RSS (KiB) of the largest child process, and standard output."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if done.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(command[:4])} ...: exit {done.returncode}\n{done.stderr}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return seconds, peak if peak > before else 0, done.stdout


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=40)
    ap.add_argument("--claims", type=int, default=500, help="claims per file (default 500)")
    ap.add_argument("--masters", nargs="+", default=["local[1]", "local[2]"])
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="spark-bench-") as work:
        paths = [str(p) for p in make_day(Path(work) / "in", args.files, args.claims)]
        total = args.files * args.claims
        seconds, peak, _ = _timed([sys.executable, "-m", "scrubber", "check", "--no-ledger",
                                   "--format", "json", "-q", *paths])
        rows.append({"tool": "scrub check (one process)", "s": seconds, "peak_kib": peak})
        for master in args.masters:
            out = Path(work) / f"out-{master}"
            seconds, peak, text = _timed([sys.executable, "-m", "scrubber.spark", *paths,
                                          "--out", str(out), "--master", master, "--json"])
            summary = json.loads(text.strip().splitlines()[-1])
            assert summary["claims"] == total, summary
            rows.append({"tool": f"Spark {master}", "s": seconds, "peak_kib": peak,
                         "worker_kib": summary["worker_peak_kib"]})
    print(f"{args.files} files, {total} claims")
    print("| tool | s | claims/s | peak RSS MB | Python worker peak MB |")
    print("|---|---:|---:|---:|---:|")
    for row in rows:
        worker = f"{row['worker_kib'] / 1024:.0f}" if "worker_kib" in row else ""
        print(f"| {row['tool']} | {row['s']:.1f} | {total / row['s']:.0f} | "
              f"{row['peak_kib'] / 1024:.0f} | {worker} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
