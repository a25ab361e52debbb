"""Zip and gzip inputs: each 837 inside, read as it is decompressed, named ``archive!member``.

A billing system often sends a day's claims zipped. ``expand`` turns an input
path into the sources to scrub: a zip archive into one source per member (its
folders, hidden files and ``__MACOSX/`` left out), a gzip file into its
content, anything else into itself. A member is a ``Reopenable`` source: each
pass of the scrub (the implementation-guide check and index, then the scrub)
opens it afresh and decompresses it as it reads, so memory stays flat and
nothing is written to disk whatever the member's size.

Before the run, every member is read through once (streamed, the data thrown
away): a member that is encrypted, damaged (a bad CRC, a cut-off stream) or
that decompresses to far more than it could hold (a zip bomb: over
``BOMB_RATIO`` times its compressed size, and over ``BOMB_FLOOR`` bytes) is an
input that is not scrubbed, with the reason, never a crash midway and never a
disk or memory filled. A zip's declared sizes are checked first, so a bomb is
refused before a byte of it is decompressed.
"""

from __future__ import annotations

import gzip
import io
import os
import zipfile
import zlib
from collections.abc import Callable, Iterator
from typing import BinaryIO, cast

from scrubber.model.source import Reopenable, Source, UnreadableSource

BOMB_RATIO = 200  # an 837 compresses some 10-40 times; far beyond this is a bomb
BOMB_FLOOR = 64 << 20  # under this many bytes nothing is a bomb, whatever its ratio
_CHUNK = 1 << 20
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_GZIP_MAGIC = b"\x1f\x8b"
_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError,
           NotImplementedError, gzip.BadGzipFile)


class _Both(io.RawIOBase):
    """A decompressing stream that also closes what it was opened from."""

    def __init__(self, inner: BinaryIO, *outer: BinaryIO | zipfile.ZipFile):
        self.inner, self.outer = inner, outer

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:  # type: ignore[override]
        return self.inner.read(size)

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.inner.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self.inner.close()
            for item in self.outer:
                item.close()
        super().close()


class Member(Reopenable):
    """One 837 inside an archive (or a gzip file's content), opened afresh for each read."""

    def __init__(self, opener: Callable[[], BinaryIO], name: str, problem: str | None = None):
        self._opener, self.name, self.problem = opener, name, problem

    def open(self) -> BinaryIO:
        if self.problem is not None:
            raise UnreadableSource(self.problem)
        try:
            return self._opener()
        except _ERRORS as exc:
            raise UnreadableSource(f"{self.name} cannot be read: {_why(exc)}") from None

    def __repr__(self) -> str:
        return f"Member({self.name!r})"


def _why(exc: BaseException) -> str:
    if isinstance(exc, RuntimeError) and "encrypted" in str(exc):
        return "it is encrypted (send it without a password)"
    return str(exc) or exc.__class__.__name__


def kind_of(path: str | os.PathLike) -> str | None:
    """"zip" or "gzip" when the file at ``path`` begins as one, else None."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
    except OSError:
        return None
    if head.startswith(_ZIP_MAGIC):
        return "zip"
    if head.startswith(_GZIP_MAGIC):
        return "gzip"
    return None


def expand(path: str) -> list[tuple[Source, str]]:
    """The (source, name) pairs to scrub for the input ``path``: itself, or its members."""
    kind = kind_of(path) if os.path.isfile(path) else None
    if kind == "zip":
        return list(_zip_members(path))
    if kind == "gzip":
        return [_checked(_gzip_opener(path), path, os.path.getsize(path), None)]
    return [(path, path)]


def _gzip_opener(path: str) -> Callable[[], BinaryIO]:
    def opener() -> BinaryIO:
        return cast("BinaryIO", _Both(cast("BinaryIO", gzip.open(path, "rb"))))
    return opener


def _member_opener(path: str, info: zipfile.ZipInfo) -> Callable[[], BinaryIO]:
    def opener() -> BinaryIO:
        archive = zipfile.ZipFile(path)
        try:
            return cast("BinaryIO", _Both(cast("BinaryIO", archive.open(info)), archive))
        except BaseException:
            archive.close()
            raise
    return opener


def _zip_members(path: str) -> Iterator[tuple[Source, str]]:
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except _ERRORS as exc:
        yield Member(lambda: io.BytesIO(), path,
                     f"{path} is not a readable zip archive: {_why(exc)}"), path
        return
    found = False
    for info in infos:
        base = info.filename.rstrip("/").rsplit("/", 1)[-1]
        if info.is_dir() or base.startswith(".") or info.filename.startswith("__MACOSX/"):
            continue
        found = True
        name = f"{path}!{info.filename}"
        declared = _bomb(info.file_size, info.compress_size)
        yield _checked(_member_opener(path, info), name, info.compress_size,
                       f"{name}: {declared}" if declared else None)
    if not found:
        yield Member(lambda: io.BytesIO(), path, f"{path}: a zip archive with no files in it"), \
            path


def _bomb(size: int, compressed: int) -> str | None:
    """Why ``size`` bytes out of ``compressed`` look like a decompression bomb, or None."""
    if size > BOMB_FLOOR and size > BOMB_RATIO * max(compressed, 1):
        return (f"decompresses to {size:,} bytes from {compressed:,} (over {BOMB_RATIO} "
                "times): refused as a decompression bomb")
    return None


def _checked(opener: Callable[[], BinaryIO], name: str, compressed: int,
             problem: str | None) -> tuple[Source, str]:
    """A member read through once: a source to scrub, or one that says why it cannot be."""
    if problem is None:
        try:
            size = 0
            with opener() as stream:
                while chunk := stream.read(_CHUNK):
                    size += len(chunk)
                    why = _bomb(size, compressed)
                    if why:
                        problem = f"{name}: {why}"
                        break
        except _ERRORS as exc:
            problem = f"{name} cannot be read: {_why(exc)}"
    return Member(opener, name, problem), name
