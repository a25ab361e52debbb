"""Claims read from Runs: located and built exactly as segment-by-segment reading would.

The reader passes most of a claim on as unsplit text (a ``Run``) and builds its
lines on first use. These tests hold that against a reference tokenizer written
here from the X12 rules alone (split the bytes on the terminator, count the
bytes and line breaks before each segment), on our fixtures, on generated files
in each line-break style, and with chunk sizes that cut claims and segments at
every kind of place.
"""

from __future__ import annotations

import dataclasses
import io
import pickle
import sys
from pathlib import Path

import pytest

from scrubber.model import ClaimRecord, Problem, read
from scrubber.model.claim_body import claim_body
from scrubber.model.walker import _Walker
from scrubber.x12.tokenizer import Run, Segment, Tokenizer, _interchange_end

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from gen837 import generate  # noqa: E402

BOUNDARIES = {"ISA", "GS", "ST", "SE", "GE", "IEA", "TA1", "CLM", "HL"}
WHITE = b" \t\r\n"


def reference_segments(data: bytes) -> list[tuple] | None:
    """(id, elements, ordinal, line, offset, length) per segment; None if a segment wraps."""
    out: list[tuple] = []
    pos, ordinal = 0, 0
    sep = term = None
    if data.startswith(b"\xef\xbb\xbf"):
        pos = 3
    while True:
        while pos < len(data) and data[pos] in WHITE:
            pos += 1
        if pos >= len(data):
            return out
        if data.startswith(b"ISA", pos):
            sep, term, ordinal = data[pos + 3 : pos + 4], data[pos + 105 : pos + 106], 0
        assert sep is not None and term is not None, "a file starts with ISA"
        end = data.find(term, pos)
        if end < 0:
            return None  # unterminated: not a file this reference is for
        raw = data[pos:end]
        if b"\n" in raw or b"\r" in raw:
            return None
        elements = tuple(raw.decode("latin-1").split(sep.decode("latin-1")))
        ordinal += 1
        out.append((elements[0], elements, ordinal, data.count(b"\n", 0, pos) + 1, pos, len(raw)))
        pos = end + 1


def claims_by_walker(data: bytes, chunk_size: int) -> list[ClaimRecord]:
    return [e for e in _Walker(io.BytesIO(data), chunk_size).events()
            if isinstance(e, ClaimRecord)]


def expected_claim_segments(reference: list[tuple]) -> list[list[tuple]]:
    claims, current = [], None
    for seg in reference:
        if seg[0] in BOUNDARIES:
            if current is not None:
                claims.append(current)
                current = None
            if seg[0] == "CLM":
                current = [seg]
        elif current is not None:
            current.append(seg)
    if current is not None:
        claims.append(current)
    return claims


def generated(kind: str, claims: int, newline: bool = True) -> bytes:
    out = io.BytesIO()
    generate(out, claims, kind, seed=7, claims_per_transaction=9, newline=newline)
    return out.getvalue()


def layouts() -> list[tuple[str, bytes]]:
    files = [(p.name, p.read_bytes()) for p in sorted((ROOT / "fixtures").glob("837*.x12"))]
    for kind in "PI":
        lf = generated(kind, 25)
        files += [(f"gen-{kind}-lf", lf), (f"gen-{kind}-crlf", lf.replace(b"~\n", b"~\r\n")),
                  (f"gen-{kind}-none", generated(kind, 25, newline=False))]
    return files


LAYOUTS = layouts()


@pytest.mark.parametrize("chunk_size", [1 << 20, 4096, 301, 64])
@pytest.mark.parametrize("name,data", LAYOUTS, ids=[n for n, _ in LAYOUTS])
def test_claim_segments_and_body_match_the_reference(name, data, chunk_size):
    reference = reference_segments(data)
    assert reference, f"{name}: the reference cannot split it"
    want = expected_claim_segments(reference)
    got = claims_by_walker(data, chunk_size)
    assert [c.claim.id for c in got] == [w[0][1][1] for w in want]
    for record, segments in zip(got, want, strict=True):
        claim = record.claim
        assert [tuple(s) for s in claim.segments] == segments
        assert tuple(claim.location) == segments[0][2:5]
        # the lazy body is exactly what building from the reference segments gives
        rebuilt = claim_body([Segment(*s) for s in segments],
                             record.interchange.delimiters.component)
        assert (claim.dates, claim.diagnoses, claim.codes, claim.notes, claim.attachments,
                claim.references, claim.institutional, claim.providers, claim.lines) == \
            rebuilt[:9]


