"""Mend what is mechanical in an 837, never what is billed: ``scrub fix``.

Safe fixes cannot change what a claim says: counts and control numbers of the
trailers (SE01/SE02, GE01/GE02, IEA01/IEA02, from what the envelope holds and
its header), a byte-order mark, white space and line breaks between and
inside segments (each segment ends with its terminator and the line break
the interchange's ISA is followed by, nothing else), empty segments, trailing
element separators, lower-case code values where the guide's code list is
upper-case, and the terminator missing at the end of the file. Unsafe fixes
(``unsafe=True``) apply what a rule's own message tells the biller to do, and
do change what is billed: each is listed, and none is applied by default.

Every fix is a ``Fix`` (rule id, where, before -> after). The file is read as
it streams and written whole (scrubber.fix.cli writes it under a temporary
name); everything that is not fixed is copied byte for byte, so a file with
nothing to fix comes out identical, and fixing a fixed file changes nothing.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import BinaryIO, cast

from scrubber.files import SharedReader, staged
from scrubber.x12.tokenizer import BOM, Segment, Tokenizer

_WHITESPACE = b" \t\r\n\x0b\x0c"
_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class Fix:
    """One change ``scrub fix`` made (or, unsafe and not asked for, would make)."""

    rule: str  # the finding or problem it mends: "env-se-count", "snip-claim-balance"
    line: int  # physical line of the segment in the input
    offset: int  # byte offset in the input
    where: str  # "SE01", "between segments", "end of file"
    before: str
    after: str
    safe: bool = True

    def describe(self) -> str:
        mark = "" if self.safe else " (unsafe)"
        return (f"{self.rule}{mark}: line {self.line}, {self.where}: "
                f"{self.before!r} -> {self.after!r}")

    def as_dict(self) -> dict:
        return {"rule": self.rule, "line": self.line, "offset": self.offset,
                "where": self.where, "before": self.before, "after": self.after,
                "safe": self.safe}


@dataclass(frozen=True, slots=True)
class Fixer:
    """What ``scrub fix`` can mend, for ``scrub fix --list`` and ``scrub rules``."""

    rule: str
    safe: bool
    what: str


#: every fix, the safe ones first; registry rules also declare theirs (Rule.fix)
FIXERS = (
    Fixer("env-se-count", True, "SE01 set to the segments ST through SE"),
    Fixer("env-se-control", True, "SE02 set to ST02"),
    Fixer("env-ge-count", True, "GE01 set to the transaction sets of the group"),
    Fixer("env-ge-control", True, "GE02 set to GS06"),
    Fixer("env-iea-count", True, "IEA01 set to the groups of the interchange"),
    Fixer("env-iea-control", True, "IEA02 set to ISA13"),
    Fixer("syntax-bom", True, "a byte-order mark before the ISA removed"),
    Fixer("syntax-whitespace", True, "white space and line breaks between and inside "
          "segments made the interchange's own (terminator, then its line break)"),
    Fixer("syntax-empty-segment", True, "an empty segment (two terminators) removed"),
    Fixer("syntax-unterminated", True, "the missing terminator added after the last segment"),
    Fixer("ig-trailing-separator", True, "trailing element separators removed"),
    Fixer("ig-element", True, "a lower-case code value upper-cased where the guide's code "
          "list is upper-case"),
    Fixer("snip-claim-balance", False, "CLM02 set to the sum of the line charges"),
    Fixer("96523-units", False, "units of a 96523 line set to 1"),
)


@dataclass(frozen=True, slots=True)
class FixResult:
    """What a fix run did: the fixes applied (and, without ``unsafe``, none unsafe)."""

    fixes: tuple[Fix, ...]

    @property
    def changed(self) -> bool:
        return bool(self.fixes)


@lru_cache(maxsize=1)
def code_lists() -> dict[tuple[str, int, int], frozenset[str]]:
    """Upper-case code lists of the 837 guides: (segment id, element, component) -> codes.

    Component 0 is a simple element. Only ID elements whose guide lists codes
    and lists them all in upper case count: there, a lower-case value is the
    same code mistyped.
    """
    from scrubber.ig import load_guides
    from scrubber.ig.tables import CompositeSpec, ElementSpec

    found: dict[tuple[str, int, int], set[str]] = {}
    for guide in load_guides().guides.values():
        for node in guide.nodes:
            if node.kind != "segment":
                continue
            for spec in node.elements:
                parts: Iterable[tuple[int, int, ElementSpec]]
                if isinstance(spec, CompositeSpec):
                    parts = ((spec.seq, c.seq, c) for c in spec.components)
                else:
                    parts = ((spec.seq, 0, spec),)
                for seq, component, element in parts:
                    if element.data_type == "ID" and element.codes and all(
                            code == code.upper() for code in element.codes):
                        found.setdefault((node.xid, seq, component), set()).update(
                            element.codes)
    return {key: frozenset(codes) for key, codes in found.items()}


class _Envelope:
    """Counts and header control numbers of the open envelopes, as the claim walker keeps them."""

    def __init__(self) -> None:
        self.isa13 = self.gs06 = self.st02 = ""
        self.groups = self.sets = 0
        self.st_ordinal = 0
        self.ordinal = 0  # segments of the interchange so far (ISA = 1)


def fix(source: BinaryIO | bytes, out: BinaryIO, *, unsafe: bool = False,
        unsafe_edits: dict[int, list[tuple[int, str, str]]] | None = None) -> FixResult:
    """Write ``source`` to ``out`` with its mechanical faults mended; list every fix.

    ``source`` is bytes or a seekable binary stream. ``unsafe`` applies the
    unsafe fixes ``unsafe_edits`` gives (segment offset -> (element, value,
    rule)), as ``unsafe_fixes`` finds them with a scrub.
    """
    handle = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
    handle.seek(0)
    reader = SharedReader(handle)  # from the start, before the writer looks for the end
    writer = _Writer(handle, out)
    fixes: list[Fix] = []
    codes = code_lists()
    edits = unsafe_edits if unsafe and unsafe_edits else {}
    tokens = Tokenizer(cast(BinaryIO, reader))
    env = _Envelope()
    sep = comp = term = "\x00"
    suffix = b""
    previous: Segment | None = None
    joint = b""
    for item in tokens:
        if not isinstance(item, Segment):
            continue
        seg = item
        _gap(writer, fixes, previous, seg, joint)  # the joint of the interchange before
        if seg.id == "ISA":
            delimiters = tokens.delimiters
            assert delimiters is not None
            sep, comp, term = delimiters.element, delimiters.component, delimiters.segment
            end = seg.offset + seg.length
            after = writer.peek(end + 1, 2)
            suffix = b"" if term in "\r\n \t" else b"\r\n" if after == b"\r\n" else \
                b"\n" if after[:1] == b"\n" else b""
            env = _Envelope()
            env.isa13 = seg.get(13).strip()
            joint = term.encode("latin-1") + suffix
        env.ordinal += 1
        if seg.id != "ISA":
            _segment(writer, fixes, seg, sep, comp, env, codes, edits.get(seg.offset, ()))
        previous = seg
    if previous is not None:
        _gap(writer, fixes, previous, None, joint)
    writer.finish()
    return FixResult(tuple(fixes))


def _gap(writer: _Writer, fixes: list[Fix], previous: Segment | None, seg: Segment | None,
         joint: bytes) -> None:
    """Make what stands between two segments (or before the first, after the last) the
    interchange's joint; a gap holding anything but terminators and white space is junk
    the scrub reports, and is left as it is."""
    start = previous.offset + previous.length if previous is not None else 0
    end = seg.offset if seg is not None else writer.size
    gap = writer.peek(start, end - start)
    term = joint[:1]
    if previous is None:
        want = b""
        if gap.startswith(BOM):
            fixes.append(Fix("syntax-bom", 1, 0, "start of file", "BOM", ""))
            gap_rest = gap[len(BOM):]
        else:
            gap_rest = gap
        if gap_rest and not gap_rest.strip(_WHITESPACE):
            fixes.append(Fix("syntax-whitespace", 1, 0, "before the ISA",
                             _shown(gap_rest), ""))
        elif gap_rest:
            return  # junk before the ISA: not ours to mend
        if gap != want:
            writer.edit(start, end, want)
        return
    if gap == joint:
        return
    if gap.strip(_WHITESPACE + term):
        return  # junk between segments or after the last: the scrub reports it
    line, where = previous.line, "between segments"
    terms = gap.count(term)
    if seg is None and terms == 0:
        fixes.append(Fix("syntax-unterminated", line, start, "end of file",
                         _shown(gap), _shown(joint)))
    elif terms > 1 and term.strip():
        fixes.append(Fix("syntax-empty-segment", line, start, where, _shown(gap),
                         _shown(joint)))
    else:
        fixes.append(Fix("syntax-whitespace", line, start,
                         "end of file" if seg is None else where, _shown(gap), _shown(joint)))
    writer.edit(start, end, joint)


def _shown(data: bytes) -> str:
    return data.decode("latin-1")


def _segment(writer: _Writer, fixes: list[Fix], seg: Segment, sep: str, comp: str,
             env: _Envelope, codes: dict[tuple[str, int, int], frozenset[str]],
             unsafe: Iterable[tuple[int, str, str]]) -> None:
    """Mend one segment's own text: white space, separators, code case, trailer numbers."""
    raw = writer.peek(seg.offset, seg.length)
    text = raw.decode("latin-1")
    found: list[Fix] = []
    sid = seg.id
    clean = text.replace("\r", "").replace("\n", "").rstrip(" \t")
    if clean != text:
        found.append(Fix("syntax-whitespace", seg.line, seg.offset, f"in {sid}",
                         text, clean))
    elements = clean.split(sep)
    trailing = 0
    while len(elements) > 1 and elements[-1] == "":
        elements.pop()
        trailing += 1
    if trailing:
        found.append(Fix("ig-trailing-separator", seg.line, seg.offset, sid,
                         sep * trailing, ""))
    for index in range(1, len(elements)):
        elements[index] = _upper_codes(sid, index, elements[index], comp, codes, found, seg)
    if sid == "ST":
        env.st02, env.st_ordinal = (elements + ["", "", ""])[2], env.ordinal
        env.sets += 1
    elif sid == "GS":
        env.gs06 = (elements + [""] * 7)[6]
        env.groups += 1
        env.sets = 0
    elif sid == "SE":
        _trailer(elements, found, seg, ("env-se-count", "env-se-control"),
                 str(env.ordinal - env.st_ordinal + 1), env.st02)
    elif sid == "GE":
        _trailer(elements, found, seg, ("env-ge-count", "env-ge-control"), str(env.sets),
                 env.gs06)
    elif sid == "IEA":
        _trailer(elements, found, seg, ("env-iea-count", "env-iea-control"), str(env.groups),
                 env.isa13)
    for element, value, rule in unsafe:
        while len(elements) <= element:
            elements.append("")
        if elements[element] != value:
            found.append(Fix(rule, seg.line, seg.offset, f"{sid}{element:02d}",
                             elements[element], value, safe=False))
            elements[element] = value
    new = sep.join(elements)
    if new != text:
        fixes.extend(found)
        writer.edit(seg.offset, seg.offset + seg.length, new.encode("latin-1"))


