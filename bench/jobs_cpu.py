"""CPU, peak memory and wall time of each process of ``scrub check --jobs N``.

    python bench/jobs_cpu.py FILE [--jobs 1 2] [--repeat 1] [-- extra scrub args]

Runs ``scrub check FILE --format json --jobs N`` (report to /dev/null, a fresh
empty ledger) for each N in turn (alternated when repeated) and polls /proc for
the run's process tree: each process's user+system CPU and its VmHWM, read
until it ends. Prints one line per run and process, then per N the critical
path (the parent's CPU + the busiest worker's: what an idle machine with N
cores would wait for, roughly) and the wall-clock ratio of every N against
the first. Wall-clock only means something on a quiet machine; the CPU
figures hold under load.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TICK = os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def _sample(pid: int) -> tuple[float, int] | None:
    """(CPU seconds, VmHWM KiB) of one live process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / TICK
        hwm = 0
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    hwm = int(line.split()[1])
        return cpu, hwm
    except (OSError, IndexError, ValueError):
        return None


def run(path: str, jobs: int, extra: list[str], root: Path = ROOT) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, XDG_STATE_HOME=os.path.join(tmp, "state"))
        env["PYTHONPATH"] = str(root) + os.pathsep + env.get("PYTHONPATH", "")
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "scrubber", "check", path,
                                 "--format", "json", "--jobs", str(jobs), *extra],
                                stdout=subprocess.DEVNULL, env=env, cwd=tmp)
        seen: dict[int, tuple[float, int]] = {}
        while proc.poll() is None:
            todo = [proc.pid]
            while todo:
                pid = todo.pop()
                got = _sample(pid)
                if got is not None:  # VmHWM only grows, but a zombie has none left
                    seen[pid] = (got[0], max(got[1], seen.get(pid, (0.0, 0))[1]))
                todo.extend(_children(pid))
            time.sleep(0.05)
        wall = time.perf_counter() - start
    # the parent's own figures come from wait4, exact; the workers' are their last sample
    # (a pool worker idles until the run ends, so the last sample is whole)
    parent = seen.pop(proc.pid, (0.0, 0))
    return {"jobs": jobs, "wall": wall, "rc": proc.returncode, "workers": seen,
            "parent_hwm": parent[1]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file")
    ap.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--root", type=Path, nargs="+", default=[ROOT],
                    help="checkouts to run, alternated (before/after comparisons)")
    args, extra = ap.parse_known_args(argv)
    extra = [a for a in extra if a != "--"]
    walls: dict[int, list[float]] = {}
    for _ in range(args.repeat):
        for jobs, root in [(j, r) for j in args.jobs for r in args.root]:
            before = os.times()
            res = run(args.file, jobs, extra, root)
            after = os.times()
            parent = (after.children_user - before.children_user
                      + after.children_system - before.children_system)
            workers = res["workers"]
            parent -= sum(cpu for cpu, _ in workers.values())  # children's include theirs
            walls.setdefault(jobs, []).append(res["wall"])
            peak = max([hwm for _, hwm in workers.values()], default=0)
            label = f"{root.name} " if len(args.root) > 1 else ""
            print(f"{label}jobs {jobs}: rc {res['rc']} wall {res['wall']:.2f} s, parent CPU "
                  f"{parent:.2f} s, workers CPU "
                  f"{' '.join(f'{cpu:.2f}' for cpu, _ in workers.values()) or '-'} s; "
                  f"total {parent + sum(c for c, _ in workers.values()):.2f} s; critical path "
                  f"~{parent + max([c for c, _ in workers.values()], default=0):.2f} s; "
                  f"peak RSS parent {res['parent_hwm'] / 1024:.0f} MB, workers "
                  f"{peak / 1024:.0f} MB", flush=True)
    first = args.jobs[0]
    for jobs in args.jobs[1:]:
        ratio = min(walls[first]) / min(walls[jobs])
        print(f"wall: --jobs {jobs} is {ratio:.2f}x --jobs {first} (best of {args.repeat}; "
              "meaningful only on a quiet machine)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