@pytest.mark.parametrize("name,data", LAYOUTS, ids=[n for n, _ in LAYOUTS])
def test_tokenizer_segments_match_the_reference(name, data):
    got = [tuple(s) for s in Tokenizer(io.BytesIO(data), 333) if isinstance(s, Segment)]
    assert got == reference_segments(data)


def test_runs_carry_the_claim_bodies():
    """The fast path is taken: claims come from Runs, and stay unbuilt until asked."""
    data = generated("P", 30)
    items = list(Tokenizer(io.BytesIO(data)).items())
    assert sum(isinstance(i, Run) for i in items) >= 1
    records = [e for e in read(data) if isinstance(e, ClaimRecord)]
    assert any(isinstance(p, Run) for r in records for p in r.claim.source.pieces)
    assert all(r.claim._body is None for r in records)
    lines = records[0].claim.lines
    assert lines and records[0].claim._body is not None
    assert records[0].claim.lines is lines  # built once, then kept


def test_events_are_the_same_whatever_the_chunk_size():
    data = generated("I", 40).replace(b"~\n", b"~\r\n")

    def summary(chunk_size):
        out = []
        for e in _Walker(io.BytesIO(data), chunk_size).events():
            if isinstance(e, ClaimRecord):
                c = e.claim
                out.append((c.id, c.charge, c.location, e.patient.location,
                            e.subscriber.location, [(ln.procedure, ln.units, ln.date_from,
                                                    ln.location) for ln in c.lines]))
            else:
                out.append(e)
        return out

    whole = summary(1 << 20)
    for size in (4096, 777, 97):
        assert summary(size) == whole
    # records compare by content, however the reader cut the claims into pieces
    small = [e for e in _Walker(io.BytesIO(data), 97).events() if isinstance(e, ClaimRecord)]
    assert small == [e for e in read(data) if isinstance(e, ClaimRecord)]
    assert len({e.claim for e in small}) == 40


def test_claim_records_pickle_built_or_not():
    records = [e for e in read(generated("P", 5)) if isinstance(e, ClaimRecord)]
    lazy = pickle.loads(pickle.dumps(records[0]))
    assert lazy.claim.lines == records[0].claim.lines
    _ = records[1].claim.lines  # built before pickling
    built = pickle.loads(pickle.dumps(records[1]))
    assert built.claim.segments == records[1].claim.segments
    assert built == records[1]


def test_a_broken_segment_inside_a_regular_block_is_still_found():
    """An empty segment (two terminators) in a claim: reported, claim still read."""
    data = generated("P", 12)
    at = data.index(b"~\nLX*2~")
    broken = data[:at] + b"~\n" + data[at:]
    evs = list(read(broken))
    assert [e.code for e in evs if isinstance(e, Problem)].count("syntax-empty-segment") == 1
    assert sum(isinstance(e, ClaimRecord) for e in evs) == 12


@pytest.mark.parametrize("text,want", [
    ("A*1~\nIEA*1*1", 5),
    ("IEA*1*1", 0),
    ("A*1~\nIEAX*1~\nISA*00", 13),
    ("A*1~\nB*IEA~\nC", -1),
    ("A~\nIEA", 3),
    ("A~\nIEA~\nB", 3),
    ("ISA*00~\nIEA*1", 0),
])
def test_interchange_end_finds_only_whole_segment_ids(text, want):
    assert _interchange_end(text, "~\n", "*") == want


