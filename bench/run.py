"""Benchmark our reader and `scrub check` against pyx12's validator, in one run.

    python bench/run.py                        # both kinds; about 4-6 minutes on 2 cores
    python bench/run.py --kind P --claims 100000 --pyx12-claims 3000 --big-mb 1000

Steps:
1. Generate (bench/gen837.py, cached in bench/out/, regenerated when the
   generator changes) per kind: a "pyx12 file" of --pyx12-claims claims and a
   "main file" of --claims claims; plus one 837P of about --big-mb MB.
2. Time every tool in its own process through bench/measure.py, so the peak
   RSS reported is that tool's own (getrusage RUSAGE_CHILDREN in the wrapper):
   - pyx12:  pyx12.x12n_document.x12n_document(params(), path, ...) (must return True)
   - reader: sum(1 for e in scrubber.model.read(path) if type(e).__name__ == 'ClaimRecord')
             (each claim's CLM read; its lines and other loops are built when first used)
   - built:  the same, and every claim's lines, dates, providers and segments built
             (claim.lines), as any consumer that looks at the lines pays for
   - ig:     scrubber.ig.check(path): the implementation-guide check alone (guides loaded
             before the clock starts)
   - scrub:  scrub check FILE --format json --jobs 1 > /dev/null (default settings, with a
             fresh empty claim ledger per run so runs do not see each other): one core
   - scrub-j2: the same with --jobs 2 (main files only): two worker processes
   - scrub-data (with --with-data): scrub, with the edit packs' reference files
             (bench/edit_data.py: synthetic PPRRVU, add-on code, CLIA, NPPES (--nppes-rows,
             or --nppes FILE), PECOS and NUCC files in the published layouts, their indexes
             built before the clock starts), so every rule of the fee-schedule, add-on,
             place and provider packs runs; "x scrub" is its time over scrub's
   - split:  a bare bytes.split tokenizer (1 MiB chunks, split on ~ then *)
   pyx12 manages ~300 claims/s, so it only reads the pyx12 file; every other tool
   reads that same file too, and "x pyx12" is pyx12's wall time over the tool's
   wall time on the same file. On the main file (which pyx12 does not read) "x pyx12"
   is the tool's MB/s over pyx12's MB/s on its file: start-up is amortised there, as
   in a real batch.
3. Memory flatness: the reader's peak RSS on the 837P main file (~20 MB) and on
   the --big-mb file (read, and read with every claim built); with --big-scrub,
   also the whole scrub's (--jobs 1 and --jobs 2) on the --big-mb file.

The fast tools (reader, built, split) run --repeat times; the fastest run is shown
and every run's work time is kept in bench/out/last-run.json.

"s" is wall time of the whole process (interpreter start-up and imports
included); "work s" is the time the tool itself reported for its loop (imports
excluded), where it can report one, "work MB/s" the file's size over it, and
"x work" the same-file ratio of those.
Results also go to bench/out/last-run.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out"
PY = sys.executable
sys.path.insert(0, str(HERE))

from gen837 import generate  # noqa: E402

DATA_ARGS: list[str] = []  # scrub check options naming the edit packs' files (--with-data)

READER = r"""
import json, sys, time
t0 = time.perf_counter()
import scrubber.model as m
t1 = time.perf_counter()
build = sys.argv[2] == "build"  # also build each claim's lines, dates, providers, segments
n = 0
for e in m.read(sys.argv[1]):
    if type(e).__name__ == 'ClaimRecord':
        n += 1
        if build:
            e.claim.lines
t2 = time.perf_counter()
print(json.dumps({"claims": n, "import_s": t1 - t0, "work_s": t2 - t1}))
"""

PYX12 = r"""
import io, json, logging, sys, time
log = logging.getLogger('pyx12'); log.addHandler(logging.NullHandler()); log.propagate = False
import pyx12.params, pyx12.x12n_document
t1 = time.perf_counter()
ok = pyx12.x12n_document.x12n_document(pyx12.params.params(), sys.argv[1], io.StringIO(),
                                       None, None, io.StringIO())
t2 = time.perf_counter()
print(json.dumps({"ok": bool(ok), "work_s": t2 - t1}))
"""

IG = r"""
import json, sys, time
from scrubber.ig import check, load_guides
load_guides()
t1 = time.perf_counter()
report = check(sys.argv[1])
t2 = time.perf_counter()
print(json.dumps({"ok": report.accepted, "work_s": t2 - t1}))
"""

SPLIT = r"""
import json, sys, time
t1 = time.perf_counter()
claims = segments = 0
rest = b""
with open(sys.argv[1], "rb") as f:
    while chunk := f.read(1 << 20):
        parts = (rest + chunk).split(b"~")
        rest = parts.pop()
        for seg in parts:
            elements = seg.strip().split(b"*")
            segments += 1
            if elements[0] == b"CLM":
                claims += 1
