"""Run scrub in this process and print its peak memory (KiB) on stderr: a memory test's probe.

    python tests/peak_rss.py check FILE ...   (the arguments of ``scrub``)
"""

import resource
import sys

from scrubber.cli import main

code: int | str | None = 0
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print("maxrss_kib", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
sys.exit(code)
