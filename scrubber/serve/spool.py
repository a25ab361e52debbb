"""Request bodies streamed to owner-only spool files, never held whole in memory.

A body larger than the limit stops being read at the limit (the caller
answers 413). A multipart upload is spooled as it came, then its file part is
copied out into a second spool file by python-multipart's streaming parser.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

CHUNK = 1 << 16
# python-multipart logs what it cannot parse (bytes of the body) and, with no handler
# configured, Python prints that raw on stderr; a body it cannot read is a NoFile here
logging.getLogger("python_multipart").addHandler(logging.NullHandler())
LINGER = 5.0  # seconds an oversized body is still read (and dropped) so its client hears 413


class TooLarge(Exception):
    """The body is larger than the limit."""


class NoFile(Exception):
    """A multipart body without a file part, or not parseable as multipart."""


@dataclass(frozen=True, slots=True)
class Spooled:
    """A body on disk: its path, size and SHA-256 (the idempotency check compares it)."""

    path: Path
    size: int
    sha256: str

    def remove(self) -> None:
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


def _private_file(folder: Path) -> tuple[int, Path]:
    fd, name = tempfile.mkstemp(prefix="body-", suffix=".x12", dir=folder)  # mode 0600
    return fd, Path(name)


async def discard(chunks: AsyncIterator[bytes], seconds: float = LINGER) -> None:
    """Read and drop the rest of a body for a while, as a web server's lingering close does.

    A client still sending when the server answers and closes gets a reset
    instead of the 413; reading on (not storing) lets it hear the answer.
    """
    deadline = time.monotonic() + seconds
    async for _ in chunks:
        if time.monotonic() > deadline:
            return


async def spool_body(chunks: AsyncIterator[bytes], folder: Path, limit: int) -> Spooled:
    """Write ``chunks`` to a new owner-only file in ``folder``; TooLarge past ``limit`` bytes."""
    fd, path = _private_file(folder)
    digest = hashlib.sha256()
    size = 0
    try:
        with os.fdopen(fd, "wb") as out:
            async for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    await discard(chunks)
                    raise TooLarge(f"the body is larger than {limit} bytes")
                digest.update(chunk)
                out.write(chunk)
    except BaseException:
        os.unlink(path)
        raise
    return Spooled(path, size, digest.hexdigest())


def multipart_file(body: Spooled, content_type: str, folder: Path) -> tuple[Spooled, str | None]:
    """The first file part of a spooled multipart body, spooled on its own, and its file name.

    Raises NoFile when the body holds no file part (or is not multipart at all).
    """
    from python_multipart.multipart import MultipartParser, parse_options_header

    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise NoFile("a multipart body needs a boundary in its Content-Type")
    fd, path = _private_file(folder)
    out = os.fdopen(fd, "wb")
    state: dict = {"header": b"", "field": b"", "headers": {}, "part": 0, "target": 0,
                   "name": None, "size": 0}
    digest = hashlib.sha256()

    def on_part_begin() -> None:
        state["part"] += 1
        state["headers"] = {}

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["header"] += data[start:end]

    def on_header_end() -> None:
        state["headers"][state["field"].lower()] = state["header"]
        state["field"] = state["header"] = b""

    def on_headers_finished() -> None:
        disposition = state["headers"].get(b"content-disposition", b"")
        _, options = parse_options_header(disposition)
        if not state["target"] and b"filename" in options:
            state["target"] = state["part"]
            state["name"] = options[b"filename"].decode("utf-8", "replace")

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if state["part"] == state["target"]:
            chunk = data[start:end]
            digest.update(chunk)
            state["size"] += len(chunk)
            out.write(chunk)

    parser = MultipartParser(boundary, {
        "on_part_begin": on_part_begin, "on_header_field": on_header_field,
        "on_header_value": on_header_value, "on_header_end": on_header_end,
        "on_headers_finished": on_headers_finished, "on_part_data": on_part_data})
    try:
        with out, open(body.path, "rb") as source:
            while chunk := source.read(CHUNK):
                parser.write(chunk)
            parser.finalize()
    except Exception as exc:
        os.unlink(path)
        raise NoFile(f"the multipart body cannot be read: {exc}") from None
    if not state["target"]:
        os.unlink(path)
        raise NoFile("the multipart body has no file part (send the 837 as a file)")
    return Spooled(path, state["size"], digest.hexdigest()), state["name"]