@pytest.mark.parametrize("joint,inc", [("~\n", 1), ("~", 0), ("~\r\n", 1)])
def test_run_select_is_segments_filtered(joint, inc):
    text = joint.join(["SBR*P*18*GRP1******HM", "NM1*IL*1*DOE*JO****MI*M1", "N3*1 MAIN ST",
                       "DMG", "NM1*PR*2*PLAN*****PI*P1", "NM1", "N4*TOWN*NC*27560"])
    run = Run(text, joint, "*", 2, 7, 100, inc)
    for ids in ({"SBR", "NM1", "DMG"}, {"N3", "N4"}, {"XYZ"}, {"NM1"}):
        assert run.select(frozenset(ids)) == [s for s in run.segments() if s.id in ids]


def test_non_ascii_block_is_read_carefully_and_located_in_bytes():
    """A UTF-8 name sends its block down the careful path; positions stay byte offsets."""
    data = generated("P", 30)
    at = data.index(b"NM1*QC*1*") + len(b"NM1*QC*1*")
    end = data.index(b"*", at)
    data = data[:at] + "MUÑOZ".encode() + data[end:]
    reference = reference_segments(data)
    want = expected_claim_segments(reference)
    for chunk_size in (1 << 20, 301):
        got = claims_by_walker(data, chunk_size)
        assert len(got) == len(want) == 30
        for record, segments in zip(got, want, strict=True):
            assert [s[2:] for s in record.claim.segments] == [s[2:] for s in segments]
        assert "MUÑOZ" in {r.patient.last_name for r in got}


def test_records_stay_frozen_and_of_their_own_class():
    """fast_init fills records through a twin class: the result must be the real, frozen one."""
    import dataclasses
    import importlib

    model = importlib.import_module("scrubber.model.claims")
    record = next(e for e in read(generated("I", 3)) if isinstance(e, ClaimRecord))
    line = record.claim.lines[0]
    for obj in (record, record.claim, line, line.location, record.subscriber,
                record.patient, record.transaction, record.interchange):
        if dataclasses.is_dataclass(obj):
            assert getattr(model, type(obj).__name__) is type(obj)
            field = dataclasses.fields(obj)[0].name
            with pytest.raises(dataclasses.FrozenInstanceError):
                setattr(obj, field, None)
    # nor a built attribute (a slots dataclass's frozen __setattr__ raises TypeError for
    # names that are not fields, a CPython 3.11 quirk; either way nothing is replaced)
    with pytest.raises((AttributeError, TypeError)):
        record.claim.lines = ()
    assert record.claim.lines[0] is line


def test_fast_init_keeps_defaults_factories_and_post_init():
    """The generated __init__ does what the dataclass one did, field for field."""
    from scrubber.model.claims import fast_init

    @dataclasses.dataclass(frozen=True, slots=True)
    class Sample:
        name: str
        size: int = 3
        tags: list = dataclasses.field(default_factory=list)
        checked: tuple = dataclasses.field(default=(), compare=False)

        def __post_init__(self) -> None:
            object.__setattr__(self, "checked", (self.name, self.size, len(self.tags)))

    fast_init(Sample)
    first, second = Sample("a"), Sample("b", 5, ["x"])
    assert (first.size, first.tags, first.checked) == (3, [], ("a", 3, 0))
    assert (second.size, second.tags, second.checked) == (5, ["x"], ("b", 5, 1))
    assert Sample("c").tags is not Sample("d").tags  # one new list per instance
    assert type(first) is Sample
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.size = 4


@dataclasses.dataclass(frozen=True, slots=True)
class _WithInitVar:
    name: str
    seed: dataclasses.InitVar[int] = 0


@dataclasses.dataclass(frozen=True, slots=True)
class _WithInitFalse:
    name: str
    size: int = dataclasses.field(default=0, init=False)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class _KeywordOnly:
    name: str


@dataclasses.dataclass(slots=True)
class _NotFrozen:
    name: str


@pytest.mark.parametrize("cls", [_WithInitVar, _WithInitFalse, _KeywordOnly, _NotFrozen])
def test_fast_init_refuses_what_it_cannot_fill(cls):
    from scrubber.model.claims import fast_init

    with pytest.raises(TypeError, match="fast_init"):
        fast_init(cls)
