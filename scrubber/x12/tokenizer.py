"""Stream X12 segments out of bytes, one interchange's delimiters at a time.

The reader never holds a whole file: it reads fixed-size chunks, splits them on
the segment terminator of the interchange in hand, and re-reads the delimiters
at every ISA, so a file may carry several interchanges with different
delimiters. Anything that is not X12 becomes a ``SyntaxProblem`` with a byte
offset and a line number; the reader then looks for the next ISA.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import BinaryIO, NamedTuple

from scrubber.x12.delimiters import ISA_LENGTH, Delimiters

CHUNK_SIZE = 1 << 20
BOM = b"\xef\xbb\xbf"
_WHITESPACE = b" \t\r\n\x0b\x0c"
_WHITESPACE_STR = " \t\r\n\x0b\x0c"
_ISA_SCAN_LIMIT = 512  # an ISA longer than this is not an ISA
_ISA_LOOKAHEAD = 1024
MAX_SEGMENT = 1 << 20  # bytes: an 837 segment is at most a few KB; a longer one is skipped


class Segment(NamedTuple):
    """One segment and where it came from.

    ``elements[0]`` is the segment id, so ``elements[n]`` is the X12 element
    ``XXnn`` (``CLM05`` is ``elements[5]``).
    """

    id: str
    elements: tuple[str, ...]
    ordinal: int  # position in its interchange; ISA is 1
    line: int  # physical line (1-based) where the segment starts
    offset: int  # byte offset of the segment's first byte in the source
    length: int  # bytes of segment text, terminator excluded

    def get(self, index: int) -> str:
        """Element ``index`` (1-based X12 numbering), or "" when absent."""
        elements = self.elements
        return elements[index] if index < len(elements) else ""


class Run(NamedTuple):
    """Consecutive whole segments of a regular block, kept as the text they were sent as.

    Most senders end every segment the same way (the terminator, then nothing, LF
    or CR LF), so the position of each segment follows from the text alone. A
    reader that only needs a few segments' elements, such as the claim walker
    looking for CLM and HL, can pass the rest on unsplit; ``segments()`` gives
    them, located exactly as the tokenizer would have, when someone asks.
    """

    text: str  # the segments, joined by ``joint``; no terminator after the last
    joint: str  # the segment terminator plus the white space the sender puts after it
    separator: str  # the element separator
    ordinal: int  # of the first segment
    line: int  # of the first segment
    offset: int  # of the first segment
    lines_per_segment: int  # 1 when each segment ends its line, else 0

    def segments(self) -> list[Segment]:
        """The run's segments, with their ordinals, lines and byte offsets (as
        ``iter_segments``; a list built in one loop, for a claim's few segments)."""
        new, segment = tuple.__new__, Segment
        sep, step, inc = self.separator, len(self.joint), self.lines_per_segment
        ordinal, line, offset = self.ordinal, self.line, self.offset
        out = []
        for part in self.text.split(self.joint):
            elements = part.split(sep)
            out.append(new(segment, (elements[0], tuple(elements), ordinal, line, offset,
                                     len(part))))
            ordinal += 1
            line += inc
            offset += len(part) + step
        return out

    def iter_segments(self) -> Iterator[Segment]:
        """The same, one at a time: a Run can hold a megabyte of segments."""
        new, segment = tuple.__new__, Segment
        sep, step, inc = self.separator, len(self.joint), self.lines_per_segment
        ordinal, line, offset = self.ordinal, self.line, self.offset
        for part in self.text.split(self.joint):
            elements = part.split(sep)
            yield new(segment, (elements[0], tuple(elements), ordinal, line, offset, len(part)))
            ordinal += 1
            line += inc
            offset += len(part) + step

    def select(self, ids: frozenset[str]) -> list[Segment]:
        """Only the segments whose id is in ``ids``, located as ``segments()`` would."""
        sep, step, inc = self.separator, len(self.joint), self.lines_per_segment
        ordinal, line, offset = self.ordinal, self.line, self.offset
        out = []
        for part in self.text.split(self.joint):
            if part.partition(sep)[0] in ids:
                elements = part.split(sep)
                out.append(tuple.__new__(Segment, (elements[0], tuple(elements), ordinal, line,
                                                   offset, len(part))))
            ordinal += 1
            line += inc
            offset += len(part) + step
        return out

    def slice(self, start: int, end: int, ordinal: int) -> Run:
        """The segments of ``text[start:end]`` (whole segments), the first being ``ordinal``."""
        skipped = ordinal - self.ordinal
        return tuple.__new__(Run, (self.text[start:end], self.joint, self.separator, ordinal,
                                   self.line + skipped * self.lines_per_segment,
                                   self.offset + start, self.lines_per_segment))