def _upper_codes(sid: str, index: int, value: str, comp: str,
                 codes: dict[tuple[str, int, int], frozenset[str]], found: list[Fix],
                 seg: Segment) -> str:
    """``value`` with lower-case codes upper-cased where the guide lists only upper-case."""
    if value == value.upper():
        return value
    parts = value.split(comp) if (sid, index, 1) in codes else [value]
    changed = False
    for n, part in enumerate(parts):
        listed = codes.get((sid, index, n + 1 if len(parts) > 1 or (sid, index, 1) in codes
                            else 0))
        if listed and part not in listed and part.upper() in listed:
            parts[n] = part.upper()
            changed = True
    if not changed:
        return value
    new = comp.join(parts)
    found.append(Fix("ig-element", seg.line, seg.offset, f"{sid}{index:02d}", value, new))
    return new


def _trailer(elements: list[str], found: list[Fix], seg: Segment, codes: tuple[str, str],
             count: str, control: str) -> None:
    """A trailer's count and control number from what its envelope holds and its header
    (``codes``: the problem codes of a wrong count and a wrong control number)."""
    while len(elements) < 3:
        elements.append("")
    sid = elements[0]
    if elements[1] != count:
        found.append(Fix(codes[0], seg.line, seg.offset, f"{sid}01", elements[1],
                         count))
        elements[1] = count
    if control and elements[2] != control:
        found.append(Fix(codes[1], seg.line, seg.offset, f"{sid}02", elements[2],
                         control))
        elements[2] = control


