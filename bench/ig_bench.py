"""Implementation-guide check: ours against pyx12's validator, on the same generated file.

    python bench/ig_bench.py [--claims 1000] [--kind P|I] [--repeat 3]

Generates an 837 with bench/gen837.py (tests/mutate.py's builder if that is
missing), checks it with ``scrubber.ig.check`` and with pyx12's
``x12n_document`` (JSON and 999 output on, as a front end would run it), and
prints MB/s, claims/s and the ratio. Map loading is timed apart from
validation: ours loads the cached compiled tables, pyx12 parses its XML maps.
Both sides get their best of ``--repeat`` runs, alternated, because the
machine is shared. Both verdicts are printed: a benchmark of a checker that
rejects the file would be meaningless.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def _generate(path: Path, claims: int, kind: str, seed: int) -> None:
    try:
        sys.path.insert(0, str(HERE))
        from gen837 import generate
    except ImportError:
        sys.path.insert(0, str(HERE.parent / "tests"))
        from mutate import build_837

        data = b"".join(build_837(kind, seed + i, 3) for i in range(max(1, claims // 3)))
        path.write_bytes(data)
        return
    generate(str(path), claims, kind, seed)


def _ours(data: bytes) -> tuple[float, bool]:
    from scrubber.ig import check

    start = time.perf_counter()
    report = check(data)
    return time.perf_counter() - start, report.accepted


def _pyx12(data: bytes, params) -> tuple[float, bool]:
    import pyx12.x12n_document

    start = time.perf_counter()
    ok = pyx12.x12n_document.x12n_document(params, io.StringIO(data.decode("ascii")), io.StringIO(),
                                           None, fd_json=io.StringIO())
    return time.perf_counter() - start, ok


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--claims", type=int, default=1000)
    ap.add_argument("--kind", choices=("P", "I"), default="P")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args(argv)

    logging.getLogger("pyx12").addHandler(logging.NullHandler())
    logging.getLogger("pyx12").propagate = False
    import pyx12.map_if
    import pyx12.params

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.x12"
        _generate(path, args.claims, args.kind, args.seed)
        data = path.read_bytes()

    from scrubber.ig.compile import load_guides

    start = time.perf_counter()
    load_guides()
    our_load = time.perf_counter() - start

    params = pyx12.params.params()
    start = time.perf_counter()
    loaded = {}
    for name in ("x12.control.00501.xml",
                 "837.5010.X222.A1.xml" if args.kind == "P" else "837Q3.I.5010.X223.A1.xml"):
        loaded[name] = pyx12.map_if.load_map_file(name, params, None)
    pyx12_load = time.perf_counter() - start
    original = pyx12.map_if.load_map_file
    pyx12.map_if.load_map_file = lambda name, param, map_path=None: (
        loaded.get(name) or original(name, param, map_path))

    ours, theirs = [], []
    for _ in range(args.repeat):
        t, our_ok = _ours(data)
        ours.append(t)
        t, their_ok = _pyx12(data, params)
        theirs.append(t)
    pyx12.map_if.load_map_file = original

    mb = len(data) / 1e6
    best_ours, best_theirs = min(ours), min(theirs)
    figures = {
        "kind": args.kind, "claims": args.claims, "bytes": len(data),
        "ours": {"seconds": round(best_ours, 4), "mb_per_s": round(mb / best_ours, 3),
                 "claims_per_s": round(args.claims / best_ours), "load_seconds": round(our_load, 3),
                 "accepted": our_ok},
        "pyx12": {"seconds": round(best_theirs, 4), "mb_per_s": round(mb / best_theirs, 3),
                  "claims_per_s": round(args.claims / best_theirs),
                  "load_seconds": round(pyx12_load, 3), "accepted": their_ok},
        "ratio": round(best_theirs / best_ours, 1),
        "cpu": os.cpu_count(),
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    print(f"837{args.kind}, {args.claims} claims, {len(data):,} bytes (best of {args.repeat})")
    for name in ("ours", "pyx12"):
        f = figures[name]
        print(f"  {name:6s} {f['mb_per_s']:8.3f} MB/s {f['claims_per_s']:8d} claims/s "
              f"({f['seconds']:.3f} s; maps {f['load_seconds']:.3f} s; accepted={f['accepted']})")
    print(f"  ratio  {figures['ratio']}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
