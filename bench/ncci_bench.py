"""NCCI tables: index build, open and lookup cost, and scrub speed with the tables loaded.

    python bench/ncci_bench.py [--pairs 2000000] [--claims 20000] [--keep DIR]

Generates synthetic tables in the CMS layout into a temporary folder: PTP as
four zipped tab-delimited files (as CMS splits the practitioner edits), with a
notice and headings above the rows, every modifier indicator and some deleted
edits; MUE as one zipped file. The codes of bench/gen837.py are paired among
themselves so the scrub has edits to find. Then, each step in a fresh process
so its time and peak RSS are its own:

- build: ``load_tables`` into an empty cache folder (read, index, rename);
- open: ``load_tables`` again in a new process (cold: imports done, files
  hashed, index opened) and a second time in that process (warm), then the
  cost of a PTP lookup (hits and misses; first time and cached) and an MUE one;
- scrub: the core's scrub (``scrubber.core.Scrubber``) over a generated 837P
  (bench/gen837.py), without tables and with them.

Prints a Markdown table and writes the figures to bench/out/ncci-last-run.json.
The tables are fictional: never CMS data.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

HEADINGS = ("Column 1\tColumn 2\t*=in existence prior to 1996\tEffective Date\t"
            "Deletion Date *=no data\tModifier 0=not allowed 1=allowed 9=not applicable\t"
            "PTP Edit Rationale")
MUE_HEADINGS = ("HCPCS/CPT Code\tPractitioner Services MUE Values\tMUE Adjudication Indicator\t"
                "MUE Rationale")
RATIONALES = tuple(f"Synthetic benchmark rationale {n}: comprehensive and component services"
                   for n in range(12))
MAI = ("1 Line Edit", "2 Date of Service Edit: Policy", "3 Date of Service Edit: Clinical")
PTP_FILES = 4
DAY = date(2026, 6, 1)


def code_pool(rng: random.Random) -> list[str]:
    """About 12,000 CPT/HCPCS-shaped codes, the generator's own first."""
    from gen837 import PORT_CODE, PROCS

    own = [p[0] for p in PROCS] + [PORT_CODE]
    cpt = [f"{n:05d}" for n in rng.sample(range(10000, 99999), 10000)]
    hcpcs = [f"{letter}{n:04d}" for letter in "AGJ" for n in rng.sample(range(0, 9999), 700)]
    return list(dict.fromkeys(own + cpt + hcpcs))


def ptp_line(rng: random.Random, column1: str, column2: str) -> str:
    effective = rng.choice(("19960101", "20100101", "20200401", "20250101", "20270101"))
    deleted = rng.random() < 0.15
    deletion = rng.choice(("20210101", "20260101", "20261001")) if deleted else "*"
    modifier = rng.choices("019", (30, 60, 10))[0]
    prior = "*" if effective == "19960101" else ""
    return (f"{column1}\t{column2}\t{prior}\t{effective}\t{deletion}\t{modifier}\t"
            f"{rng.choice(RATIONALES)}\r\n")