if rest.strip():
    segments += 1
t2 = time.perf_counter()
print(json.dumps({"claims": claims, "segments": segments, "work_s": t2 - t1}))
"""


def scrub_command() -> list[str]:
    """The installed console script next to this interpreter, else the module."""
    exe = Path(PY).parent / "scrub"
    if exe.exists():
        return [str(exe)]
    found = shutil.which("scrub")
    return [found] if found else [PY, "-m", "scrubber"]


def gen_fingerprint() -> str:
    return hashlib.sha256((HERE / "gen837.py").read_bytes()).hexdigest()[:16]


def make(name: str, claims: int, kind: str, seed: int) -> tuple[Path, dict]:
    """Generate bench/out/NAME unless the same generator already wrote it."""
    path = OUT / name
    meta_path = path.with_suffix(".json")
    want = {"claims": claims, "kind": kind, "seed": seed, "generator": gen_fingerprint()}
    if path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if all(meta.get(k) == v for k, v in want.items()) \
                and meta.get("bytes") == path.stat().st_size:
            return path, meta
    start = time.perf_counter()
    counts = generate(path, claims, kind, seed=seed)
    counts["gen_s"] = time.perf_counter() - start
    meta = {**counts, **want}
    meta_path.write_text(json.dumps(meta))
    print(f"  generated {name}: {counts['bytes'] / 1e6:.1f} MB, {claims} claims, "
          f"{counts['lines']} lines in {counts['gen_s']:.1f} s", flush=True)
    return path, meta


def measure(tool: str, path: Path) -> dict:
    """Run TOOL on PATH in a fresh process via measure.py; return its figures."""
    with tempfile.TemporaryDirectory(dir=OUT) as tmp:
        result_file = Path(tmp) / "result.json"
        stdout_file = Path(tmp) / "stdout"
        wrapper = [PY, str(HERE / "measure.py"), str(result_file)]
        if tool in ("reader", "built"):
            wrapper += ["--stdout", str(stdout_file), "--", PY, "-c", READER, str(path),
                        "build" if tool == "built" else "stream"]
        elif tool == "pyx12":
            wrapper += ["--stdout", str(stdout_file), "--", PY, "-c", PYX12, str(path)]
        elif tool == "split":
            wrapper += ["--stdout", str(stdout_file), "--", PY, "-c", SPLIT, str(path)]
        elif tool == "ig":
            wrapper += ["--stdout", str(stdout_file), "--", PY, "-c", IG, str(path)]
        elif tool in ("scrub", "scrub-j2", "scrub-data"):
            state = Path(tmp) / "state"  # a fresh, empty claim ledger for this run
            wrapper += ["--stdout", os.devnull, "--env", f"XDG_STATE_HOME={state}"]
            if tool == "scrub-data":  # indexes in a cache of their own, built by a warm-up
                wrapper += ["--env", f"XDG_CACHE_HOME={OUT / 'data-cache'}"]
            wrapper += ["--", *scrub_command(), "check", str(path), "--format", "json",
                        "--jobs", "2" if tool == "scrub-j2" else "1",
                        *(DATA_ARGS if tool == "scrub-data" else ())]
        else:
            raise ValueError(tool)
        env = dict(os.environ)
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        subprocess.run(wrapper, check=True, cwd=ROOT, env=env)
        result = json.loads(result_file.read_text())
        if not tool.startswith("scrub"):
            text = stdout_file.read_text().strip()
            if result["rc"] != 0 or not text:
                raise RuntimeError(f"{tool} failed on {path.name}: {result['stderr_tail']}")
            result.update(json.loads(text.splitlines()[-1]))
        elif result["rc"] not in (0, 1):  # 0 all accepted, 1 some rejected, 2 unreadable/usage
            raise RuntimeError(f"scrub check exited {result['rc']}: {result['stderr_tail']}")
    result.pop("stderr_tail", None)
    return result


def measure_best(tool: str, path: Path, repeat: int) -> dict:
    """The fastest of ``repeat`` runs of a fast tool (one run of pyx12 or scrub)."""
    if tool not in ("reader", "built", "split", "ig") or repeat <= 1:
        return measure(tool, path)
    runs = [measure(tool, path) for _ in range(repeat)]
    best = min(runs, key=lambda r: r["wall_s"])
    best["runs"] = [r.get("work_s") for r in runs]
    return best


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--claims", type=int, default=50000,
                    help="claims in each main file (default 50000, ~20 MB 837P)")
    ap.add_argument("--pyx12-claims", type=int, default=3000,
                    help="claims in the file pyx12 reads (default 3000)")
    ap.add_argument("--kind", choices=("P", "I", "both"), default="both")
    ap.add_argument("--big-mb", type=float, default=200,
                    help="size of the 837P for the memory check (0 skips)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--skip-scrub", action="store_true", help="leave out scrub check")
    ap.add_argument("--big-scrub", action="store_true",
                    help="also scrub the --big-mb file (--jobs 1 and 2) for its peak RSS")
    ap.add_argument("--with-data", action="store_true",
                    help="also scrub with the edit packs' reference files (scrub-data) and "
                         "compare with scrub")
    ap.add_argument("--nppes-rows", type=int, default=200_000,
                    help="rows of the synthetic NPPES file --with-data writes (default "
                         "200000; the real file has about 8 million: bench/gen_nppes.py)")
    ap.add_argument("--nppes", type=Path, default=None,
                    help="with --with-data, this NPPES file instead (a full-size one)")
    ap.add_argument("--repeat", type=int, default=3,
                    help="runs of each fast tool (reader, built, split); the fastest is shown, "
                         "all are in last-run.json (default 3: this machine's timings vary "
                         "by a third from run to run)")
    a = ap.parse_args(argv)

    OUT.mkdir(exist_ok=True)
    kinds = ("P", "I") if a.kind == "both" else (a.kind,)
    started = time.time()
    info: dict[str, Any] = {  # the run's circumstances, written to last-run.json
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "loadavg_start": os.getloadavg(),
        "scrub": scrub_command(),
        "argv": sys.argv[1:],
    }
    print(f"python {info['python']}, {info['cpus']} CPUs, "
          f"load average {info['loadavg_start'][0]:.2f}", flush=True)
    rows: list[dict] = []
    header = (f"{'tool':<8} {'file':<26} {'MB':>7} {'claims':>8} {'s':>7} {'work s':>7} "
              f"{'MB/s':>7} {'work MB/s':>9} {'claims/s':>9} {'peak MB':>8} {'x pyx12':>8} "
              f"{'x work':>7}")

    def record(tool: str, path: Path, meta: dict, res: dict, base: dict | None,
               is_base: bool = False, rate: dict | None = None) -> dict:
        mb = path.stat().st_size / 1e6
        claims = res.get("claims", meta["claims"])
        if claims != meta["claims"]:
            print(f"  !! {tool} counted {claims} claims in {path.name}, "
                  f"generator wrote {meta['claims']}")
        wall = res["wall_s"]
        row = {"tool": tool, "file": path.name, "mb": mb, "claims": claims, "seconds": wall,
               "work_s": res.get("work_s"), "mb_s": mb / wall, "claims_s": claims / wall,
               "work_mb_s": mb / res["work_s"] if res.get("work_s") else None,
               "peak_rss_mb": res["peak_rss_mb"], "rc": res["rc"],
               "user_s": res["user_s"], "sys_s": res["sys_s"],
               "x_pyx12": (base["seconds"] / wall) if base else None, "x_pyx12_work": None}
        if rate is not None:  # a file pyx12 did not read: the ratio of the MB/s rates
            row["x_pyx12"] = row["mb_s"] / rate["mb_s"]
        if is_base:
            row["x_pyx12"] = row["x_pyx12_work"] = 1.0
        elif base and row["work_s"]:
            row["x_pyx12_work"] = base["work_s"] / row["work_s"]
        if res.get("runs"):
            row["work_s_runs"] = res["runs"]
        rows.append(row)
        work = f"{row['work_s']:7.2f}" if row["work_s"] is not None else f"{'-':>7}"
        work_mb = f"{row['work_mb_s']:9.2f}" if row["work_mb_s"] else f"{'-':>9}"
        ratio = f"{row['x_pyx12']:7.1f}x" if row["x_pyx12"] else f"{'-':>8}"
        wratio = f"{row['x_pyx12_work']:6.1f}x" if row["x_pyx12_work"] else f"{'-':>7}"
        print(f"{tool:<8} {path.name:<26} {mb:7.1f} {claims:8d} {wall:7.2f} {work} "
              f"{row['mb_s']:7.2f} {work_mb} {row['claims_s']:9.0f} {row['peak_rss_mb']:8.0f} "
              f"{ratio} {wratio}",
              flush=True)
        if row.get("work_s_runs") and None not in row["work_s_runs"]:
            runs = ", ".join(f"{w:.2f}" for w in row["work_s_runs"])
            print(f"{'':<8} work s of its {len(row['work_s_runs'])} runs: {runs}", flush=True)
        return row

    if a.with_data and not a.skip_scrub:
        from edit_data import write

        DATA_ARGS[:] = write(OUT / "data", a.nppes_rows, a.nppes, a.seed)
    tools = ["reader", "built", "ig"] + ([] if a.skip_scrub else ["scrub"]) \
        + (["scrub-data"] if DATA_ARGS else []) + ["split"]
    main_tools = tools + ([] if a.skip_scrub else ["scrub-j2"])
    mains: dict[str, tuple[Path, dict]] = {}
    for kind in kinds:
        print(f"\n837{kind}:", flush=True)
        small, small_meta = make(f"837{kind}-{a.pyx12_claims}c-s{a.seed}.x12", a.pyx12_claims,
                                 kind, a.seed)
        big, big_meta = make(f"837{kind}-{a.claims}c-s{a.seed}.x12", a.claims, kind, a.seed)
        mains[kind] = (big, big_meta)
        print(header)
        res = measure("pyx12", small)
        if not res.get("ok"):
            raise SystemExit(f"pyx12 rejected {small} -- the generator is broken")
        base = record("pyx12", small, small_meta, res, None, is_base=True)
        if DATA_ARGS:
            measure("scrub-data", small)  # untimed: builds the indexes once
        for tool in tools:
            record(tool, small, small_meta, measure_best(tool, small, a.repeat), base)
        for tool in main_tools:
            record(tool, big, big_meta, measure_best(tool, big, a.repeat), None, rate=base)
        jobs = {r["tool"]: r["seconds"] for r in rows
                if r["file"] == big.name and r["tool"] in ("scrub", "scrub-j2")}
        if len(jobs) == 2:
            print(f"scrub --jobs 2 on {big.name}: {jobs['scrub'] / jobs['scrub-j2']:.2f}x "
                  "--jobs 1", flush=True)
        with_data = {r["tool"]: r for r in rows
                     if r["file"] == big.name and r["tool"] in ("scrub", "scrub-data")}
        if len(with_data) == 2:
            slower = with_data["scrub-data"]["seconds"] / with_data["scrub"]["seconds"]
            print(f"scrub with the edit packs' data on {big.name}: {slower:.2f}x the time "
                  f"(peak RSS {with_data['scrub-data']['peak_rss_mb']:.0f} MB against "
                  f"{with_data['scrub']['peak_rss_mb']:.0f} MB)", flush=True)

    flat = None
    if a.big_mb:
        print("\nmemory flatness (reader, 837P):", flush=True)
        if "P" in mains:
            mid, mid_meta = mains["P"]
        else:
            mid, mid_meta = make(f"837P-{a.claims}c-s{a.seed}.x12", a.claims, "P", a.seed)
        per_claim = mid_meta["bytes"] / mid_meta["claims"]
        n = max(1, int(a.big_mb * 1e6 / per_claim))
        huge, huge_meta = make(f"837P-{n}c-s{a.seed}.x12", n, "P", a.seed)
        mid_row = next((r for r in rows if r["tool"] == "reader" and r["file"] == mid.name), None)
        print(header)
        if mid_row is None:
            mid_row = record("reader", mid, mid_meta, measure_best("reader", mid, a.repeat), None)
        huge_row = record("reader", huge, huge_meta, measure_best("reader", huge, a.repeat), None)
        built_row = record("built", huge, huge_meta, measure("built", huge), None)
        flat = {"small_file": mid.name, "small_mb": mid_row["mb"],
                "small_peak_mb": mid_row["peak_rss_mb"],
                "big_file": huge.name, "big_mb": huge_row["mb"],
                "big_peak_mb": huge_row["peak_rss_mb"],
                "big_built_peak_mb": built_row["peak_rss_mb"]}
        if a.big_scrub and not a.skip_scrub:
            for tool in ("scrub", "scrub-j2", *(["scrub-data"] if DATA_ARGS else [])):
                flat[f"big_{tool}_peak_mb"] = record(tool, huge, huge_meta,
                                                     measure(tool, huge), None)["peak_rss_mb"]
        print(f"reader peak RSS: {flat['small_peak_mb']:.0f} MB on {flat['small_mb']:.0f} MB, "
              f"{flat['big_peak_mb']:.0f} MB on {flat['big_mb']:.0f} MB "
              f"({flat['big_built_peak_mb']:.0f} MB building every claim)", flush=True)

    info["loadavg_end"] = os.getloadavg()
    info["total_s"] = time.time() - started
    print(f"\ntotal {info['total_s']:.0f} s; load average at end {info['loadavg_end'][0]:.2f}")
    result = {"info": info, "rows": rows, "flat": flat}
    (OUT / "last-run.json").write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
