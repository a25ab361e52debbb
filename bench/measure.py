"""Run one command and report its wall time and peak RSS as JSON.

    python bench/measure.py RESULT.json [--stdout FILE] [--env K=V ...] -- CMD ARG...

The command runs as this process's only child, so
``getrusage(RUSAGE_CHILDREN).ru_maxrss`` is the peak resident set of that
command (the largest of it and anything it waited for), not of the benchmark
driver. Wall time includes interpreter start-up and imports.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time


def main(argv: list[str]) -> int:
    if "--" not in argv:
        raise SystemExit(__doc__)
    sep = argv.index("--")
    opts, cmd = argv[:sep], argv[sep + 1:]
    result_path = opts[0]
    stdout_path = None
    env = dict(os.environ)
    i = 1
    while i < len(opts):
        if opts[i] == "--stdout":
            stdout_path = opts[i + 1]
            i += 2
        elif opts[i] == "--env":
            key, _, value = opts[i + 1].partition("=")
            env[key] = value
            i += 2
        else:
            raise SystemExit(f"unknown option {opts[i]}")
    out = open(stdout_path, "wb") if stdout_path else None
    start = time.perf_counter()
    proc = subprocess.run(cmd, stdout=out, stderr=subprocess.PIPE, env=env)
    wall = time.perf_counter() - start
    if out:
        out.close()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(result_path, "w") as fh:
        json.dump({
            "rc": proc.returncode,
            "wall_s": wall,
            "peak_rss_mb": usage.ru_maxrss / 1024,  # Linux: kilobytes
            "user_s": usage.ru_utime,
            "sys_s": usage.ru_stime,
            "stderr_tail": proc.stderr.decode("utf-8", "replace")[-2000:],
        }, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