@dataclass(frozen=True, slots=True)
class SyntaxProblem:
    """Input that is not readable X12, located by byte offset and line."""

    code: str  # stable id, e.g. "syntax-no-isa"
    message: str  # what is wrong and what to do about it
    offset: int
    line: int
    fatal: bool = False  # nothing at all could be read from the input


def _looks_binary(sample: bytes) -> bool:
    """True for bytes no X12 sender would write: NULs or mostly control bytes."""
    if not sample:
        return False
    if b"\x00" in sample:
        return True
    text_like = sum(1 for b in sample if 32 <= b < 127 or b in _WHITESPACE)
    return text_like < 0.85 * len(sample)


def _find_isa(buf: bytes, start: int) -> int:
    """Index of the next plausible ISA header at or after ``start``, or -1.

    A plausible header is ``ISA`` followed by a non-alphanumeric separator that
    recurs after the two-character ISA01 (``ISA*00*``), so that a name such as
    "LISA" inside junk is not taken for a header.
    """
    while True:
        idx = buf.find(b"ISA", start)
        if idx < 0 or idx + 7 > len(buf):
            return idx
        sep = buf[idx + 3 : idx + 4]
        if not sep.isalnum() and sep not in (b" ", b"\r", b"\n") and buf[idx + 6 : idx + 7] == sep:
            return idx
        start = idx + 1


def _interchange_end(text: str, joint: str, sep: str) -> int:
    """Where the first ISA or IEA segment of ``text`` starts, or -1.

    ``text`` holds whole segments joined by ``joint``; str.find scans it at C
    speed, where a regex with an alternation would look at every character.
    """
    found = -1
    step = len(joint)
    for sid in ("IEA", "ISA"):
        if text.startswith(sid):
            start = 0
        else:
            start = text.find(joint + sid)
            start = start + step if start >= 0 else -1
        while start >= 0:
            end = start + 3
            if text.startswith(sep, end) or text.startswith(joint, end) or end == len(text):
                if found < 0 or start < found:
                    found = start
                break
            start = text.find(joint + sid, end)
            start = start + step if start >= 0 else -1
    return found


class _Buffer:
    """The bytes read so far and where the reader stands in them, shared by the parts of
    ``Tokenizer.items``: ``buf[pos]`` is the next unread byte, at source offset
    ``base + pos`` on physical line ``line``."""

    __slots__ = ("read", "chunk_size", "buf", "base", "pos", "line", "eof", "at_start",
                 "junk_start", "junk_line")

    def __init__(self, read: Callable[[int], bytes], chunk_size: int):
        self.read = read
        self.chunk_size = chunk_size
        self.buf = b""
        self.base = 0  # source offset of buf[0]
        self.pos = 0
        self.line = 1
        self.eof = False
        self.at_start = True  # a BOM is skipped only here
        self.junk_start: int | None = None  # source offset where unreadable bytes began
        self.junk_line = 1

    def refill(self, need: int) -> None:
        """Read chunks until ``need`` bytes stand unread (or the stream ends)."""
        while not self.eof and len(self.buf) - self.pos < need:
            data = self.read(self.chunk_size)
            if not data:
                self.eof = True
                break
            self.buf = self.buf[self.pos:] + data
            self.base += self.pos
            self.pos = 0

    def skip_to_next_isa(self) -> None:
        """Count what stands here as junk, up to the next ISA (or near the end of the buffer)."""
        self.junk_start, self.junk_line = self.base + self.pos, self.line
        nxt = _find_isa(self.buf, self.pos + 1)
        new_pos = nxt if nxt >= 0 else max(self.pos + 1, len(self.buf) - 8)
        self.line += self.buf.count(b"\n", self.pos, new_pos)
        self.pos = new_pos


