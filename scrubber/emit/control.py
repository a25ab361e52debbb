"""Control numbers for our acknowledgements, never repeated between runs or processes.

A 277CA, 999 or TA1 carries our ISA13/GS06/ST02. Numbers taken from the clock
repeat when two runs (or two watcher workers) start in the same second, and a
receiver may drop an interchange whose control number it has seen. So numbers
come from one per-user counter file, taken in blocks under an exclusive lock:
processes never share a block, and a crash only skips the rest of its block.
Where the counter cannot be kept (no writable state folder, no file locking),
the clock is the fallback, as before.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

from scrubber.paths import private_dir, state_dir

try:
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX
    fcntl = None  # type: ignore[assignment]

LIMIT = 10**9  # ISA13 has nine digits
BLOCK = 100  # numbers reserved at a time


def counter_path() -> Path:
    """$XDG_STATE_HOME/scrubber/ack-control-number (~/.local/state/...), beside the ledger."""
    return state_dir() / "ack-control-number"


def control_numbers(path: str | os.PathLike | None = None, block: int = BLOCK
                    ) -> Iterator[int]:
    """Fresh control numbers (1 to 999,999,999), reserved ``block`` at a time when drawn."""
    path = Path(path) if path is not None else counter_path()
    while True:
        start = _reserve(path, block)
        if start is None:  # no counter to keep: count on from the clock
            start = int(time.time()) % LIMIT or 1
            while True:
                yield start
                start = start % (LIMIT - 1) + 1
        for offset in range(block):
            yield (start - 1 + offset) % (LIMIT - 1) + 1


def _reserve(path: Path, block: int) -> int | None:
    """Take the next block from the counter file; None when it cannot be kept."""
    if fcntl is None:
        return None
    try:
        private_dir(path.parent, own=path.parent == state_dir())
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        text = os.read(fd, 32).decode("ascii", "replace").strip()
        start = int(text) if text.isdigit() and 0 < int(text) < LIMIT else \
            int(time.time()) % LIMIT or 1
        after = (start - 1 + block) % (LIMIT - 1) + 1
        os.lseek(fd, 0, os.SEEK_SET)
        os.ftruncate(fd, 0)
        os.write(fd, f"{after}\n".encode("ascii"))
        os.fsync(fd)
        return start
    except OSError:
        return None
    finally:
        os.close(fd)  # closing releases the lock
