"""Cut the inputs into pieces a task can read: whole files, or runs of interchanges.

The driver plans the pieces before any task runs. A file up to ``piece_bytes``
is one piece, read by its path exactly as ``scrub check`` reads it. A larger
file is scanned once, in chunks (never held whole), for the starts of its
interchanges (ISA), and cut there into pieces of at most ``piece_bytes``
(one interchange bigger than that is a piece of its own): an interchange
is the unit of the envelope checks and the acknowledgements, so nothing that
decides a verdict spans two pieces, no task holds a whole large file, and no
value shipped between stages nears Arrow's 2 GB limit.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from scrubber.model import Location, Source

PIECE_BYTES = 64 << 20  # a task's share of a large file
_CHUNK = 8 << 20  # the driver's scan reads this much at a time
_ISA_LENGTH = 106
# ISA is fixed width: the element separator stands at these positions (after ISA, ISA01 ...)
_SEPARATORS = (3, 6, 17, 20, 31, 34, 50, 53, 69, 76, 81, 83, 89, 99, 101, 103)


@dataclass(frozen=True, slots=True)
class Piece:
    """A part of one input that one task reads: bytes ``start`` to ``end`` of file ``file``."""

    id: int  # unique in the run: the key of everything made from this piece
    file: int  # the input's position in the run (0-based)
    path: str
    index: int  # the piece's position in its file (0-based)
    start: int = 0  # byte offset in the file
    end: int | None = None  # None: to the end (a whole file, read by its path)
    line: int = 1  # physical line of ``start`` in the file
    data: bytes | None = field(default=None, repr=False)  # the file itself, when given so

    @property
    def whole(self) -> bool:
        return self.start == 0 and self.end is None

    @property
    def name(self) -> str:
        """The piece's name among the acknowledgement parts: file and piece number."""
        return f"{self.file:06d}-{self.index:06d}"

    @contextmanager
    def open(self) -> Iterator[Source]:
        """The piece as the reader takes it: its bytes or path when whole, else a bounded stream."""
        if self.data is not None:
            yield self.data
            return
        if self.end is None:
            yield self.path
            return
        with io.BufferedReader(_Slice(self.path, self.start, self.end), _CHUNK) as stream:
            yield stream

    def in_file(self, location: Location | None) -> Location | None:
        """``location`` (read from the piece) as a place in the whole file."""
        if location is None or self.whole:
            return location
        return Location(location.segment, location.line + self.line - 1,
                        location.offset + self.start)


#: a piece read by its path from this size up is read by several tasks in stage 1 when
#: there are fewer pieces than cores (``readings``); below it the extra tokenizing and
#: task are not worth it
SHARE_FROM = 4 << 20


@dataclass(frozen=True, slots=True)
class Reading:
    """What one task of stage 1 reads: a piece, all of it or one share of its sets.

    A share (``scrubber.parallel.Share``, as ``scrub check --jobs`` cuts a file)
    owns the transaction sets whose ST starts in its byte range: the task
    tokenizes the whole piece, so the envelope and the claims' ordinals stay
    whole, and checks and indexes only its own sets.
    """

    piece: Piece
    share: Any = None  # scrubber.parallel.Share over the piece's file; None: the whole piece

    @property
    def part(self) -> int:
        """The share's place among the piece's (0 for a whole piece): the IG reports'
        merging order."""
        return self.share.number if self.share is not None else 0

    def owns(self) -> Any:
        """``read(owns=...)``'s test of an ST offset, or None: every set is this task's."""
        return self.share.owns(0) if self.share is not None else None


def readings(pieces: Sequence[Piece], cores: int, share_from: int | None = None
             ) -> list[Reading]:
    """Stage 1's tasks: one per piece, or, with fewer pieces than ``cores``, each big
    piece that is a whole file cut into shares at transaction-set starts (a day of one
    837 was one task while the other cores waited). A file with fewer sets than that
    is cut into fewer shares (one set: read whole). ``share_from``: ``SHARE_FROM``."""
    from scrubber.parallel import shares

    share_from = SHARE_FROM if share_from is None else share_from

    out: list[Reading] = []
    split = cores // len(pieces) if pieces else 1
    for piece in pieces:
        cut: list[Any] = []
        if split > 1 and piece.whole and piece.data is None:
            try:
                big = os.path.isfile(piece.path) and os.path.getsize(piece.path) >= share_from
            except OSError:
                big = False
            if big:
                cut = shares([piece.path], split)
        # two cuts at one ST (more shares than sets near there), or one at the first ST
        # (the share before it holds the envelope's head only): that share owns nothing
        first = _first_set(piece.path) if cut else 0
        ends = tuple(sorted({0 if at <= first else at for at in cut[0].cuts})) if cut else ()
        if len(ends) > 2:
            out += [Reading(piece, replace(cut[0], number=number, of=len(ends) - 1, cuts=ends))
                    for number in range(len(ends) - 1)]
        else:
            out.append(Reading(piece))
    return out


