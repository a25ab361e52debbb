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

def peak_kib() -> int:
    """This process's own high-water mark: /proc's VmHWM belongs to the memory map that
    exec made, whereas ru_maxrss keeps the parent's (a 190 MB pytest) across fork+exec."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


print("maxrss_kib", peak_kib(), file=sys.stderr)
sys.exit(code)