class _Layout(NamedTuple):
    """How an interchange's segments are delimited and laid out, from its ISA.

    Most senders put the same white space (none, LF or CR LF) after every
    terminator: then segments split cleanly on ``joint`` and line numbers just
    count up by ``inc`` per segment.
    """

    sep: str  # element separator
    term: str  # segment terminator
    term_is_space: bool  # the terminator is itself white space (a line break)
    suffix: str  # the white space after the ISA's terminator, taken for every segment's
    joint: str  # term + suffix
    step: int  # len(joint)
    inc: int  # lines per segment in a regular block: 1 when suffix ends a line
    lead_space: str  # joint + " ": a segment that starts with a space breaks the pattern

    @classmethod
    def of(cls, sep: str, term: str, after: bytes) -> _Layout:
        """The layout for element separator ``sep``, terminator ``term`` and the bytes
        ``after`` the ISA's terminator."""
        term_is_space = term in _WHITESPACE_STR
        suffix = "" if term_is_space else "\r\n" if after == b"\r\n" else \
            "\n" if after[:1] == b"\n" else ""
        joint = term + suffix
        return cls(sep, term, term_is_space, suffix, joint, len(joint), 1 if suffix else 0,
                   joint + " ")


class Tokenizer:
    """Iterate over a binary stream, yielding ``Segment`` and ``SyntaxProblem``.

    ``delimiters`` holds the delimiters of the interchange being read (set when
    its ISA segment is yielded); ``interchanges`` counts the ISAs read so far.
    ``items()`` yields ``Run`` objects too, for readers that can use them unsplit.
    """

    def __init__(self, stream: BinaryIO, chunk_size: int = CHUNK_SIZE):
        self._stream = stream
        self._chunk_size = chunk_size
        self.delimiters: Delimiters | None = None
        self.interchanges = 0

    def __iter__(self) -> Iterator[Segment | SyntaxProblem]:
        for item in self.items():
            if isinstance(item, Run):
                yield from item.iter_segments()
            else:
                yield item

    def items(self) -> Iterator[Segment | SyntaxProblem | Run]:
        """Like iterating, but regular stretches of segments come as one ``Run``.

        The work is split as the input is: ``_next_isa`` skips white space and
        junk up to the next ISA, ``_header`` reads the delimiters from it, and
        ``_body`` reads the interchange's segments up to its IEA (or the next
        ISA), each block by the fast path (``_regular_block``: a whole block of
        regular segments as one Run) or, where the pattern breaks, the careful
        path (``_careful_block``: segment by segment, counting line breaks).
        """
        buffer = _Buffer(self._stream.read, self._chunk_size)
        while True:
            if not (yield from self._next_isa(buffer)):
                return
            layout = yield from self._header(buffer)
            if layout is not None:
                yield from self._body(buffer, layout)

    def _next_isa(self, b: _Buffer) -> Generator[SyntaxProblem, None, bool]:
        """Stand on the next ISA header (True), reporting what stood before it; False at the end."""
        while True:
            b.refill(_ISA_LOOKAHEAD)
            if b.at_start:
                b.at_start = False
                if b.buf.startswith(BOM):
                    b.pos = 3
            while True:
                buf = b.buf
                end = len(buf)
                nxt = b.pos
                while nxt < end and buf[nxt] in _WHITESPACE:
                    nxt += 1
                b.line += buf.count(b"\n", b.pos, nxt)
                b.pos = nxt
                if b.pos < end or b.eof:
                    break
                b.refill(_ISA_LOOKAHEAD)
            buf, pos = b.buf, b.pos
            if pos >= len(buf) and b.eof:
                if b.junk_start is not None:
                    yield self._junk_problem(b.junk_start, b.junk_line, b.base + pos,
                                             found_isa=False)
                elif self.interchanges == 0:
                    yield SyntaxProblem(
                        "syntax-empty",
                        "the input is empty: no bytes, or only white space; nothing to scrub",
                        b.base + pos, b.line, fatal=True,
                    )
                return False
            if not buf.startswith(b"ISA", pos) or _find_isa(buf, pos) != pos:
                if b.junk_start is None:
                    b.junk_start, b.junk_line = b.base + pos, b.line
                    if self.interchanges == 0 and _looks_binary(buf[pos : pos + 4096]):
                        yield SyntaxProblem(
                            "syntax-binary",
                            "this is binary data, not an X12 837 text file; check that the "
                            "right file was sent (not a zip, PDF or image)",
                            b.base + pos, b.line, fatal=True,
                        )
                        return False
                idx = _find_isa(buf, pos + 1)
                if idx < 0:
                    # keep the last few bytes: an ISA may straddle the chunk edge
                    keep = max(pos, len(buf) - 8)
                    b.line += buf.count(b"\n", pos, keep)
                    b.pos = keep
                    if b.eof:
                        b.line += buf.count(b"\n", keep, len(buf))
                        yield self._junk_problem(b.junk_start, b.junk_line, b.base + len(buf),
                                                 found_isa=False)
                        return False
                    b.refill(len(buf) - keep + b.chunk_size)
                    continue
                b.line += buf.count(b"\n", pos, idx)
                b.pos = idx
                continue
            if b.junk_start is not None:
                yield self._junk_problem(b.junk_start, b.junk_line, b.base + pos, found_isa=True)
                b.junk_start = None
            return True

    def _header(self, b: _Buffer) -> Generator[Segment | SyntaxProblem, None, _Layout | None]:
        """Read the ISA header the buffer stands on: fixed width, but read by its separators.

        Yields the ISA segment and returns the interchange's layout; returns None
        when the delimiters cannot be known or used (the interchange is skipped
        as junk up to the next ISA).
        """
        buf, pos = b.buf, b.pos
        isa_offset, isa_line = b.base + pos, b.line
        sep_b = buf[pos + 3 : pos + 4]
        idx = pos
        for _ in range(16):
            idx = buf.find(sep_b, idx + 1, pos + _ISA_SCAN_LIMIT)
            if idx < 0:
                break
        if idx < 0 or idx + 2 >= len(buf):
            yield SyntaxProblem(
                "syntax-isa-unreadable",
                "the ISA header does not have 16 elements, so the delimiters of this "
                "interchange cannot be known; it is skipped up to the next ISA",
                isa_offset, isa_line,
            )
            b.skip_to_next_isa()
            return None
        term_index = idx + 2
        isa_bytes = buf[pos:term_index]
        isa_text = isa_bytes.decode("latin-1")
        sep = sep_b.decode("latin-1")
        isa_elements = tuple(isa_text.split(sep))
        component = buf[idx + 1 : idx + 2].decode("latin-1")
        term = buf[term_index : term_index + 1].decode("latin-1")
        rep = isa_elements[11] if len(isa_elements) > 11 else ""
        delimiters = Delimiters(
            element=sep,
            component=component,
            segment=term,
            repetition=rep if len(rep) == 1 and not rep.isalnum() else None,
        )
        isa_length = term_index - pos + 1
        if isa_length != ISA_LENGTH:
            yield SyntaxProblem(
                "syntax-isa-length",
                f"the ISA header is {isa_length} characters long, not {ISA_LENGTH}: its "
                "fields are fixed width (pad ISA02/04 to 10, ISA06/08 to 15, ISA13 to 9); "
                "read it by its separators anyway",
                isa_offset, isa_line,
            )
        why = delimiters.check()
        if why:
            yield SyntaxProblem(
                "syntax-delimiters",
                f"the ISA header declares unusable delimiters ({why}); this interchange is "
                "skipped up to the next ISA",
                isa_offset, isa_line,
            )
            b.skip_to_next_isa()
            return None
        self.delimiters = delimiters
        self.interchanges += 1
        yield Segment("ISA", isa_elements, 1, isa_line, isa_offset, len(isa_bytes))
        b.pos = term_index + 1
        if term == "\n":
            b.line += 1
        return _Layout.of(sep, term, buf[term_index + 1 : term_index + 3])

    def _body(self, b: _Buffer, layout: _Layout) -> Iterator[Segment | SyntaxProblem | Run]:
        """The interchange's segments after ISA, up to and with its IEA (or up to the next ISA).

        Blocks grow from 4 KiB (a short interchange must not cost a whole chunk) to
        a chunk; each ends at a terminator. A regular block goes out as a Run; where
        the pattern breaks, small blocks are split carefully until it holds again.
        """
        term_b = layout.term.encode("latin-1")
        # False while a small block that broke the pattern is read, and always when the
        # terminator is itself white space (a line break): the careful path counts lines
        regular = not layout.term_is_space
        ordinal = 1
        window = 4096
        while True:
            last = b.buf.rfind(term_b, b.pos, b.pos + window)
            if last < 0:
                if b.pos + window < len(b.buf):
                    window *= 2
                    continue
                if not b.eof and len(b.buf) - b.pos > MAX_SEGMENT:
                    ordinal += 1
                    yield self._too_long(layout.term, b.base + b.pos, b.line)
                    self._skip_segment(b, term_b)
                    window = 4096
                    continue
                if not b.eof:
                    b.refill(len(b.buf) - b.pos + b.chunk_size)
                    continue
                yield from self._unterminated_tail(b, layout, ordinal)
                return
            window = min(window * 2, b.chunk_size)
            block = b.buf[b.pos:last]
            if regular and len(block) <= 2 * b.chunk_size and block.isascii():
                done = yield from self._regular_block(b, layout, block.decode("ascii"), last,
                                                      ordinal)
                if done is not None:
                    ordinal, ended = done
                    if ended:
                        return
                    continue
                # the pattern broke somewhere in this block (often at the next
                # interchange): retry from here in small blocks, then split carefully;
                # not when its first segment alone is longer than a small block (that
                # retry found the same block again, forever)
                if len(block) > 8192 and b.buf.find(term_b, b.pos, b.pos + 4096) >= 0:
                    window = 4096
                    continue
                regular = False
            ordinal, ended = yield from self._careful_block(b, layout, block, last, ordinal)
            if ended:
                return
            # one odd spot (an empty segment, a wrapped line) does not make the
            # rest of the interchange slow: the next block is tried as a Run again
            regular = not layout.term_is_space

    def _unterminated_tail(self, b: _Buffer, layout: _Layout,
                           ordinal: int) -> Iterator[Segment | SyntaxProblem]:
        """The end of the input inside an interchange: a last segment without its terminator."""
        rest = b.buf[b.pos:]
        body = rest.lstrip(_WHITESPACE)
        b.line += rest.count(b"\n", 0, len(rest) - len(body))
        if body:
            # the last segment has no terminator: the file was cut short
            seg_offset = b.base + b.pos + len(rest) - len(body)
            text = body.decode("utf-8", "replace").rstrip(_WHITESPACE_STR)
            yield SyntaxProblem(
                "syntax-unterminated",
                f"the last segment has no terminator {layout.term!r}: the file looks "
                "truncated; resend the complete file",
                seg_offset, b.line,
            )
            elements = tuple(text.replace("\r", "").replace("\n", "").split(layout.sep))
            yield Segment(elements[0], elements, ordinal + 1, b.line, seg_offset, len(body))
            b.line += body.count(b"\n")
        b.pos = len(b.buf)

    def _regular_block(self, b: _Buffer, layout: _Layout, text: str, last: int,
                       ordinal: int) -> Generator[Segment | Run, None, tuple[int, bool] | None]:
        """The fast path: a block whose segments all end the same way goes out as one Run.

        Returns None, having yielded nothing, when the block breaks the pattern;
        else the last ordinal and whether the interchange ended (at its IEA, or
        at an ISA, which is left for the next interchange).
        """
        suffix, split_sep, step, inc = layout.suffix, layout.joint, layout.step, layout.inc
        if not text.startswith(suffix) or layout.lead_space in text:
            return None
        body_text = text[len(suffix):] if suffix else text
        # every terminator followed by the same white space, and no other
        # line breaks; each count is one pass over the block, so few of them
        joints = body_text.count(split_sep)
        if suffix:
            breaks_ok = (text.count("\n") == joints + 1
                         and body_text.count(layout.term) == joints
                         and text.count("\r") == (joints + 1 if suffix == "\r\n" else 0))
        else:
            breaks_ok = "\n" not in text and "\r" not in text
        if not (breaks_ok and body_text and not body_text.startswith(split_sep)
                and not body_text.endswith(split_sep)
                and split_sep + split_sep not in body_text
                and not text.startswith(" ", len(suffix))):
            return None
        # whole segments, none empty: hand them on as one Run, up to an
        # ISA or IEA, which ends the interchange
        new = tuple.__new__
        sep = layout.sep
        seg_offset = b.base + b.pos + len(suffix)
        stop = _interchange_end(body_text, split_sep, sep)
        ends = stop >= 0
        if not ends:
            stop = len(body_text) + step
        if stop:
            run_text = body_text[: stop - step]
            count = (run_text.count(split_sep) if ends else joints) + 1
            yield new(Run, (run_text, split_sep, sep, ordinal + 1, b.line + inc, seg_offset, inc))
            ordinal += count
            b.line += count * inc
            seg_offset += stop
        if not ends:
            b.pos = last + 1
            return ordinal, False
        b.line += inc
        end = body_text.find(split_sep, stop)
        part = body_text[stop:] if end < 0 else body_text[stop:end]
        elements = part.split(sep)
        if elements[0] == "ISA":
            b.pos = seg_offset - b.base
            return ordinal, True
        ordinal += 1
        yield new(Segment, (elements[0], tuple(elements), ordinal, b.line, seg_offset, len(part)))
        b.pos = seg_offset + len(part) + 1 - b.base
        return ordinal, True

    def _careful_block(self, b: _Buffer, layout: _Layout, block: bytes, last: int,
                       ordinal: int) -> Generator[Segment | SyntaxProblem, None, tuple[int, bool]]:
        """The careful path: split a block segment by segment, counting line breaks and
        stripping the white space around each segment. Returns the last ordinal and
        whether the interchange ended (at its IEA, or at an ISA left for the next one)."""
        new = tuple.__new__
        term, sep, term_is_space = layout.term, layout.sep, layout.term_is_space
        term_lines = 1 if term == "\n" else 0
        sizes: list[int] | None
        if block.isascii():
            parts = block.decode("ascii").split(term)
            sizes = None
        else:
            raw_parts = block.split(term.encode("latin-1"))
            sizes = [len(p) for p in raw_parts]
            parts = [p.decode("utf-8", "replace") for p in raw_parts]
        base = b.base
        line = b.line
        cursor = base + b.pos
        for index, part in enumerate(parts):
            size = len(part) if sizes is None else sizes[index]
            part_offset = cursor
            cursor += size + 1
            newlines = part.count("\n")
            if newlines or term_is_space or (part and part[0] in _WHITESPACE_STR):
                body = part.lstrip(_WHITESPACE_STR)
                lead = len(part) - len(body)
                seg_line = line + part.count("\n", 0, lead)
                line += newlines + term_lines
                seg_offset = part_offset + (lead if sizes is None
                                            else len(part[:lead].encode("utf-8")))
                body = body.rstrip(_WHITESPACE_STR)
                if "\n" in body or "\r" in body:
                    # a sender that wraps long segments at a fixed width
                    body = body.replace("\r", "").replace("\n", "")
            else:
                body = part
                seg_line = line
                seg_offset = part_offset
            if len(body) > MAX_SEGMENT:
                ordinal += 1
                yield self._too_long(term, seg_offset, seg_line)
                continue
            if not body:
                if part and index == len(parts) - 1:
                    continue  # white space after the last terminator of a block
                yield SyntaxProblem(
                    "syntax-empty-segment",
                    f"an empty segment (two terminators {term!r} in a row); remove it",
                    seg_offset, seg_line,
                )
                continue
            elements = tuple(body.split(sep))
            sid = elements[0]
            if sid == "ISA":
                # a new interchange began before this one ended
                b.pos = seg_offset - base
                b.line = seg_line
                return ordinal, True
            ordinal += 1
            yield new(Segment, (sid, elements, ordinal, seg_line, seg_offset,
                                cursor - 1 - seg_offset))
            if sid == "IEA":
                b.pos = cursor - base
                b.line = line
                return ordinal, True
        b.pos = last + 1
        b.line = line
        return ordinal, False

    @staticmethod
    def _skip_segment(b: _Buffer, term_b: bytes) -> None:
        """Move past the segment that starts here, to its terminator, holding a chunk at most."""
        while True:
            found = b.buf.find(term_b, b.pos)
            b.line += b.buf.count(b"\n", b.pos, found if found >= 0 else len(b.buf))
            b.pos = found + 1 if found >= 0 else len(b.buf)
            if found >= 0 or b.eof:
                return
            b.refill(b.chunk_size)

    @staticmethod
    def _too_long(term: str, offset: int, line: int) -> SyntaxProblem:
        """A segment over MAX_SEGMENT bytes: skipped, so that memory stays bounded."""
        return SyntaxProblem(
            "syntax-segment-too-long",
            f"a segment runs on for more than {MAX_SEGMENT >> 20} MB (no terminator {term!r} "
            "within it): it was skipped up to its terminator; an 837 segment is a few KB at "
            "most, so check the segment terminator the ISA declares (its last character)",
            offset, line,
        )

    def _junk_problem(self, start: int, line: int, end: int, found_isa: bool) -> SyntaxProblem:
        size = end - start
        if found_isa:
            return SyntaxProblem(
                "syntax-junk",
                f"{size} bytes that are not X12 stand before the next ISA header; they were "
                "skipped",
                start, line,
            )
        if self.interchanges:
            return SyntaxProblem(
                "syntax-trailing-junk",
                f"{size} bytes that are not X12 follow the last interchange; they were ignored",
                start, line,
            )
        return SyntaxProblem(
            "syntax-no-isa",
            f"no ISA header found in {size} bytes of text: an X12 interchange must begin with "
            "ISA, which declares its delimiters; check that this is an 837 file and that its "
            "first segment was not cut off",
            start, line, fatal=True,
        )
