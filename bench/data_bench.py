"""What the installed reference data costs a run: scrub data add once, then every open.

    python bench/data_bench.py [--pairs 2000000] [--runs 9] [--keep DIR]

Writes synthetic files in CMS's layouts, at the sizes of CMS's (never CMS data): two
ICD-10-CM fiscal years and an April update (about 74,000 codes each, zipped with their
addenda), two HCPCS quarters (about 8,000 codes each, zipped with the record layout),
the practitioner PTP edits in four zips (``--pairs`` rows, bench/ncci_bench.py's
tables), an MUE table and a CPT list. Then, with $XDG_DATA_HOME and $XDG_CACHE_HOME in
a temporary folder:

- add: ``scrub data add`` of every file (recognise, check, index, copy into the store);
- open: in a fresh process (the rule packs imported first, as every run does),
  ``with_installed(ScrubOptions())``: read the catalog, stat the stored files, open
  every index; then the ``Scrubber`` over those options (the engine names the releases
  in use); against the same with nothing installed. The median of ``--runs`` processes;
- check: the wall time of ``scrub check`` of a one-claim file, with the data installed
  and without (median of ``--runs``).

Prints a Markdown table and writes bench/out/data-last-run.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

OPEN = """
import time
from scrubber.core import Scrubber, ScrubOptions
from scrubber.data import with_installed
from scrubber.rules.registry import all_rules
all_rules()  # every run imports the rule packs
started = time.perf_counter()
options = with_installed(ScrubOptions())
opened = time.perf_counter() - started
started = time.perf_counter()
Scrubber(options).close()  # the engine, the profile, the bundled release ...
print(opened, time.perf_counter() - started, len(options.resources.named))
"""

def icd_rows(rng: random.Random, count: int, extra: int = 0) -> list[str]:
    """About ``count`` synthetic codes in the tabular order layout: categories and their
    codes, a header wherever a longer code extends one."""
    rows, n = [], 0
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    while n < count + extra:
        category = f"{rng.choice(letters)}{rng.randrange(10)}{rng.randrange(10)}"
        rows.append((category, 0))
        for child in range(rng.randrange(3, 10)):
            code = f"{category}{child}"
            leaves = rng.randrange(0, 4)
            rows.append((code, 0 if leaves else 1))
            rows += [(f"{code}{leaf}", 1) for leaf in range(leaves)]
        n = len(rows)
    unique = sorted(dict.fromkeys(rows))
    return [f"{i:05d} {code:<7} {flag} {'SYNTHETIC ' + code:<60} Synthetic {code}\r\n"
            for i, (code, flag) in enumerate(unique, 1)]


def icd_zip(path: Path, member: str, lines: list[str]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(member, "".join(lines))
        zf.writestr(member.replace("order", "order_addenda"), "Add:      A000    Synthetic\r\n")
    return path


def hcpcs_zip(path: Path, year: int, month: str, rng: random.Random, count: int) -> Path:
    records = []
    for n in range(count):
        code = f"{'ABCEGHJKLMPQRSTV'[n % 16]}{n // 16:04d}"
        head = f"{code:<5}{'00100':<5}3{'SYNTHETIC ' + code:<80}{'SYNTHETIC':<28}"
        terminated = "20241231" if rng.random() < 0.03 else ""
        records.append((head.ljust(268) + f"{'20200101':<8}{'20200101':<8}{terminated:<8}N")
                       .ljust(320) + "\r\n")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"HCPC{year}_{month}_ANWEB_v1.txt", "".join(records))
        zf.writestr(f"HCPC{year}_recordlayout.txt", "HCPCS RECORD LAYOUT (synthetic)\r\n")
        zf.writestr("README.txt", "Synthetic\r\n")
    return path


def write_files(folder: Path, pairs: int, seed: int) -> list[Path]:
    from ncci_bench import write_tables

    rng = random.Random(seed)
    files = [icd_zip(folder / "2026-code-descriptions-tabular-order.zip",
                     "icd10cm_order_2026.txt", icd_rows(rng, 74_000)),
             icd_zip(folder / "april-1-2026-code-descriptions-tabular-order.zip",
                     "icd10cm-order-April-2026.txt", icd_rows(rng, 74_000)),
             icd_zip(folder / "2027-code-descriptions-tabular-order.zip",
                     "icd10cm_order_2027.txt", icd_rows(rng, 74_500)),
             hcpcs_zip(folder / "october-2026-alpha-numeric-hcpcs-file.zip", 2026, "OCT", rng,
                       8_000),
             hcpcs_zip(folder / "july-2026-alpha-numeric-hcpcs-file.zip", 2026, "JUL", rng,
                       7_900)]
    tables = write_tables(folder, pairs, seed)
    files += [Path(p) for p in tables["ptp"] + tables["mue"]]
    cpt = folder / "cpt-2026.txt"
    cpt.write_text("CODE\tDESCRIPTION\r\n" + "".join(f"{n:05d}\tsynthetic\r\n"
                                                     for n in range(10_000, 20_000)))
    return [*files, cpt]


def run(args: list[str], env: dict) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(args)} failed: {done.stderr}")
    return seconds, done.stdout


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=2_000_000)
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--seed", type=int, default=25)
    ap.add_argument("--keep", type=Path, help="Keep the files and the store in this folder.")
    args = ap.parse_args(argv)
    base = args.keep or Path(tempfile.mkdtemp(prefix="scrub-data-bench-"))
    base.mkdir(parents=True, exist_ok=True)
    try:
        downloads = base / "downloads"
        downloads.mkdir(exist_ok=True)
        files = write_files(downloads, args.pairs, args.seed)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_CACHE_HOME": str(base / "cache"),
               "XDG_STATE_HOME": str(base / "state")}
        empty = {**env, "XDG_DATA_HOME": str(base / "empty")}
        full = {**env, "XDG_DATA_HOME": str(base / "data")}
        scrub = [sys.executable, "-m", "scrubber"]
        add_seconds, _ = run([*scrub, "data", "add", *map(str, files)], full)
        claim = base / "one.x12"
        shutil.copy(ROOT / "fixtures" / "837p-single.x12", claim)
        # one warm-up each (the bundled release's index, the compiled guides)
        for environment in (empty, full):
            run([*scrub, "check", str(claim), "--no-ledger", "-q"], environment)
        opened: dict[str, list[float]] = {name: [] for name in ("empty", "full")}
        built: dict[str, list[float]] = {name: [] for name in ("empty", "full")}
        checked: dict[str, list[float]] = {name: [] for name in ("empty", "full")}
        kinds = 0
        for _ in range(args.runs):
            for name, environment in (("empty", empty), ("full", full)):
                _, out = run([sys.executable, "-c", OPEN], environment)
                seconds, scrubber_seconds, count = out.split()
                opened[name].append(float(seconds))
                built[name].append(float(scrubber_seconds))
                kinds = max(kinds, int(count))
                checked[name].append(run([*scrub, "check", str(claim), "--no-ledger", "-q"],
                                         environment)[0])
        result = {
            "files": len(files), "bytes": sum(f.stat().st_size for f in files),
            "pairs": args.pairs, "add_seconds": round(add_seconds, 1), "kinds": kinds,
            "open_ms": {k: round(statistics.median(v) * 1000, 1) for k, v in opened.items()},
            "scrubber_ms": {k: round(statistics.median(v) * 1000, 1) for k, v in built.items()},
            "check_ms": {k: round(statistics.median(v) * 1000) for k, v in checked.items()},
            "runs": args.runs, "cpus": os.cpu_count()}
        report(result)
        out = HERE / "out"
        out.mkdir(exist_ok=True)
        (out / "data-last-run.json").write_text(json.dumps(result, indent=1) + "\n")
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)
    return 0


def report(r: dict) -> None:
    added = r["open_ms"]["full"] - r["open_ms"]["empty"]
    print(f"{r['files']} files, {r['bytes'] / 1e6:.0f} MB as downloaded ({r['pairs']:,} PTP "
          f"rows); {r['kinds']} kinds of data installed\n")
    print("| step | nothing installed | all installed | added |")
    print("|---|---|---|---|")
    print(f"| scrub data add (once) | | {r['add_seconds']} s | |")
    print(f"| open the installed data (median of {r['runs']}) | {r['open_ms']['empty']} ms | "
          f"{r['open_ms']['full']} ms | {added:.1f} ms |")
    print(f"| then the Scrubber (engine, profile, bundled release) | "
          f"{r['scrubber_ms']['empty']} ms | {r['scrubber_ms']['full']} ms | "
          f"{r['scrubber_ms']['full'] - r['scrubber_ms']['empty']:.1f} ms |")
    print(f"| scrub check, one claim (median of {r['runs']}) | {r['check_ms']['empty']} ms | "
          f"{r['check_ms']['full']} ms | {r['check_ms']['full'] - r['check_ms']['empty']} ms |")


if __name__ == "__main__":
    sys.exit(main())
