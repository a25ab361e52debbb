"""Mutation fuzzer: damaged and hostile 837s must never crash the scrub or break its output.

    python bench/fuzz.py --seed 7 --count 1000           # any seed, any count
    python bench/fuzz.py --seed 7 --count 500 --keep out/ # keep each failing input

Each case starts from a small valid 837P or 837I of our own generator
(bench/gen837.py: fictional people, NPIs with valid check digits) and applies
one to three of 30 mutations (``MUTATIONS``): truncation, byte flips,
duplicated / deleted / swapped segments, swapped delimiters, huge elements and
components, NUL bytes, UTF-16, HL trees with bad parents, envelopes out of
order, hostile values (our delimiters, terminal escapes, 1E+999999999, 5,000
digits, non-ASCII); HL chains and rings up to 50,000 HLs, transaction sets of
100,000 segments, every delimiter the same character, repetition separators,
giant numbers in every numeric element, Unicode look-alikes in ids, CR-only
line ends, one envelope segment too many, control numbers 400 KB long or
lettered, nonsense ISA fields, segment ids that are no ids, elements past
position 99, the interchange sent many times, bytes before the ISA, group and
set headers that do not fit. Then ``check_case`` asserts what
docs/reliability.md promises:

- ``scrub check --format json --277ca DIR --999`` exits 0, 1 or 2 with no
  traceback, and its JSON is valid against docs/report.schema.json;
- a case that exits 1 (rejected) has an acknowledgement: a TA1, 999 or 277CA;
- every acknowledgement file written passes pyx12's validator and reads back
  as whole interchanges of acknowledgement segments; ``scrubber.scrub``
  writes the same ones (clock and control numbers aside);
- walking files -> interchanges -> groups -> transactions -> claims finds
  exactly ``summary.claims``, and every CLM segment of the input is a claim of
  the report or named by a located problem;
- the text and HTML reports render, with no control character in them;
- output size stays bounded (``LIMITS``); here, not in the suite, a case over
  ``LIMITS["seconds"]`` is a finding too (``--no-time-limit`` on a busy machine).

The same function runs in the suite with a fixed seed and count
(tests/test_fuzz.py), so CI is reproducible; run it here with fresh seeds. The
figures it prints at the end are the ones docs/reliability.md quotes.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import re
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from gen837 import generate  # noqa: E402

SCHEMA = HERE.parent / "docs" / "report.schema.json"
ACK_SEGMENTS = frozenset((
    "ISA", "GS", "ST", "SE", "GE", "IEA", "TA1",  # envelopes and the TA1
    "AK1", "AK2", "IK3", "CTX", "IK4", "IK5", "AK9",  # 999
    "BHT", "HL", "NM1", "TRN", "DTP", "STC", "QTY", "AMT", "REF", "SVC",  # 277CA
))
#: bounds a case must stay within: seconds, and output bytes per input byte (plus a floor)
LIMITS = {"seconds": 20.0, "output_per_input": 40, "output_floor": 256 * 1024}
HOSTILE = (
    "~IEA*1*000000001~ISA*INJECTED", "*:^~", "\x1b]0;pwned\x07\x1b[2J", "1E+999999999",
    "1E999999", "9" * 5000, "-0", "NaN", "Infinity", "\u00e9\u00b2", "\x00", "\x9b31m",
    "A" * 70000, "..", "-", "+1", "1_000", " 12 ", "\u2028",
)


# -- mutations ---------------------------------------------------------------------------
Mutation = Callable[[bytes, random.Random], bytes]


def _segments(data: bytes) -> tuple[list[bytes], bytes]:
    """The input split on its terminator (the 106th byte of a sound ISA)."""
    term = data[105:106] if len(data) > 106 and data.startswith(b"ISA") else b"~"
    return data.split(term), term


def _join(parts: list[bytes], term: bytes) -> bytes:
    return term.join(parts)


def _pick(parts: list[bytes], rng: random.Random, prefix: bytes | None = None) -> int:
    body = [i for i, p in enumerate(parts) if p.strip() and
            (prefix is None or p.lstrip().startswith(prefix))]
    return rng.choice(body) if body else 0


def truncate(data: bytes, rng: random.Random) -> bytes:
    return data[:rng.randrange(len(data) + 1)]


def flip_bytes(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        if out:
            out[rng.randrange(len(out))] = rng.randrange(256)
    return bytes(out)


def duplicate_segment(data: bytes, rng: random.Random) -> bytes:
    parts, term = _segments(data)
    i = _pick(parts, rng)
    parts[i:i] = [parts[i]] * rng.choice((1, 1, 2, 50))
    return _join(parts, term)


def delete_segment(data: bytes, rng: random.Random) -> bytes:
    parts, term = _segments(data)
    prefix = rng.choice((None, None, b"GS", b"GE", b"ST", b"SE", b"HL", b"IEA", b"ISA"))
    del parts[_pick(parts, rng, prefix)]
    return _join(parts, term)


def swap_segments(data: bytes, rng: random.Random) -> bytes:
    parts, term = _segments(data)
    i, j = _pick(parts, rng), _pick(parts, rng)
    parts[i], parts[j] = parts[j], parts[i]
    return _join(parts, term)


def move_envelope(data: bytes, rng: random.Random) -> bytes:
    """A GS, ST or ISA moved after a claim (or into another set)."""
    parts, term = _segments(data)
    head = _pick(parts, rng, rng.choice((b"GS", b"ST", b"ISA", b"GE", b"SE")))
    segment = parts.pop(head)
    parts.insert(min(len(parts), _pick(parts, rng, b"CLM") + rng.randint(0, 3)), segment)
    return _join(parts, term)


def swap_delimiters(data: bytes, rng: random.Random) -> bytes:
    a, b = rng.sample((b"*", b":", b"^", b"~", b"|", b"\n"), 2)
    start = 106 if rng.random() < 0.5 else 0  # the body only, or the ISA too
    body = data[start:].replace(a, b"\x00\x01").replace(b, a).replace(b"\x00\x01", b)
    return data[:start] + body


def _set_element(data: bytes, rng: random.Random, value: bytes,
                 prefix: bytes | None = None) -> bytes:
    parts, term = _segments(data)
    i = _pick(parts, rng, prefix)
    elements = parts[i].split(b"*")
    if len(elements) > 1:
        elements[rng.randrange(1, len(elements))] = value
    parts[i] = b"*".join(elements)
    return _join(parts, term)


def huge_element(data: bytes, rng: random.Random) -> bytes:
    size = rng.choice((5000, 70000, 400000))
    value = rng.choice((b"9", b"X", b"1.")) * size
    return _set_element(data, rng, value, rng.choice((None, b"LX", b"CLM", b"SV1", b"HL")))


def huge_components(data: bytes, rng: random.Random) -> bytes:
    return _set_element(data, rng, b":".join([b"A1"] * rng.choice((500, 50000))),
                        rng.choice((None, b"HI", b"SV1", b"CLM")))


def nul_bytes(data: bytes, rng: random.Random) -> bytes:
    at = rng.randrange(len(data) + 1)
    return data[:at] + b"\x00" * rng.choice((1, 3, 4096)) + data[at:]


def utf16(data: bytes, rng: random.Random) -> bytes:
    text = data.decode("latin-1")
    return text.encode(rng.choice(("utf-16", "utf-16-le", "utf-16-be")))


def bad_hl_parent(data: bytes, rng: random.Random) -> bytes:
    value = rng.choice((b"", b"99", b"0", b"-1", b"1", b"3", b"A"))
    parts, term = _segments(data)
    i = _pick(parts, rng, b"HL")
    elements = parts[i].split(b"*")
    if len(elements) > 2:
        elements[rng.choice((1, 2))] = value
    parts[i] = b"*".join(elements)
    return _join(parts, term)


def hostile_value(data: bytes, rng: random.Random) -> bytes:
    value = rng.choice(HOSTILE).encode("utf-8")
    prefix = rng.choice((None, b"CLM", b"NM1", b"ST", b"GS", b"LX", b"SV1", b"SV2", b"REF"))
    return _set_element(data, rng, value, prefix)


def hostile_isa(data: bytes, rng: random.Random) -> bytes:
    """A sender id (ISA06) or control number (ISA13) holding our delimiters, at ISA width."""
    if len(data) < 106:
        return data
    value = rng.choice((b"Z~IEA*1*1~ISA*Q", b"1~IEA*1*1", b"\xe9\xe9\xe9"))
    at = {b"Z": 35, b"1": 90, b"\xe9": 35}[value[:1]]
    return data[:at] + value + data[at + len(value):]


def _rare(rng: random.Random, big: int, sizes: tuple[int, ...]) -> int:
    """A size from ``sizes``, or now and then (one in 25) ``big``."""
    return big if rng.random() < 1 / 25 else rng.choice(sizes)


def hl_chain(data: bytes, rng: random.Random, size: int | None = None) -> bytes:
    """HL segments each naming the one before as its parent: a tree up to 50,000 deep."""
    parts, term = _segments(data)
    at = _pick(parts, rng, b"HL") + 1
    n = size or _rare(rng, 50_000, (3, 40, 1_000))
    first = rng.randint(1, 9)
    level = rng.choice((b"22", b"23", b"20", b"PT"))
    parts[at:at] = [b"\nHL*%d*%d*%s*1" % (first + k, first + k - 1, level) for k in range(n)]
    return _join(parts, term)


def hl_cycle(data: bytes, rng: random.Random, size: int | None = None) -> bytes:
    """HL parents that loop: an HL its own parent, two naming each other, rings up to 50,000."""
    parts, term = _segments(data)
    at = _pick(parts, rng, b"HL")
    n = size or _rare(rng, 50_000, (1, 2, 7, 500))
    first = rng.randint(1, 5)
    parts[at:at + 1] = [b"\nHL*%d*%d*%s*1" % (first + k, first + (k + 1) % n,
                                              rng.choice((b"22", b"23")))
                        for k in range(n)]
    return _join(parts, term)


def big_set(data: bytes, rng: random.Random, size: int | None = None) -> bytes:
    """A transaction set of 100,000 segments: a claim's service lines, one NTE, or one
    claim repeated over and over (now and then; 2,000 to 10,000 segments otherwise)."""
    parts, term = _segments(data)
    n = size or _rare(rng, 100_000, (2_000, 10_000))
    how = rng.choice(("lines", "segment", "claims"))
    if how == "lines" and any(p.lstrip().startswith(b"LX*") for p in parts):
        at = _pick(parts, rng, b"LX")
        block = [p for p in parts[at:at + 3]]
    elif how == "claims" and any(p.lstrip().startswith(b"CLM*") for p in parts):
        at = _pick(parts, rng, b"CLM")
        end = at + 1
        while end < len(parts) and parts[end].lstrip()[:3] not in (b"CLM", b"SE*", b"HL*"):
            end += 1
        block = parts[at:end]
    else:
        at = _pick(parts, rng)
        block = [rng.choice((b"\nNTE*ADD*FUZZ NOTE", parts[at]))]
    parts[at:at] = block * max(1, n // max(1, len(block)))
    return _join(parts, term)


def giant_numbers(data: bytes, rng: random.Random) -> bytes:
    """Every numeric element (digits, with or without a point) made one giant number."""
    value = rng.choice((b"9" * 19, b"9" * 5000, b"1" + b"0" * 400, b"99999999999999999999.99",
                        b"1E+999999999", b"-" + b"9" * 30, b"0." + b"0" * 3000 + b"1"))
    number = re.compile(rb"-?[0-9]+(\.[0-9]+)?")
    parts, term = _segments(data)
    for i, part in enumerate(parts):
        if part.lstrip().startswith(b"ISA"):
            continue  # the fixed-width ISA is isa_fields' business
        elements = part.split(b"*")
        parts[i] = b"*".join([elements[0]] + [value if number.fullmatch(e) else e
                                              for e in elements[1:]])
    return _join(parts, term)


def same_delimiters(data: bytes, rng: random.Random) -> bytes:
    """Delimiters made the same character: all four, or two of them (the ISA's too)."""
    if len(data) < 106 or not data.startswith(b"ISA"):
        return data
    delimiters = {"element": data[3:4], "repetition": data[82:83], "component": data[104:105],
                  "terminator": data[105:106]}
    names = rng.choice((tuple(delimiters), ("element", "terminator"), ("element", "component"),
                        ("component", "repetition"), ("repetition", "terminator"),
                        ("component", "terminator")))
    target = delimiters[rng.choice(names)]
    for name in names:
        data = data.replace(delimiters[name], target)
    return data


def repetition_separators(data: bytes, rng: random.Random) -> bytes:
    """Repetition separators where nothing repeats, thousands of them, or an ISA11 that is
    another delimiter (or the 4010 "U")."""
    if len(data) < 106 or not data.startswith(b"ISA"):
        return data
    how = rng.choice(("value", "many", "isa11"))
    rep = data[82:83]
    if how == "isa11":
        return data[:82] + rng.choice((data[3:4], data[104:105], b"U", b" ", data[105:106])) + \
            data[83:]
    parts, term = _segments(data)
    i = _pick(parts, rng, rng.choice((None, b"SV1", b"HI", b"NM1", b"CLM")))
    elements = parts[i].split(data[3:4])
    if len(elements) > 1:
        k = rng.randrange(1, len(elements))
        extra = rep * (5000 if how == "many" else 1)
        elements[k] = elements[k] + extra + elements[k]
    parts[i] = data[3:4].join(elements)
    return _join(parts, term)


LOOKALIKES = {"A": "\u0410", "B": "\u0412", "C": "\u0421", "E": "\u0415", "M": "\u041c",
              "O": "\u041e", "P": "\u0420", "0": "\uff10", "1": "\uff11", "2": "\uff12",
              "9": "\uff19", "-": "\u2010", " ": "\u00a0"}


def unicode_lookalikes(data: bytes, rng: random.Random) -> bytes:
    """Ids with Unicode look-alikes (Cyrillic А, fullwidth ０, a no-break space), in UTF-8:
    CLM01, NM109, REF02, GS02/GS06, ST02, SE02 or the ISA sender."""
    prefix, index = rng.choice(((b"CLM", 1), (b"NM1", 9), (b"REF", 2), (b"GS", 2), (b"GS", 6),
                                (b"ST", 2), (b"SE", 2), (b"ISA", 6)))
    parts, term = _segments(data)
    i = _pick(parts, rng, prefix)
    elements = parts[i].split(b"*")
    if len(elements) > index:
        text = elements[index].decode("latin-1")
        swapped = "".join(LOOKALIKES.get(c, c) if rng.random() < 0.5 else c for c in text)
        if swapped == text:
            swapped = text + "\u0410"
        elements[index] = swapped.encode("utf-8")
    parts[i] = b"*".join(elements)
    return _join(parts, term)


def cr_line_ends(data: bytes, rng: random.Random) -> bytes:
    """CR-only line ends (old Mac), CRLF, or a CR that is the segment terminator itself."""
    how = rng.choice(("cr", "crlf", "terminator"))
    if how == "cr":
        return data.replace(b"\n", b"\r")
    if how == "crlf":
        return data.replace(b"\n", b"\r\n")
    if len(data) < 106:
        return data
    term = data[105:106]
    return data.replace(term + b"\n", b"\r").replace(term, b"\r")


def extra_envelope(data: bytes, rng: random.Random) -> bytes:
    """One envelope segment too many: a second GE, SE, IEA, GS, ST or ISA somewhere."""
    parts, term = _segments(data)
    prefix = rng.choice((b"GE", b"SE", b"IEA", b"GS", b"ST", b"ISA"))
    source = _pick(parts, rng, prefix)
    at = rng.choice((source + 1, _pick(parts, rng), len(parts) - 1))
    parts.insert(max(0, at), parts[source])
    return _join(parts, term)


def control_numbers(data: bytes, rng: random.Random) -> bytes:
    """A control number or count replaced: 400 KB long, lettered, empty, negative, zero."""
    value = rng.choice((b"7" * 400_000, b"ABC", b"", b"-1", b"0", b"1", b"00000000001",
                        b"12 4", b"9" * 20))
    if len(data) > 106 and data.startswith(b"ISA") and rng.random() < 0.2:
        return data[:90] + value[:9].ljust(9, b"0") + data[99:]  # ISA13 at its width
    prefix, index = rng.choice(((b"GS", 6), (b"ST", 2), (b"SE", 2), (b"GE", 2), (b"IEA", 2),
                                (b"GE", 1), (b"IEA", 1), (b"SE", 1)))
    parts, term = _segments(data)
    i = _pick(parts, rng, prefix)
    elements = parts[i].split(b"*")
    if len(elements) > index:
        elements[index] = value
    parts[i] = b"*".join(elements)
    return _join(parts, term)


#: (offset, width) of the ISA fields a TA1 or acknowledgement header reads back
_ISA_FIELDS = ((32, 2), (51, 2), (70, 6), (77, 4), (84, 5), (100, 1), (102, 1))


def isa_fields(data: bytes, rng: random.Random) -> bytes:
    """An ISA field at its fixed width holding nonsense: date, time, qualifiers, version, flags."""
    if len(data) < 106 or not data.startswith(b"ISA"):
        return data
    at, width = rng.choice(_ISA_FIELDS)
    value = rng.choice((b"?", b"X", b" ", b"9", b"\xe9", b"0", b"-"))
    return data[:at] + (value * width)[:width] + data[at + width:]


def bad_segment_ids(data: bytes, rng: random.Random) -> bytes:
    """Segment ids that are no ids: one character, four and more, lower case, digits,
    empty, non-ASCII, a zero-width space."""
    parts, term = _segments(data)
    i = _pick(parts, rng)
    new = rng.choice((b"N", b"NTEX", b"nte", b"123", b"", b"N\xc9", b"CLMCLMCLM",
                      b"\xe2\x80\x8bNM1", b" NM1"))
    head, sep, rest = parts[i].lstrip(b"\r\n").partition(b"*")
    parts[i] = b"\n" + new + sep + rest
    return _join(parts, term)


def far_elements(data: bytes, rng: random.Random) -> bytes:
    """A value at element 100 to 300 of a segment, or at component 100 to 300 of an element
    (a 999 names element and component positions in two digits)."""
    parts, term = _segments(data)
    i = _pick(parts, rng, rng.choice((None, b"CLM", b"SV1", b"NM1", b"HI")))
    far = rng.randint(100, 300)
    if rng.random() < 0.5:
        parts[i] = parts[i] + b"*" * far + b"X"
    else:
        parts[i] = parts[i] + b"*" + b":" * far + b"X"
    return _join(parts, term)


def many_interchanges(data: bytes, rng: random.Random) -> bytes:
    """The interchange sent again and again: 2 to 50 copies, ISA13 repeated or not."""
    copies = rng.choice((2, 3, 50))
    if rng.random() < 0.5 or len(data) < 106:
        return data * copies
    out = []
    for n in range(copies):
        number = b"%09d" % (n + 1)
        copy = data[:90] + number + data[99:]
        out.append(copy.replace(data[90:99], number))  # IEA02 too
    return b"".join(out)


def leading_junk(data: bytes, rng: random.Random) -> bytes:
    """Bytes before the ISA: a UTF-8 BOM, blank lines, spaces, a mail header, a NUL."""
    return rng.choice((b"\xef\xbb\xbf", b"\n\n\n", b"   ", b"From: edi@example.test\n\n",
                       b"\x00", b"\r\n", b"\x1a")) + data


def group_header(data: bytes, rng: random.Random) -> bytes:
    """GS01, GS08 or ST03 that do not fit: lettered, long, empty, another version."""
    prefix, index, values = rng.choice((
        (b"GS", 1, (b"H?", b"", b"HCX", b"hc", b"FA", b"HN")),
        (b"GS", 8, (b"005010X222A1" + b"Z" * 20, b"004010X098A1", b"", b"005010X223A3",
                    b"\xe9")),
        (b"ST", 1, (b"835", b"8370", b"", b"83?")),
        (b"ST", 3, (b"V" * 40, b"", b"005010X222A1 ", b"004010X098A1"))))
    parts, term = _segments(data)
    i = _pick(parts, rng, prefix)
    elements = parts[i].split(b"*")
    if len(elements) > index:
        elements[index] = rng.choice(values)
    parts[i] = b"*".join(elements)
    return _join(parts, term)


#: the mutations of the first fuzz (its findings in tests/test_fuzz.py FOUND are cases of it)
MUTATIONS_V1: tuple[Mutation, ...] = (
    truncate, flip_bytes, duplicate_segment, delete_segment, swap_segments, move_envelope,
    swap_delimiters, huge_element, huge_components, nul_bytes, utf16, bad_hl_parent,
    hostile_value, hostile_value, hostile_isa,
)
MUTATIONS: tuple[Mutation, ...] = MUTATIONS_V1 + (
    hl_chain, hl_cycle, big_set, giant_numbers, same_delimiters, repetition_separators,
    unicode_lookalikes, cr_line_ends, extra_envelope, control_numbers, isa_fields,
    bad_segment_ids, far_elements, many_interchanges, leading_junk, group_header,
)


def make_case(seed: int, number: int, mutations: tuple[Mutation, ...] = MUTATIONS
              ) -> tuple[bytes, list[str]]:
    """Case ``number`` of ``seed``: the input and the names of its mutations (drawn from
    ``mutations``: ``MUTATIONS_V1`` gives the cases of the first fuzz)."""
    rng = random.Random(f"fuzz-{seed}-{number}")
    out = io.BytesIO()
    generate(out, claims=rng.randint(1, 4), kind=rng.choice("PI"), seed=rng.randrange(1000),
             claims_per_transaction=rng.choice((1, 2, 5000)))
    data = out.getvalue()
    applied = []
    for mutation in rng.sample(mutations, rng.randint(1, 3)):
        if mutation is utf16 and applied:
            continue  # last or alone: the others work on single bytes
        data = mutation(data, rng)
        applied.append(mutation.__name__)
    return data, applied


# -- what every case must satisfy ------------------------------------------------------------
@dataclass(frozen=True)
class Finding:
    """A case that broke a promise."""

    seed: int
    number: int
    mutations: tuple[str, ...]
    what: str


def ack_interchanges(data: bytes) -> list[list]:
    """An acknowledgement read back with our tokenizer: its interchanges, each a segment list.

    Raises AssertionError unless ``data`` is whole interchanges (ISA ... IEA,
    IEA02 = ISA13) of acknowledgement segments: a value that smuggled a
    delimiter in shows up as a foreign segment or a second ISA.
    """
    from scrubber.x12 import SyntaxProblem, Tokenizer

    assert data.isascii(), "an acknowledgement is ASCII"
    found: list[list] = []
    current: list | None = None
    for item in Tokenizer(io.BytesIO(data)):
        assert not isinstance(item, SyntaxProblem), item
        assert item.id in ACK_SEGMENTS, f"foreign segment {item.id!r}: {item.elements}"
        if item.id == "ISA":
            assert current is None, "an ISA inside an interchange"
            assert len(item.elements) == 17, item.elements
            current = [item]
            continue
        assert current is not None, f"{item.id} outside an interchange"
        current.append(item)
        if item.id == "IEA":
            assert item.get(2) == current[0].get(13), "IEA02 is not ISA13"
            found.append(current)
            current = None
    assert current is None, "an interchange without its IEA"
    return found


def _clm_segments(data: bytes) -> int:
    """CLM segments as our reader sees them (each interchange's own delimiters)."""
    from scrubber.x12 import Tokenizer

    return sum(1 for item in Tokenizer(io.BytesIO(data)) if getattr(item, "id", "") == "CLM")


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@dataclass
class Outcome:
    """What one case came to: the figures ``run`` adds up (none of them is a promise)."""

    exit_code: int = 0
    acks: dict[str, int] = field(default_factory=dict)  # kind ("277ca", "999", "ta1") -> files
    ack_bytes: int = 0
    seconds: float = 0.0  # wall clock, for the bench's figures only
    cpu: float = 0.0


_PYX12_MAPS: dict = {}
_DIGITS = re.compile(rb"[0-9]")


def _shape(ack: bytes) -> bytes:
    """An acknowledgement with every digit made 0: two writes of one input differ only in
    their clock and control numbers, so their shapes are equal."""
    return _DIGITS.sub(b"0", ack)


def pyx12_errors(ack: bytes) -> list[str]:
    """What pyx12's validator finds wrong in an acknowledgement ([] when it is valid).

    Its 999 (005010X231A1) and 277CA (005010X214) maps and the interchange
    control structure (the TA1); the maps are loaded once. pyx12 raising on
    an input counts as a finding (it does on a bad TA1 element).
    """
    import logging

    import pyx12.map_if
    import pyx12.params
    import pyx12.x12n_document

    logging.getLogger("pyx12").addHandler(logging.NullHandler())
    logging.getLogger("pyx12").propagate = False
    load = pyx12.map_if.load_map_file

    def cached(map_file, param, map_path=None):
        if (map_file, map_path) not in _PYX12_MAPS:
            _PYX12_MAPS[map_file, map_path] = load(map_file, param, map_path)
        return _PYX12_MAPS[map_file, map_path]

    tree = io.StringIO()
    pyx12.map_if.load_map_file = cached
    try:
        ok = pyx12.x12n_document.x12n_document(pyx12.params.params(),
                                               io.StringIO(ack.decode("ascii")), io.StringIO(),
                                               None, fd_json=tree)
    except Exception as exc:  # pyx12 breaks on some errors it finds: still invalid
        return [f"pyx12 raised {exc!r}"[:300]]
    finally:
        pyx12.map_if.load_map_file = load
    if ok:
        return []
    found: list[str] = []

    def walk(node: object, where: str) -> None:
        if isinstance(node, dict):
            where = node.get("seg_id") or node.get("ele_pos") or where
            found.extend(f"{where}: {e.get('err_str', '')}"[:300] for e in node.get("errors") or []
                         if isinstance(e, dict))
            for value in node.values():
                if isinstance(value, (dict, list)):
                    walk(value, where)
        elif isinstance(node, list):
            for value in node:
                walk(value, where)

    walk(json.loads(tree.getvalue() or "{}"), "")
    return found or ["pyx12 says invalid"]


def check_case(data: bytes, validator=None, *, pyx12: bool = True) -> Outcome:
    """Assert every promise on one input (see the module docstring); return its figures.

    With ``pyx12`` (the default) every acknowledgement file the command line
    writes must pass pyx12's validator, and ``scrubber.scrub``'s must be the
    same acknowledgements (equal once digits are masked: only clock and
    control numbers differ). No promise here is about time: the bench reports
    the slow cases (``LIMITS``), the test suite never times a case.
    """
    import tempfile

    from click.testing import CliRunner

    import scrubber
    from scrubber.cli import main

    started, cpu = time.monotonic(), time.process_time()
    outcome = Outcome()
    size = LIMITS["output_floor"] + LIMITS["output_per_input"] * len(data)
    acks: list[tuple[str, bytes]] = []
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "case.x12"
        path.write_bytes(data)
        result = CliRunner().invoke(main, ["check", str(path), "--format", "json",
                                           "--no-ledger", "--277ca", f"{folder}/acks", "--999"])
        assert result.exception is None or isinstance(result.exception, SystemExit), \
            "".join(traceback.format_exception(result.exception))
        assert result.exit_code in (0, 1, 2), result.exit_code
        assert "Traceback" not in result.output
        report = json.loads(result.stdout)
        written = sorted((Path(folder) / "acks").glob("*.x12"))
        for ack in written:
            kind = ack.name.rsplit(".", 2)[-2]
            acks.append((f"{kind} file", ack.read_bytes()))
            outcome.acks[kind] = outcome.acks.get(kind, 0) + 1
        outcome.exit_code = result.exit_code
    # a rejected input is answered, as a payer would: a TA1, a 999 or a 277CA
    assert result.exit_code != 1 or written, "exit 1 (rejected) and no acknowledgement written"
    if validator is not None:
        errors = [e.message[:200] for e in validator.iter_errors(report)]
        assert not errors, errors
    files = report["files"]
    walked = sum(len(t["claims"]) for f in files for i in f["interchanges"]
                 for g in i["groups"] for t in g["transactions"])
    summary = sum(f["summary"]["claims"] for f in files) if all("summary" in f for f in files) \
        else walked
    assert walked == summary, f"walking finds {walked} claims, summary says {summary}"
    problems = [p for f in files for p in _problems(f)]
    named = sum(1 for p in problems if p["code"] == "env-claim-outside-transaction")
    dropped = sum(1 for p in problems if p["code"] in _CLAIMS_DROPPED)
    clm = _clm_segments(data)
    assert walked + named >= clm or dropped, \
        f"{clm} CLM segments, {walked} claims reported and {named} named in problems"
    assert len(result.stdout) <= size, f"a {len(result.stdout)}-byte report"

    for name, ack in acks:  # every file written: whole interchanges, valid in pyx12
        assert len(ack) <= size, f"a {len(ack)}-byte {name}"
        outcome.ack_bytes += len(ack)
        try:
            ack_interchanges(ack)
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from None
        invalid = pyx12_errors(ack) if pyx12 else []
        assert not invalid, f"{name} invalid in pyx12: {invalid[:5]}"
    scrubbed = scrubber.scrub(data)
    files = {name.split()[0]: ack for name, ack in acks}
    for name in ("277ca", "999", "ta1"):  # scrubber.scrub's: the files again, clock aside
        ack = getattr(scrubbed, f"ack_{name}")
        twin = files.get(name, b"")
        assert _shape(ack) == _shape(twin), \
            f"scrubber.scrub's {name} is not the file's ({len(ack)} and {len(twin)} bytes)"
    for fmt in ("text", "html"):
        with tempfile.TemporaryDirectory() as folder:
            scrubbed.write_report(Path(folder) / f"r.{fmt}", fmt)
            text = (Path(folder) / f"r.{fmt}").read_text(encoding="utf-8")
        bad = _CONTROL.search(text)
        assert bad is None, f"{fmt} report carries control character {bad.group()!r}"
        assert len(text) <= size, f"a {len(text)}-byte {fmt} report"
    outcome.seconds = time.monotonic() - started
    outcome.cpu = time.process_time() - cpu
    return outcome


#: problems that stand for claims they do not name: the reader could not go on, or the
#: transaction set holding them is not a 5010 837 and is not read (the problem locates the set)
_CLAIMS_DROPPED = frozenset(("syntax-binary", "syntax-no-isa", "syntax-empty", "syntax-junk",
                             "env-wrong-delimiter", "syntax-unreadable",
                             "env-unsupported-transaction", "env-unsupported-version"))


def _problems(node: object) -> list[dict]:
    """Every problem anywhere in a report (files, interchanges, groups, transactions)."""
    found: list[dict] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "problems" and isinstance(value, list):
                found += [p for p in value if isinstance(p, dict)]
            elif isinstance(value, (dict, list)):
                found += _problems(value)
    elif isinstance(node, list):
        for item in node:
            found += _problems(item)
    return found


def schema_validator():
    import jsonschema

    schema = json.loads(SCHEMA.read_text())
    return jsonschema.validators.validator_for(schema)(schema)


@dataclass
class Figures:
    """What a run came to, for bench output and docs/reliability.md."""

    cases: int = 0
    findings: list[Finding] = field(default_factory=list)
    exit_codes: dict[int, int] = field(default_factory=dict)
    acks: dict[str, int] = field(default_factory=dict)  # files the command line wrote, by kind
    ack_bytes: int = 0  # acknowledgement files validated
    validated: int = 0  # acknowledgement files pyx12 validated
    cpu: float = 0.0
    slowest: tuple[float, int] = (0.0, -1)  # (wall seconds, case number)
    slow: list[int] = field(default_factory=list)  # cases over LIMITS["seconds"] (bench only)
    mutations: dict[str, int] = field(default_factory=dict)
    big: int = 0  # cases of 50,000 segments or more
    largest: tuple[int, int] = (0, 0)  # the most bytes and the most segments of an input


def run(seed: int, count: int, keep: Path | None = None,
        report: Callable[[str], None] = print, *, seconds: float | None = None,
        figures: Figures | None = None) -> list[Finding]:
    """Run ``count`` cases of ``seed``; the ones that broke a promise.

    ``seconds``: a case slower than this (wall clock) is a finding too -- for
    the bench command on a quiet machine, never for the test suite. ``figures``
    collects what the run came to.
    """
    validator = schema_validator()
    figures = figures if figures is not None else Figures()
    for number in range(count):
        data, mutations = make_case(seed, number)
        figures.cases += 1
        segments = data.count(data[105:106] if len(data) > 105 else b"~")
        figures.big += segments >= 50_000
        figures.largest = (max(figures.largest[0], len(data)),
                           max(figures.largest[1], segments))
        for name in mutations:
            figures.mutations[name] = figures.mutations.get(name, 0) + 1
        try:
            outcome = check_case(data, validator)
            if seconds is not None and outcome.seconds > seconds:
                figures.slow.append(number)
                raise AssertionError(f"{outcome.seconds:.1f} s (over {seconds:.0f} s)")
        except Exception as exc:  # a finding, whatever broke
            what = "".join(traceback.format_exception_only(exc)).strip()[:2000]
            figures.findings.append(Finding(seed, number, tuple(mutations), what))
            report(f"case {seed}/{number} ({', '.join(mutations)}): {what}")
            if keep is not None:
                keep.mkdir(parents=True, exist_ok=True)
                (keep / f"fuzz-{seed}-{number}.x12").write_bytes(data)
            continue
        figures.exit_codes[outcome.exit_code] = figures.exit_codes.get(outcome.exit_code, 0) + 1
        for kind, n in outcome.acks.items():
            figures.acks[kind] = figures.acks.get(kind, 0) + n
        figures.validated += sum(outcome.acks.values())
        figures.ack_bytes += outcome.ack_bytes
        figures.cpu += outcome.cpu
        figures.slowest = max(figures.slowest, (outcome.seconds, number))
    return figures.findings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--keep", type=Path, help="write each failing input here")
    parser.add_argument("--no-time-limit", action="store_true",
                        help=f"do not count a case over {LIMITS['seconds']:.0f} s as a finding")
    args = parser.parse_args(argv)
    started = time.monotonic()
    figures = Figures()
    findings = run(args.seed, args.count, args.keep, figures=figures,
                   seconds=None if args.no_time_limit else LIMITS["seconds"])
    acks = ", ".join(f"{n} {kind}" for kind, n in sorted(figures.acks.items())) or "none"
    codes = ", ".join(f"exit {c}: {n}" for c, n in sorted(figures.exit_codes.items()))
    used = ", ".join(f"{name} {n}" for name, n in sorted(figures.mutations.items()))
    print(f"mutations: {len(set(MUTATIONS))} ({used})")
    print(f"{codes}; acknowledgement files written: {acks}; {figures.validated} "
          f"acknowledgements validated by pyx12 ({figures.ack_bytes / 1e6:.1f} MB), "
          f"0 invalid unless listed above")
    print(f"{figures.big} cases of 50,000 segments or more; the largest input "
          f"{figures.largest[0] / 1e6:.1f} MB, the most segments {figures.largest[1]:,}")
    print(f"CPU {figures.cpu:.0f} s for the cases that passed; slowest case "
          f"{figures.slowest[1]} at {figures.slowest[0]:.1f} s wall")
    print(f"seed {args.seed}: {args.count} cases, {len(findings)} findings, "
          f"{time.monotonic() - started:.1f} s")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
