"""A clearinghouse's day of files, scrubbed by `scrub check` and by Spark: claims/s and memory.

    python bench/spark_bench.py                    # 40 files, about 20,000 claims
    python bench/spark_bench.py --files 8 --claims 200 --masters local[2]
    python bench/spark_bench.py --one-day 1001     # one patient, 1,001 claims, one day
    python bench/spark_bench.py --one-file 20000   # one 837P of 20,000 claims (bench/gen837.py)
    python bench/spark_bench.py --one-file 20000 --trees /work/main . --rounds 2
                                                   # each tree's scrubber by turns (PYTHONPATH)

``one_day`` writes the worst day context there is: one patient's claims all on
one date, so each claim's context is every other claim's lines.

``make_day`` writes the day (also used by tests/test_spark.py): half the files
come from bench/gen837.py (837P and 837I by turns), the other half are later
submissions of the same patients on the same days (a new interchange control
number and new claim ids, same services), so every patient-day of a first file
is met again in another file: the cross-file day context a clearinghouse's
run has to get right.

Each tool runs in its own process; "wall s" is its wall time (start-up
included: Spark's JVM takes 8-30 s of it here, by load), "job s" the time of the
Spark job itself (from planning the pieces to the tables and acks written,
as ``scrub batch --json`` reports it); memory is each kind of process's peak
RSS, sampled from /proc (see ``_timed``). "CPU s" is user + system time of the
tool's whole process tree, exact: this process is the tree's subreaper
(``PR_SET_CHILD_SUBREAPER``), so Spark's JVM and Python workers, which their
parents leave unreaped, are reaped here and counted (``time scrub batch`` counts
the Python driver only). "x check" is over ``scrub check`` of the same input
with the same tree, in the same round: on a loaded machine compare the CPU ratios.
Both tools run ``--no-ledger`` (before 2026-12-07 the Spark runs used the default ledger).
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
from typing import Any

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


def one_day(path: str | os.PathLike, claims: int = 1001, seed: int = 1) -> Path:
    """One 837P whose ``claims`` claims are one patient's, all on one date (new CLM01s).

    The guide allows 100 claims (loop 2300) per patient loop, so the patient's
    loop is repeated, 100 claims each, with its HL renumbered.
    """
    from gen837 import generate

    path = Path(path)
    generate(path, 1, "P", seed=seed)
    text = path.read_text()
    clm = text.index("CLM*")
    hl = text.rindex("HL*", 0, clm)
    start = text.rindex("~", 0, hl) + 1  # the patient's HL, with the terminator's newline
    end = text.rindex("~", 0, text.index("SE*", clm)) + 1
    head_end = text.rindex("~", 0, clm) + 1
    head, block = text[start:head_end], text[head_end:end]
    hl_id = int(head.split("*")[1])
    claim_id = block.split("*", 2)[1]
    loops = []
    for first in range(0, claims, 100):
        number = hl_id + len(loops)
        loops.append(head.replace(f"HL*{hl_id}*", f"HL*{number}*", 1) + "".join(
            block.replace(claim_id, f"{claim_id[:-5]}{n:05d}")
            for n in range(first, min(first + 100, claims))))
    body = "".join(loops)
    se = re.search(r"SE\*(\d+)\*", text[end:])
    assert se is not None
    total = int(se.group(1)) + body.count("~") - text[start:end].count("~")
    tail = text[end:].replace(f"SE*{se.group(1)}*", f"SE*{total}*", 1)
    path.write_text(text[:start] + body + tail)
    return path


def _subreaper() -> None:
    """Make this process the subreaper of its descendants: orphans come to it, not to init,
    so their CPU time reaches RUSAGE_CHILDREN when they are reaped (Linux only)."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def _reap() -> None:
    """Wait for every child left (the orphaned JVM ends when its Python driver has)."""
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


def _timed(command: list[str], env: dict[str, str] | None = None
           ) -> tuple[float, dict[str, int], str]:
    """Wall seconds, peak RSS (KiB) by kind of process, and standard output of ``command``;
    the CPU time of its whole process tree goes in the peaks as "cpu" (milliseconds).

    The process tree is sampled every 0.2 s from /proc: "driver" is the command's
    own process, "jvm" Spark's Java process (driver and, in local mode, the
    executor), "worker" the largest Python worker, "total" the whole tree at once.
    """
    _subreaper()
    _reap()  # what an earlier command left is not this one's
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    cpu: dict[int, int] = {}  # pid -> clock ticks of CPU last seen
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err, \
            subprocess.Popen(command, stdout=out, stderr=err, text=True, env=env) as proc:
        peaks = {"driver": 0, "jvm": 0, "worker": 0, "total": 0}
        while proc.poll() is None:
            _sample(proc.pid, peaks, cpu)
            time.sleep(0.2)
        seconds = time.perf_counter() - start
        _reap()  # the JVM and the Python workers, orphaned to this process
        err.seek(0)
        errors = err.read()
        out.seek(0)
        text = out.read()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    peaks["cpu"] = round(1000 * (after.ru_utime + after.ru_stime
                                 - before.ru_utime - before.ru_stime))
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(command[:4])} ...: exit {proc.returncode}\n{errors}")
    return seconds, peaks, text


