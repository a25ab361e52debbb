"""Where an 837 comes from: a path, bytes or a binary stream, opened one way for every
reader (the claim walker and the IG check), so both refuse the same inputs in the same words."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import BinaryIO, TypeAlias


class Reopenable:
    """A source that opens afresh for every read (a member of a zip archive ...).

    Subclass it and implement ``open``: a new binary stream each time, or
    ``UnreadableSource`` saying why there is none. Each pass of a scrub reads
    it again, as it reads a path again.
    """

    def open(self) -> BinaryIO:
        raise NotImplementedError


Source: TypeAlias = str | os.PathLike | bytes | bytearray | memoryview | BinaryIO | Reopenable


class UnreadableSource(Exception):
    """The source names no readable file; the message says why, in words for the sender."""


def open_source(source: Source) -> tuple[BinaryIO, bool]:
    """The binary stream to read ``source`` from, and whether the caller must close it.

    Raises ``UnreadableSource`` for a path that is missing, a directory, not a
    regular file or not readable: the caller turns that into its own problem.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        return io.BytesIO(bytes(source)), True
    if isinstance(source, Reopenable):
        return source.open(), True
    if not isinstance(source, (str, os.PathLike)):
        return source, False
    path = Path(os.fspath(source))
    if path.is_dir():
        raise UnreadableSource(f"{path} is a directory, not a file")
    if not path.exists():
        raise UnreadableSource(f"{path} does not exist")
    if not path.is_file():
        raise UnreadableSource(f"{path} is not a regular file")
    try:
        return open(path, "rb"), True
    except OSError as exc:
        raise UnreadableSource(f"{path} cannot be opened: {exc.strerror or exc}") from None
