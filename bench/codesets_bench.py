"""Code sets: what the index costs to build and open, and what the code checks cost per claim.

    python bench/codesets_bench.py [--claims 20000] [--repeat 3]

Steps, in this process:

- build: ``load_codesets`` of the bundled ICD-10-CM release into an empty cache
  folder (read the library's code list, index, rename), then open it again;
- scrub: the core's scrub over a generated 837P and 837I (bench/gen837.py),
  with every rule but the code-set pack, then with every rule (the bundled
  release, as out of the box); CPU time, the two interleaved, best of
  ``--repeat`` each. The difference per claim is the cost of the code checks.

Prints a Markdown table and writes the figures to bench/out/codesets-last-run.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))


def index_costs(cache: Path) -> dict:
    from scrubber.codesets import load_codesets

    start = time.perf_counter()
    built = load_codesets(cache_dir=cache)
    build_s = time.perf_counter() - start
    start = time.perf_counter()
    opened = load_codesets(cache_dir=cache)
    open_s = time.perf_counter() - start
    assert built.built and not opened.built
    return {"build_s": build_s, "open_s": open_s, "index_mb": built.path.stat().st_size / 1e6}


def scrub_seconds(path: Path, with_codesets: bool) -> tuple[float, int, dict]:
    """CPU seconds of one scrub (the machine is shared: wall time would measure the others)."""
    from scrubber.core import Scrubber
    from scrubber.options import ScrubOptions
    from scrubber.rules.engine import Engine
    from scrubber.rules.findings import ScrubbedClaim
    from scrubber.rules.profile import load_profile
    from scrubber.rules.registry import all_rules

    profile = load_profile()
    rules = [r for r in all_rules()
             if with_codesets or r.check.__module__ != "scrubber.rules.packs.codesets"]
    engine = Engine(profile, rules)
    claims, found = 0, {}
    start = time.process_time()
    scrubber = Scrubber(ScrubOptions(profile=profile, conformance=False), engine=engine)
    for event in scrubber.events(path):
        if event.__class__ is ScrubbedClaim:
            claims += 1
            for finding in event.findings:
                found[finding.rule] = found.get(finding.rule, 0) + 1
    return time.process_time() - start, claims, found


def main(argv=None) -> int:
    from gen837 import generate

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--claims", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    out: dict = {"claims": args.claims}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        out["index"] = index_costs(folder / "cache")
        for kind in ("P", "I"):
            path = folder / f"bench-837{kind.lower()}.x12"
            generate(path, args.claims, kind=kind, seed=7)
            without = with_sets = float("inf")
            for _ in range(args.repeat):  # interleaved, best of each: noise hits both alike
                seconds, claims, _ = scrub_seconds(path, False)
                without = min(without, seconds)
                seconds, _, found = scrub_seconds(path, True)
                with_sets = min(with_sets, seconds)
            out[f"837{kind}"] = {
                "claims": claims, "without_s": without, "with_s": with_sets,
                "us_per_claim": (with_sets - without) / claims * 1e6,
                "overhead_pct": (with_sets / without - 1) * 100,
                "codeset_findings": {k: v for k, v in found.items()
                                     if k.startswith(("dx-", "hcpcs-", "cpt-"))}}
    (HERE / "out").mkdir(exist_ok=True)
    (HERE / "out" / "codesets-last-run.json").write_text(json.dumps(out, indent=2))
    index = out["index"]
    print(f"index: build {index['build_s']:.2f} s, open {index['open_s'] * 1e3:.1f} ms, "
          f"{index['index_mb']:.1f} MB\n")
    print("| kind | claims | without code sets (CPU s) | with (CPU s) | cost per claim (us) "
          "| overhead |")
    print("|---|---|---|---|---|---|")
    for kind in ("837P", "837I"):
        row = out[kind]
        print(f"| {kind} | {row['claims']} | {row['without_s']:.2f} | {row['with_s']:.2f} | "
              f"{row['us_per_claim']:.1f} | {row['overhead_pct']:.1f}% |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