class _Writer:
    """Copies the input to the output byte for byte, with edits laid over byte ranges."""

    def __init__(self, handle: BinaryIO, out: BinaryIO):
        self.handle, self.out = handle, out
        handle.seek(0, 2)
        self.size = handle.tell()
        self.done = 0  # input bytes before this are written (or replaced)

    def peek(self, start: int, size: int) -> bytes:
        if size <= 0:
            return b""
        self.handle.seek(start)
        return self.handle.read(size)

    def copy(self, end: int) -> None:
        while self.done < end:
            chunk = self.peek(self.done, min(_CHUNK, end - self.done))
            if not chunk:
                break
            self.out.write(chunk)
            self.done += len(chunk)

    def edit(self, start: int, end: int, replacement: bytes) -> None:
        self.copy(start)
        self.out.write(replacement)
        self.done = max(self.done, end)

    def finish(self) -> None:
        self.copy(self.size)


def unsafe_fixes(source: bytes | str | os.PathLike, *, options: object = None
                 ) -> dict[int, list[tuple[int, str, str]]]:
    """The unsafe edits the scrub's findings call for: segment offset -> (element, value,
    rule). CLM02 of a claim out of balance becomes the sum of its lines; a 96523 line
    billed with other than one unit gets one."""
    from scrubber.core import Scrubber
    from scrubber.options import ScrubOptions
    from scrubber.rules.findings import ScrubbedClaim

    edits: dict[int, list[tuple[int, str, str]]] = {}
    given = options if isinstance(options, ScrubOptions) else ScrubOptions(data=None)
    from dataclasses import replace

    with Scrubber(replace(given, record=False)) as scrubber:
        for event in scrubber.events(source):
            if event.__class__ is not ScrubbedClaim:
                continue
            for offset, edit in _claim_edits(event):  # type: ignore[arg-type]
                edits.setdefault(offset, []).append(edit)
    return edits


