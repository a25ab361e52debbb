"""Copy each claim of a source into the accepted or the hold batch, byte for byte.

One more read of the source after the scrub. ``copy_source`` walks its
segments as the claim walker does (only the segments that open or close an
envelope, an HL loop or a claim are split; the rest pass as byte ranges) and
hands every claim, with the loops it belongs to, to the batch its verdict
names. A claim is copied from the source as the bytes it was sent as, CLM
through its last segment; the loops above it (the set's header with its
1000A submitter and 1000B receiver, the 2000A billing provider, 2000B
subscriber and 2000C patient) are copied as sent too, under an HL segment
renumbered for the new batch. Envelopes are new (``scrubber.split.batch``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, cast

from scrubber.files import SharedReader
from scrubber.model.walker import VERSIONS, _boundary_patterns
from scrubber.x12.delimiters import Delimiters
from scrubber.x12.tokenizer import Run, Segment, Tokenizer

_WHITESPACE = b" \t\r\n\x0b\x0c"
_ENVELOPE_IDS = frozenset({"ISA", "GS", "ST", "SE", "GE", "IEA", "TA1"})
_BOUNDARY_IDS = _ENVELOPE_IDS | {"CLM", "HL"}


class SplitError(Exception):
    """The split cannot place every claim; nothing is written. The message says why."""


@dataclass(frozen=True, slots=True)
class Loop:
    """An HL loop as sent: its HL segment and the bytes of the segments after it."""

    hl_id: str  # HL01
    parent: str  # HL02
    level: str  # HL03: 20 billing provider, 22 subscriber, 23 patient
    body: bytes  # the loop's other segments as sent, joined as sent, no final terminator
    segments: int  # how many segments ``body`` holds


@dataclass(frozen=True, slots=True)
class Envelope:
    """The input envelopes a claim stands in, as the batches rebuild them."""

    isa: tuple[str, ...]  # ISA elements as sent
    delimiters: Delimiters
    suffix: bytes  # what the sender writes after each terminator ("", LF or CR LF)
    gs: tuple[str, ...] | None
    st: tuple[str, ...]
    header: bytes  # BHT, 1000A, 1000B ... as sent
    header_segments: int
    key: tuple[int, int, int, int]  # source, interchange, group, set: where a new one begins


@dataclass(frozen=True, slots=True)
class ClaimCopy:
    """One claim to copy: where it stands, its loops and its bytes."""

    offset: int  # byte offset of CLM in the source
    claim_id: str  # CLM01
    envelope: Envelope
    loops: tuple[Loop, ...]  # 2000A, 2000B, 2000C (those it has), parents first
    body: bytes  # CLM through its last segment, as sent, no final terminator
    segments: int


class _Walk:
    """The state of one walk over a source: open envelopes, HL loops, the region in hand."""

    def __init__(self, handle: BinaryIO, source: int, emit: Callable[[ClaimCopy], None]):
        self.handle = handle
        self.source = source
        self.emit = emit
        self.tokenizer = Tokenizer(cast(BinaryIO, SharedReader(handle)))
        self.isa: Segment | None = None
        self.delimiters: Delimiters | None = None
        self.suffix = b""
        self.gs: Segment | None = None
        self.st: Segment | None = None
        self.kind = ""
        self.header: tuple[bytes, int] | None = None
        self.counts = [0, 0, 0]  # interchanges, groups, sets seen: an envelope's key
        self.loops: dict[str, Loop] = {}  # HL01 -> loop, in the open set
        self.current: Loop | None = None  # the HL loop claims now belong to
        # the region in hand: what opened it (ST, HL or CLM), first and end byte, segments
        self.opener: Segment | None = None
        self.first = -1
        self.end = -1
        self.count = 0

    # -- reading ---------------------------------------------------------------------------
    def item(self, item: object) -> None:
        if type(item) is Run:
            self.run(item)
        elif type(item) is Segment:
            if item[0] in _BOUNDARY_IDS:
                self.boundary(item)
            else:
                self.content(item[4], item[4] + item[5], 1)

    def run(self, run: Run) -> None:
        text, joint, sep = run.text, run.joint, run.separator
        step = len(joint)
        first, finder = _boundary_patterns(joint, sep)
        cursor = 0
        opening = first.match(text)
        matches = list(finder.finditer(text))
        if opening is not None:
            matches.insert(0, opening)
        for match in matches:
            start = match.start(1)
            if start > cursor:
                self.content(run.offset + cursor, run.offset + start - step,
                             text.count(joint, cursor, start - step) + 1)
            end = text.find(joint, start)
            if end < 0:
                end = len(text)
            elements = text[start:end].split(sep)
            self.boundary(Segment(elements[0], tuple(elements), 0, 0, run.offset + start,
                                  end - start))
            cursor = end + step
        if cursor < len(text):
            self.content(run.offset + cursor, run.offset + len(text),
                         text.count(joint, cursor) + 1)

    def content(self, start: int, end: int, count: int) -> None:
        if self.opener is None:
            return  # outside a set we read, or in a set not read: the scrub says so
        if self.first < 0:
            self.first = start
        self.end = end
        self.count += count

    def read(self, start: int, end: int) -> bytes:
        if start < 0 or end <= start:
            return b""
        here = self.handle.tell()
        self.handle.seek(start)
        data = self.handle.read(end - start)
        self.handle.seek(here)
        return data

    # -- regions ---------------------------------------------------------------------------
    def open_region(self, opener: Segment, first: int = -1, end: int = -1,
                    count: int = 0) -> None:
        self.opener, self.first, self.end, self.count = opener, first, end, count

    def close_region(self) -> None:
        opener = self.opener
        if opener is None:
            return
        self.opener = None
        body = self.read(self.first, self.end)
        sid = opener[0]
        if sid == "ST":
            self.header = (body, self.count)
        elif sid == "HL":
            el = opener[1] + ("",) * 4
            loop = Loop(el[1], el[2], el[3], body, self.count)
            self.loops[loop.hl_id] = loop
            self.current = loop
        else:  # CLM
            self.emit(ClaimCopy(opener[4], opener.get(1), self.envelope(), self.lineage(),
                                body, self.count))

    def envelope(self) -> Envelope:
        assert self.isa is not None and self.delimiters is not None and self.st is not None
        header, segments = self.header or (b"", 0)
        return Envelope(self.isa[1], self.delimiters, self.suffix,
                        self.gs[1] if self.gs is not None else None, self.st[1], header,
                        segments, (self.source, self.counts[0], self.counts[1], self.counts[2]))

    def lineage(self) -> tuple[Loop, ...]:
        """The loops of the claim in hand, parents first, found by HL02 as the walker does."""
        chain: list[Loop] = []
        loop = self.current
        while loop is not None and len(chain) < 3:
            chain.append(loop)
            if loop.level == "20":
                break
            loop = self.loops.get(loop.parent)
            if loop is not None and loop in chain:
                break
        return tuple(reversed(chain))

    # -- boundaries ------------------------------------------------------------------------
    def boundary(self, seg: Segment) -> None:
        self.close_region()
        sid = seg[0]
        if self.st is not None and self.kind and sid in ("HL", "CLM"):
            if self.header is None:
                self.header = (b"", 0)
            if sid == "HL":
                self.open_region(seg)
            else:
                self.open_region(seg, seg[4], seg[4] + seg[5], 1)
            return
        if sid == "ISA":
            self.isa, self.delimiters = seg, self.tokenizer.delimiters
            after = self.read(seg[4] + seg[5] + 1, seg[4] + seg[5] + 3)
            self.suffix = b"\r\n" if after == b"\r\n" else b"\n" if after[:1] == b"\n" else b""
            if self.delimiters is not None and self.delimiters.segment in "\r\n":
                self.suffix = b""
            self.counts = [self.counts[0] + 1, 0, 0]
            self.gs = self.st = None
        elif sid == "GS":
            self.gs, self.st = seg, None
            self.counts[1] += 1
        elif sid == "ST":
            self.st = seg
            version = seg.get(3) or (self.gs.get(8) if self.gs is not None else "")
            self.kind = VERSIONS.get(version, "") if seg.get(1) == "837" else ""
            self.counts[2] += 1
            self.header = None
            self.loops = {}
            self.current = None
            if self.kind:
                self.open_region(seg)
        elif sid == "SE":
            self.st = None
        elif sid == "GE":
            self.gs = self.st = None
        elif sid == "IEA":
            self.isa = self.gs = self.st = None


def copy_source(handle: BinaryIO, source: int) -> Iterator[ClaimCopy]:
    """The claims of one seekable source, in document order, each with its loops and bytes."""
    out: list[ClaimCopy] = []
    walk = _Walk(handle, source, out.append)
    for item in walk.tokenizer.items():
        walk.item(item)
        if out:
            yield from out
            out.clear()
    walk.close_region()
    yield from out