def _sample(root: int, peaks: dict[str, int], cpu: dict[int, int]) -> None:
    parents: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
                parents[int(entry)] = int(fields[1])
                ticks[int(entry)] = int(fields[11]) + int(fields[12])  # utime + stime
            except (OSError, ValueError, IndexError):
                continue
    tree, total = {root}, 0
    for _ in range(6):  # the JVM's Python workers are a few generations down
        tree |= {pid for pid, parent in parents.items() if parent in tree}
    for pid in tree:
        if pid in ticks:
            cpu[pid] = max(cpu.get(pid, 0), ticks[pid])
        try:
            with open(f"/proc/{pid}/status") as status:
                fields = dict(line.split(":", 1) for line in status if ":" in line)
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                words = cmdline.read().split(b"\0")
        except OSError:
            continue
        rss = int(fields.get("VmRSS", "0 kB").split()[0])
        total += rss
        if pid == root:
            kind = "driver"
        elif words[0].endswith(b"java"):
            kind = "jvm"
        elif b"pyspark.daemon" in words or b"pyspark.worker" in words:
            kind = "worker"
        else:
            continue
        peaks[kind] = max(peaks[kind], rss)
    peaks["total"] = max(peaks["total"], total)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=40)
    ap.add_argument("--claims", type=int, default=500, help="claims per file (default 500)")
    ap.add_argument("--masters", nargs="+", default=["local[1]", "local[2]"])
    ap.add_argument("--one-day", type=int, metavar="CLAIMS",
                    help="instead: one file of one patient's CLAIMS claims on one day")
    ap.add_argument("--one-file", type=int, metavar="CLAIMS",
                    help="instead: one 837P of CLAIMS claims (bench/gen837.py, seed 1)")
    ap.add_argument("--trees", nargs="+", metavar="DIR",
                    help="scrubber checkouts to run by turns (PYTHONPATH); default: installed")
    ap.add_argument("--rounds", type=int, default=1, help="times to run each tree (by turns)")
    ap.add_argument("--work", help="folder for the inputs and outputs (default: a temporary one)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="spark-bench-") as temporary:
        work = Path(args.work or temporary)
        (work / "in").mkdir(parents=True, exist_ok=True)
        if args.one_day:
            paths = [str(one_day(work / "in" / "one-day.x12", args.one_day))]
            args.files, total = 1, args.one_day
        elif args.one_file:
            from gen837 import generate

            path = work / "in" / f"p{args.one_file}.x12"
            generate(path, args.one_file, "P", seed=1)
            paths, args.files, total = [str(path)], 1, args.one_file
        else:
            paths = [str(p) for p in make_day(work / "in", args.files, args.claims)]
            total = args.files * args.claims
        rows = []
        for round_ in range(args.rounds):
            for tree in args.trees or [None]:
                rows += _round(paths, total, work, args.masters, tree,
                               f" #{round_ + 1}" if args.rounds > 1 else "")
    print(f"{args.files} files, {total} claims; load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores (CPU s: the whole process tree; compare the x ratios)")
    print("| tool | CPU s | CPU x check | wall s | wall x check | claims/s | job s | "
          "claims/s (job) | driver MB | JVM MB | Python worker MB | all processes MB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row, check in rows:
        job = f"{row['job']:.1f} | {total / row['job']:.0f}" if "job" in row else "- | -"
        cpu = row["cpu"] / 1000
        print(f"| {row['tool']} | {cpu:.1f} | {row['cpu'] / max(check['cpu'], 1):.2f} | "
              f"{row['s']:.1f} | {row['s'] / check['s']:.2f} | {total / row['s']:.0f} | {job} | "
              + " | ".join(f"{row[k] / 1024:.0f}" if row[k] else "-"
                           for k in ("driver", "jvm", "worker", "total")) + " |")
    return 0


def _round(paths: list[str], total: int, work: Path, masters: list[str], tree: str | None,
           label: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """``scrub check`` and each master's ``scrub batch`` of ``paths`` with ``tree``'s scrubber;
    each row with the check's row, which its ratios are over."""
    env = None
    name = ""
    if tree is not None:
        env = {**os.environ, "PYTHONPATH": str(Path(tree).resolve())}
        name = f" [{Path(tree).resolve().name}]"
    rows: list[dict[str, Any]] = []
    seconds, peaks, _ = _timed([sys.executable, "-m", "scrubber", "check", "--no-ledger",
                                "--format", "json", "-q", *paths], env)
    rows.append({"tool": f"scrub check{name}{label}", "s": seconds, **peaks})
    for master in masters:
        out = work / f"out-{master}"
        seconds, peaks, text = _timed([sys.executable, "-m", "scrubber.spark", *paths,
                                       "--out", str(out), "--master", master, "--no-ledger",
                                       "--json"], env)
        summary = json.loads(text.strip().splitlines()[-1])
        assert summary["claims"] == total, summary
        rows.append({"tool": f"Spark {master}{name}{label}", "s": seconds,
                     "job": summary["seconds"], **peaks})
    return [(row, rows[0]) for row in rows]


if __name__ == "__main__":
    sys.exit(main())
