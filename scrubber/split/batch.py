"""A new 837 batch made of copied claims: new envelopes, new HL numbers, the claims as sent.

Each input interchange, group and transaction set that gives a batch a claim
becomes one of the batch's own, with the delimiters and layout of the input
(its claims are copied with them) and fresh control numbers (ISA13, GS06,
ST02) from the per-user store the acknowledgements draw from, so that no
receiver sees one twice. ISA09/ISA10 and GS04/GS05 say when the batch was
made. The set's header (BHT, 1000A submitter, 1000B receiver) is kept as sent:
BHT03 is the biller's batch number that the payer's 277CA hands back, so the
answer to the accepted claims finds its way to the batch they came from, and
BHT04/BHT05 still say when the claims were created. HL loops are renumbered
from 1 in each set, in document order; HL04 says whether a loop has children
in this batch. SE01, GE01 and IEA01 count what the batch holds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import BinaryIO

from scrubber.split.copy import ClaimCopy, Envelope, Loop


class Batch:
    """Writes claims into one 837 stream, opening and closing envelopes as they change."""

    def __init__(self, out: BinaryIO, numbers: Iterator[int],
                 clock: Callable[[], datetime] = datetime.now):
        self.out = out
        self.numbers = numbers
        self.clock = clock
        self.claims = 0
        self.interchanges: list[str] = []  # ISA13 of each interchange written
        # (as scrubbed, as written) submissions, "sender:ISA13", one per interchange written
        self.submissions: list[tuple[str, str]] = []
        self._key: tuple[int, ...] | None = None  # the input envelope of the open set
        self._isa: tuple[int, int] | None = None  # (source, interchange) of the open ISA
        self._gs: tuple[int, int, int] | None = None
        self._isa13 = self._gs06 = self._st02 = ""
        self._groups = self._sets = self._segments = 0
        self._term = b"~"
        self._sep = "*"
        self._hl = 0
        self._written: dict[str, tuple[str, int]] = {}  # input HL01 -> (our HL01, HL04 byte)
        self._patched: set[str] = set()

    # -- writing -----------------------------------------------------------------------------
    def _segment(self, elements: list[str] | tuple[str, ...]) -> None:
        # the reader decodes segments other than ISA as UTF-8 (ASCII in practice)
        self.out.write(self._sep.join(elements).encode("utf-8") + self._term)
        self._segments += 1

    def _raw(self, body: bytes, segments: int) -> None:
        if body:
            self.out.write(body + self._term)
            self._segments += segments

    def add(self, claim: ClaimCopy) -> None:
        """Write ``claim`` under its loops, in envelopes like those it came in."""
        self._envelopes(claim.envelope)
        parent = ""
        for loop in claim.loops:
            parent = self._loop(loop, parent)
        self._raw(claim.body, claim.segments)
        self.claims += 1

    def _envelopes(self, envelope: Envelope) -> None:
        source, interchange, group, transaction = envelope.key
        if self._key == envelope.key:
            return
        if self._isa != (source, interchange):
            self._close_interchange()
            self._open_interchange(envelope)
        if self._gs != (source, interchange, group):
            self._close_group()
            self._open_group(envelope)
        self._close_set()
        self._open_set(envelope)
        self._key = envelope.key

    def _open_interchange(self, envelope: Envelope) -> None:
        delimiters = envelope.delimiters
        self._sep = delimiters.element
        self._term = delimiters.segment.encode("latin-1") + envelope.suffix
        now = self.clock()
        isa = list(envelope.isa) + [""] * (17 - len(envelope.isa))
        self._isa13 = f"{next(self.numbers):09d}"
        isa[9], isa[10], isa[13] = now.strftime("%y%m%d"), now.strftime("%H%M"), self._isa13
        self.out.write(self._sep.join(isa[:17]).encode("latin-1") + self._term)
        self._isa = envelope.key[:2]
        self._groups = 0
        self.interchanges.append(self._isa13)
        sender = isa[6].strip()
        self.submissions.append((f"{sender}:{envelope.isa[13].strip()}",
                                 f"{sender}:{self._isa13}"))

    def _open_group(self, envelope: Envelope) -> None:
        now = self.clock()
        gs = list(envelope.gs or ("GS", "HC", "", "", "", "", "", "X", envelope.st[3]
                                  if len(envelope.st) > 3 else ""))
        gs += [""] * (9 - len(gs))
        self._gs06 = str(next(self.numbers))
        gs[4], gs[5], gs[6] = now.strftime("%Y%m%d"), now.strftime("%H%M"), self._gs06
        self._segment(gs)
        self._gs = envelope.key[:3]
        self._groups += 1
        self._sets = 0

    def _open_set(self, envelope: Envelope) -> None:
        st = list(envelope.st) + [""] * (3 - min(3, len(envelope.st)))
        self._st02 = f"{next(self.numbers):04d}"
        st[2] = self._st02
        self._segments = 0
        self._segment(st)
        self._raw(envelope.header, envelope.header_segments)
        self._sets += 1
        self._hl = 0
        self._written = {}
        self._patched = set()

    def _loop(self, loop: Loop, parent: str) -> str:
        """Write ``loop`` unless this set has it; our HL01 for it."""
        done = self._written.get(loop.hl_id)
        if done is not None:
            return done[0]
        if parent and loop.level == "23":
            self._has_children(parent)
        self._hl += 1
        ours = str(self._hl)
        child = "1" if loop.level == "20" else "0"
        head = self._sep.join(("HL", ours, parent, loop.level, ""))
        self.out.write(head.encode("utf-8"))
        at = self.out.tell()
        self.out.write(child.encode("ascii") + self._term)
        self._segments += 1
        self._written[loop.hl_id] = (ours, at)
        self._raw(loop.body, loop.segments)
        return ours

    def _has_children(self, ours: str) -> None:
        """Set HL04 of our loop ``ours`` to 1: a patient loop is written under it."""
        if ours in self._patched:
            return
        for hl_id, at in self._written.values():
            if hl_id == ours:
                end = self.out.tell()
                self.out.seek(at)
                self.out.write(b"1")
                self.out.seek(end)
                break
        self._patched.add(ours)

    # -- trailers ----------------------------------------------------------------------------
    def _close_set(self) -> None:
        if self._key is None:
            return
        self._segment(["SE", str(self._segments + 1), self._st02])
        self._key = None

    def _close_group(self) -> None:
        self._close_set()
        if self._gs is None:
            return
        self._segment(["GE", str(self._sets), self._gs06])
        self._gs = None

    def _close_interchange(self) -> None:
        self._close_group()
        if self._isa is None:
            return
        self._segment(["IEA", str(self._groups), self._isa13])
        self._isa = None

    def close(self) -> None:
        """Write the trailers of what is open."""
        self._close_interchange()
