"""Creating the files we write (reports, acknowledgements, reasons): never through a link.

Reports and acknowledgements carry PHI and land in folders other people may be
able to write to (a shared drop folder, an ``--277ca`` directory). Opening an
existing name with ``O_TRUNC`` would follow a symbolic link planted there and
overwrite its target with PHI. So a file is always created afresh: whatever
holds the name is unlinked first (a link is removed, never followed), and the
new file is opened with ``O_CREAT | O_EXCL | O_NOFOLLOW``, which refuses any
name that reappeared in between instead of writing through it.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Literal, TextIO, overload

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | \
    getattr(os, "O_CLOEXEC", 0)
_ATTEMPTS = 3  # a name planted again between unlink and open this often is an attack


def create_private(path: str | os.PathLike) -> int:
    """A new, empty, owner-only (0600) file at ``path``, as a raw descriptor.

    Whatever held the name before (a file of an earlier run, a planted link)
    is replaced, not written through. A directory at ``path`` raises
    IsADirectoryError; a name that keeps coming back raises FileExistsError.
    """
    for _ in range(_ATTEMPTS):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        try:
            fd = os.open(path, _CREATE, 0o600)
        except FileExistsError:
            continue
        os.fchmod(fd, 0o600)  # the umask may have taken bits; never more than the owner's
        return fd
    raise FileExistsError(errno.EEXIST, "the name keeps being taken while we write it",
                          os.fspath(path))


@overload
def open_private(path: str | os.PathLike, mode: Literal["w"] = "w") -> TextIO: ...
@overload
def open_private(path: str | os.PathLike, mode: Literal["wb"]) -> BinaryIO: ...


def open_private(path: str | os.PathLike, mode: str = "w") -> TextIO | BinaryIO:
    """Create ``path`` afresh, owner-only, never through a link; a file object in ``mode``.

    ``mode`` is "w" (UTF-8 text) or "wb".
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"open_private writes new files only, not mode {mode!r}")
    fd = create_private(path)
    if mode == "wb":
        return os.fdopen(fd, "wb")
    return os.fdopen(fd, "w", encoding="utf-8")


def write_private(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to a new owner-only file at ``path`` (see ``create_private``)."""
    with open_private(path, "wb") as out:
        out.write(data)


@contextmanager
def staged(target: str | os.PathLike) -> Iterator[tuple[Path, list[bool]]]:
    """A new owner-only file beside ``target`` to write, renamed onto it when the block
    ends well (fsynced first): the file is whole or absent, never half written.

    The block sets ``keep[0]`` False to have nothing at ``target`` instead (a file of an
    earlier run there is removed too). A failure removes the temporary file.
    """
    path = Path(target)
    stage = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    os.close(create_private(stage))
    keep = [True]
    try:
        yield stage, keep
    except BaseException:
        stage.unlink(missing_ok=True)
        raise
    if keep[0]:
        with open(stage, "rb+") as done:
            os.fsync(done.fileno())
        os.replace(stage, path)
    else:
        stage.unlink(missing_ok=True)
        path.unlink(missing_ok=True)


class SharedReader:
    """Reads a seekable file from a position of its own, whatever else reads the same
    handle: a tokenizer streams through it while its caller reads byte ranges."""

    def __init__(self, handle: BinaryIO):
        self.handle = handle
        self.position = handle.tell()

    def read(self, size: int = -1) -> bytes:
        here = self.handle.tell()
        self.handle.seek(self.position)
        data = self.handle.read(size)
        self.position = self.handle.tell()
        self.handle.seek(here)
        return data