_HEAD = 64 << 10  # bytes read to find a file's first transaction set


def _first_set(path: str) -> int:
    """The byte offset of the file's first ST segment; 0 when it is not in the first
    ``_HEAD`` bytes or the delimiters cannot be read (no share is then left out)."""
    from scrubber.parallel import set_starts

    try:
        with open(path, "rb") as stream:
            head = stream.read(_HEAD)
    except OSError:
        return 0
    pattern = set_starts(head)
    found = pattern.search(head) if pattern is not None else None
    return found.start(1) if found else 0


def plan(paths: Sequence[str], piece_bytes: int = PIECE_BYTES) -> list[Piece]:
    """The pieces of ``paths``, in input order; a path that is no regular file is one piece.

    Whatever is wrong with such a path (missing, a folder) is reported by the
    task that reads it, as ``scrub check`` reports it: nothing is dropped here.
    """
    pieces: list[Piece] = []
    for number, path in enumerate(paths):
        try:
            size = os.path.getsize(path) if os.path.isfile(path) else 0
        except OSError:
            size = 0
        if size <= piece_bytes:
            pieces.append(Piece(len(pieces), number, path, 0))
            continue
        with open(path, "rb") as stream:
            cuts = _cuts(interchange_starts(stream), size, piece_bytes)
        if len(cuts) == 2:  # one interchange, or no ISA at all: nothing to cut
            pieces.append(Piece(len(pieces), number, path, 0))
            continue
        for index, ((start, line), (end, _)) in enumerate(zip(cuts, cuts[1:], strict=False)):
            pieces.append(Piece(len(pieces), number, path, index, start, end, line))
    return pieces


def _cuts(starts: Iterator[tuple[int, int]], size: int, piece_bytes: int
          ) -> list[tuple[int, int]]:
    """Piece boundaries (offset, line): the file's start, interchange starts, its end.

    A piece runs to the last interchange start that keeps it within
    ``piece_bytes``; the first piece also holds whatever precedes the first ISA.
    """
    cuts = [(0, 1)]
    last: tuple[int, int] | None = None  # the latest interchange start not yet cut at
    for start in starts:
        if start[0] - cuts[-1][0] > piece_bytes and last is not None and last[0] > cuts[-1][0]:
            cuts.append(last)
        last = start
    if last is not None and size - cuts[-1][0] > piece_bytes and last[0] > cuts[-1][0]:
        cuts.append(last)
    cuts.append((size, 0))
    return cuts


def interchange_starts(stream: io.BufferedIOBase | io.RawIOBase) -> Iterator[tuple[int, int]]:
    """(byte offset, line) of every ISA segment of a stream, read in chunks.

    An ISA is recognised by its fixed layout (106 characters, the same
    separator at each of its 16 element boundaries), so "ISA" inside a name
    or a note is never taken for one.
    """
    buf = b""
    base = 0  # file offset of buf[0]
    line = 1  # line of buf[0]
    eof = False
    while not eof:
        data = stream.read(_CHUNK)
        eof = not data
        buf += data or b""
        # an ISA starting before ``limit`` is whole in buf; the rest waits for the next chunk
        limit = len(buf) if eof else max(len(buf) - _ISA_LENGTH, 0)
        counted = search = 0
        while (at := buf.find(b"ISA", search, limit + 2)) >= 0:
            if _is_isa(buf, at):
                line += buf.count(b"\n", counted, at)
                counted = at
                yield base + at, line
            search = at + 1
        line += buf.count(b"\n", counted, limit)
        buf = buf[limit:]
        base += limit


def _is_isa(buf: bytes, at: int) -> bool:
    if at + _ISA_LENGTH > len(buf):
        return False
    separator = buf[at + 3]
    if chr(separator).isalnum() or separator in b" \r\n":
        return False
    return all(buf[at + p] == separator for p in _SEPARATORS)


class _Slice(io.RawIOBase):
    """Bytes ``start`` to ``end`` of a file as a seekable stream of their own."""

    # the reader does not decide from a part what the whole file is (file-not-837)
    part_of_file = True

    def __init__(self, path: str, start: int, end: int):
        self._file = open(path, "rb")
        self._start, self._end = start, end
        self._file.seek(start)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        left = self._end - self._file.tell()
        if left <= 0:
            return 0
        view = memoryview(buffer)[:left]
        return self._file.readinto(view)

    def tell(self) -> int:
        return self._file.tell() - self._start

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            target = self._start + offset
        elif whence == io.SEEK_CUR:
            target = self._file.tell() + offset
        else:
            target = self._end + offset
        self._file.seek(max(self._start, min(target, self._end)))
        return self.tell()

    def close(self) -> None:
        self._file.close()
        super().close()