def _claim_edits(scrubbed: object) -> Iterator[tuple[int, tuple[int, str, str]]]:
    from scrubber.rules.findings import ScrubbedClaim

    assert isinstance(scrubbed, ScrubbedClaim)
    rules = {finding.rule for finding in scrubbed.findings}
    claim = scrubbed.claim
    if "snip-claim-balance" in rules:
        total = sum((line.charge for line in claim.lines if line.charge is not None),
                    Decimal(0))
        yield claim.location.offset, (2, _amount(total), "snip-claim-balance")
    if "96523-units" in rules:
        units = 5 if scrubbed.record.transaction.kind == "837I" else 4
        for line in claim.lines:
            where = line.service_location
            if line.procedure == "96523" and line.units != 1 and where is not None:
                yield where.offset, (units, "1", "96523-units")


def _amount(value: Decimal) -> str:
    """An X12 R amount as the lines write theirs: no exponent, their decimals."""
    return format(value, "f")


def fix_file(path: str | os.PathLike, output: str | os.PathLike | None, *,
             unsafe: bool = False, options: object = None) -> tuple[FixResult, int]:
    """Fix the file at ``path`` into ``output`` (None: only list the fixes), written whole:
    under a temporary name beside it, then renamed (``output`` may be ``path``).

    The safe fixes come first; the unsafe ones are found by scrubbing what they
    made (a claim in a set the guide check rejects is not judged by the rules).
    Returns the result and how many unsafe fixes were left out (``unsafe`` off),
    so that the caller can say they exist.
    """
    import tempfile

    with open(path, "rb") as handle, tempfile.TemporaryFile(prefix="scrub-fix-") as safe:
        first = fix(handle, safe)
        safe.flush()
        safe.seek(0)
        edits = unsafe_fixes(safe.read(), options=options)
        left_out = 0 if unsafe else sum(len(found) for found in edits.values())
        if output is None:
            second = fix(safe, io.BytesIO(), unsafe=unsafe, unsafe_edits=edits)
            return FixResult(first.fixes + second.fixes), left_out
        with staged(output) as (stage, _), open(stage, "wb") as out:
            second = fix(safe, out, unsafe=unsafe, unsafe_edits=edits)
    return FixResult(first.fixes + second.fixes), left_out


def diff_text(before: bytes, after: bytes, name: str) -> str:
    """A unified diff of two 837s, a segment a line (a file on one line stays readable)."""
    import difflib

    def lines(data: bytes) -> list[str]:
        text = data.decode("latin-1")
        term = text[105] if text.startswith("ISA") and len(text) > 105 else "~"
        return [part.strip("\r\n") + term + "\n" for part in text.split(term)
                if part.strip("\r\n \t")]

    return "".join(difflib.unified_diff(lines(before), lines(after), f"a/{name}",
                                        f"b/{name}"))