def write_tables(folder: Path, pairs: int, seed: int) -> dict:
    """Write the PTP zips and the MUE zip; return their paths and sizes."""
    rng = random.Random(seed)
    codes = code_pool(rng)
    own = codes[:13]
    ptp = []
    per_file = -(-pairs // PTP_FILES)
    written = 0
    for n in range(1, PTP_FILES + 1):
        path = folder / f"ptp-practitioner-f{n}.zip"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
            with archive.open(f"ptp-practitioner-f{n}.txt", "w") as member:
                out = [f"SYNTHETIC BENCHMARK TABLE - NOT CMS DATA (file {n} of {PTP_FILES})\r\n",
                       HEADINGS + "\r\n"]
                if n == 1:  # a third of the ordered pairs of the generator's codes
                    out += [ptp_line(rng, a, b) for a in own for b in own
                            if a != b and rng.random() < 0.3]
                count = min(per_file, pairs - written) - (len(out) - 2)
                for _ in range(count):
                    out.append(ptp_line(rng, rng.choice(codes), rng.choice(codes)))
                    if len(out) >= 50_000:
                        member.write("".join(out).encode())
                        out = []
                member.write("".join(out).encode())
                written += min(per_file, pairs - written)
        ptp.append(path)
    mue = folder / "mue-practitioner.zip"
    with zipfile.ZipFile(mue, "w", zipfile.ZIP_DEFLATED) as archive:
        rows = [f"{code}\t{rng.choice((1, 1, 2, 3, 4, 10, 30))}\t{rng.choice(MAI)}\t"
                f"{rng.choice(RATIONALES)}" for code in codes]
        archive.writestr("mue-practitioner.txt", "SYNTHETIC BENCHMARK TABLE - NOT CMS DATA\r\n"
                         + MUE_HEADINGS + "\r\n" + "\r\n".join(rows) + "\r\n")
    return {"ptp": [str(p) for p in ptp], "mue": [str(mue)], "codes": codes,
            "ptp_bytes": sum(p.stat().st_size for p in ptp), "mue_codes": len(codes)}


# -- the steps, each run in a child process ---------------------------------------------

def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def step_build(args: dict) -> dict:
    from scrubber.ncci import load_tables

    start = time.perf_counter()
    tables = load_tables(ptp=args["ptp"], mue=args["mue"], cache_dir=args["cache"])
    seconds = time.perf_counter() - start
    assert tables.built and tables.path is not None
    return {"build_s": seconds, "build_peak_mb": _peak_mb(), "rows": tables.counts,
            "index_mb": tables.path.stat().st_size / 1e6}


def step_open(args: dict) -> dict:
    from scrubber.ncci import index, load_tables

    files = [Path(p) for p in args["ptp"] + args["mue"]]
    start = time.perf_counter()
    for path in files:
        index._sha256(path)
    hash_s = time.perf_counter() - start
    start = time.perf_counter()
    tables = load_tables(ptp=args["ptp"], mue=args["mue"], cache_dir=args["cache"])
    cold = time.perf_counter() - start
    assert not tables.built
    start = time.perf_counter()
    load_tables(ptp=args["ptp"], mue=args["mue"], cache_dir=args["cache"])
    warm = time.perf_counter() - start

    rng = random.Random(7)
    codes = args["codes"]
    rows = [tuple(line.split("\t")[:2]) for line in _first_rows(args["ptp"][1], 20_000)]
    hits = rng.sample(rows, 20_000 if len(rows) >= 20_000 else len(rows))
    misses = [(rng.choice(codes), rng.choice(codes)) for _ in range(20_000)]
    out = {"hash_s": hash_s, "open_cold_s": cold, "open_warm_s": warm}
    for name, pairs in (("hit", hits), ("miss", misses)):
        fresh = load_tables(ptp=args["ptp"], mue=args["mue"], cache_dir=args["cache"])
        def look_up(fresh=fresh, pairs=pairs) -> list:
            return [fresh.ptp(a, b, DAY) for a, b in pairs]

        out[f"ptp_{name}_us"] = _per_call(look_up, len(pairs))
        out[f"ptp_{name}_cached_us"] = _per_call(look_up, len(pairs))
    fresh = load_tables(ptp=args["ptp"], mue=args["mue"], cache_dir=args["cache"])
    sample = rng.sample(codes, 5000)
    out["mue_us"] = _per_call(lambda: [fresh.mue(c) for c in sample], len(sample))
    out["open_peak_mb"] = _peak_mb()
    return out


def _first_rows(zip_path: str, count: int) -> list[str]:
    with zipfile.ZipFile(zip_path) as archive:
        with archive.open(archive.namelist()[0]) as fh:
            lines = []
            for n, raw in enumerate(fh):
                if n >= 2:
                    lines.append(raw.decode())
                if len(lines) >= count:
                    break
    return lines


def _per_call(run, calls: int) -> float:
    start = time.perf_counter()
    run()
    return (time.perf_counter() - start) / calls * 1e6


def step_scrub(args: dict) -> dict:
    from scrubber.core import Scrubber
    from scrubber.ncci import load_tables
    from scrubber.options import ScrubOptions
    from scrubber.rules.findings import ScrubbedClaim
    from scrubber.rules.profile import load_profile
    from scrubber.rules.resources import Resources

    profile = load_profile()
    ncci = None
    if args["with_tables"]:
        ncci = load_tables(ptp=args["ptp"], mue=args["mue"], cache_dir=args["cache"])
    path = args["x12"]
    claims = 0
    rules: dict[str, int] = {}
    start = time.perf_counter()
    options = ScrubOptions(profile=profile, conformance=False, resources=Resources.of(ncci=ncci))
    for event in Scrubber(options).events(path):
        if event.__class__ is ScrubbedClaim:
            claims += 1
            for finding in event.findings:
                rules[finding.rule] = rules.get(finding.rule, 0) + 1
    seconds = time.perf_counter() - start
    size = os.path.getsize(path) / 1e6
    return {"scrub_s": seconds, "claims": claims, "mb": size, "mb_s": size / seconds,
            "claims_s": claims / seconds, "findings": rules, "peak_mb": _peak_mb()}


STEPS = {"build": step_build, "open": step_open, "scrub": step_scrub}


def child(step: str, args: dict) -> dict:
    """Run one step in a fresh interpreter and return what it measured."""
    done = subprocess.run([sys.executable, __file__, "--step", step], input=json.dumps(args),
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=2_000_000)
    ap.add_argument("--claims", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3,
                    help="scrub runs per side, alternated (the best is kept)")
    ap.add_argument("--keep", help="write the tables, index and 837 here (kept)")
    ap.add_argument("--step", choices=STEPS, help=argparse.SUPPRESS)
    opts = ap.parse_args(argv)
    if opts.step:
        print(json.dumps(STEPS[opts.step](json.load(sys.stdin))))
        return 0

    from gen837 import generate

    with tempfile.TemporaryDirectory(prefix="ncci-bench-") as scratch:
        folder = Path(opts.keep or scratch)
        folder.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        tables = write_tables(folder, opts.pairs, opts.seed)
        generated = time.perf_counter() - start
        x12 = folder / f"837P-{opts.claims}c-s{opts.seed}.x12"
        generate(str(x12), opts.claims, "P", opts.seed)
        args = {**tables, "cache": str(folder / "cache"), "x12": str(x12)}
        result = {"pairs": opts.pairs, "claims": opts.claims, "tables_s": generated,
                  "ptp_zip_mb": tables["ptp_bytes"] / 1e6, "mue_codes": tables["mue_codes"]}
        result.update(child("build", args))
        result.update(child("open", args))
        for _ in range(opts.repeat):  # alternate the sides, keep each side's best
            for name, flag in (("scrub_without", False), ("scrub_with", True)):
                run = child("scrub", {**args, "with_tables": flag})
                if name not in result or run["scrub_s"] < result[name]["scrub_s"]:
                    result[name] = run
    report(result)
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    (out / "ncci-last-run.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0


def report(r: dict) -> None:
    rows = r["rows"]
    print(f"PTP: {rows['ptp']:,} rows in {PTP_FILES} zips ({r['ptp_zip_mb']:.1f} MB), "
          f"MUE: {rows['mue']:,} codes; generated in {r['tables_s']:.1f} s\n")
    print("| step | figure |\n|---|---:|")
    for name, value in (
            ("index build (read, index, rename)", f"{r['build_s']:.1f} s"),
            ("index build peak RSS", f"{r['build_peak_mb']:.0f} MB"),
            ("index file", f"{r['index_mb']:.0f} MB"),
            ("hash the input files (sha256)", f"{r['hash_s'] * 1000:.0f} ms"),
            ("open, cold (new process, files hashed)", f"{r['open_cold_s'] * 1000:.0f} ms"),
            ("open, warm (same process again)", f"{r['open_warm_s'] * 1000:.0f} ms"),
            ("PTP lookup, pair in the table, first time", f"{r['ptp_hit_us']:.1f} µs"),
            ("PTP lookup, pair not in the table, first time", f"{r['ptp_miss_us']:.1f} µs"),
            ("PTP lookup, cached (same pair again)", f"{r['ptp_hit_cached_us']:.2f} µs"),
            ("MUE lookup, first time", f"{r['mue_us']:.1f} µs"),
            ("open + lookups peak RSS", f"{r['open_peak_mb']:.0f} MB")):
        print(f"| {name} | {value} |")
    print("\n| 837P scrub | claims | MB | s | MB/s | claims/s | peak MB | NCCI findings |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name in ("without", "with"):
        s = r[f"scrub_{name}"]
        found = sum(v for k, v in s["findings"].items() if k in ("ncci-ptp", "mue"))
        print(f"| {name} tables | {s['claims']:,} | {s['mb']:.1f} | {s['scrub_s']:.1f} | "
              f"{s['mb_s']:.2f} | {s['claims_s']:,.0f} | {s['peak_mb']:.0f} | {found:,} |")


if __name__ == "__main__":
    sys.exit(main())
