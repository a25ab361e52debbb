"""The tokenizer: delimiters from the ISA, exact locations, any chunking, bad input."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from x12text import claim_837p, interchange, isa

from scrubber.x12 import Segment, SyntaxProblem, Tokenizer

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus"


def tokens(data: bytes, chunk_size: int = 1 << 20) -> list:
    return list(Tokenizer(io.BytesIO(data), chunk_size=chunk_size))


def segments(data: bytes, chunk_size: int = 1 << 20) -> list[Segment]:
    return [t for t in tokens(data, chunk_size) if isinstance(t, Segment)]


def problems(data: bytes) -> list[SyntaxProblem]:
    return [t for t in tokens(data) if isinstance(t, SyntaxProblem)]


def check_locations(data: bytes, segs: list[Segment]) -> None:
    """Every segment's offset, length and line point at its own bytes in the source."""
    for seg in segs:
        raw = data[seg.offset: seg.offset + seg.length].decode("utf-8", "replace")
        assert raw.replace("\r", "").replace("\n", "").rstrip() .startswith(seg.id), seg
        assert seg.line == data.count(b"\n", 0, seg.offset) + 1, seg


def sample(**kwargs) -> bytes:
    return interchange(claim_837p(), **kwargs).encode()


def test_default_delimiters_one_segment_per_line():
    data = sample()
    segs = segments(data)
    assert [s.id for s in segs][:3] == ["ISA", "GS", "ST"]
    assert segs[-1].id == "IEA"
    assert [s.ordinal for s in segs] == list(range(1, len(segs) + 1))
    assert [s.line for s in segs] == list(range(1, len(segs) + 1))
    check_locations(data, segs)
    clm = next(s for s in segs if s.id == "CLM")
    assert clm.get(1) == "PCN001" and clm.get(5) == "11:B:1" and clm.get(40) == ""


@pytest.mark.parametrize("delims", [
    dict(element="|", component="^", repetition="{", terminator="!", after="\r\n"),
    dict(element="~", component="^", repetition="{", terminator="_", after=""),
    dict(element="*", component=">", repetition="^", terminator="\n", after=""),
    dict(element="\x1d", component="\x1f", repetition="^", terminator="\x1e", after=""),
])
def test_delimiters_come_from_the_isa(delims):
    plain = segments(sample())
    data = sample(**delims)
    segs = segments(data)
    comp = delims["component"]
    assert [tuple(e.replace(comp, ":") for e in s.elements) for s in segs[1:]] == \
        [s.elements for s in plain[1:]]
    check_locations(data, segs)


def test_several_interchanges_each_with_its_own_delimiters():
    first = interchange(claim_837p("A1"), "000000001")
    second = interchange(claim_837p("B2"), "000000002", element="|", component="^",
                         repetition="{", terminator="!", after="")
    third = interchange(claim_837p("C3"), "000000003", terminator="~", after="\r\n")
    data = (first + second + third).encode()
    segs = segments(data)
    assert [s.get(1) for s in segs if s.id == "CLM"] == ["A1", "B2", "C3"]
    assert [s.get(2) for s in segs if s.id == "IEA"] == ["000000001", "000000002", "000000003"]
    # ordinals restart with each interchange
    assert [s.ordinal for s in segs if s.id == "ISA"] == [1, 1, 1]
    check_locations(data, segs)
    assert problems(data) == []


def test_interchanges_glued_without_white_space():
    data = (interchange(claim_837p("A1"), "000000001", after="") +
            interchange(claim_837p("B2"), "000000002", after="\n")).encode()
    assert [s.get(1) for s in segments(data) if s.id == "CLM"] == ["A1", "B2"]
    assert problems(data) == []


@pytest.mark.parametrize("chunk", [1, 7, 64, 1000])
def test_chunk_size_does_not_change_anything(chunk):
    data = (interchange(claim_837p("A1"), "000000001", after="\r\n") +
            interchange(claim_837p("B2"), "000000002", element="|", after="")).encode()
    assert tokens(data, chunk) == tokens(data)


def test_bom_and_leading_white_space():
    data = b"\xef\xbb\xbf\n\n   " + sample()
    segs = segments(data)
    assert segs[0].id == "ISA" and segs[0].offset == 8 and segs[0].line == 3
    assert problems(data) == []
    check_locations(data, segs)


def test_round_trip_rebuilds_the_input():
    data = (interchange(claim_837p("A1"), "000000001", after="\r\n") +
            interchange(claim_837p("B2"), "000000002", element="|", terminator="!",
                        after="")).encode()
    rebuilt = bytearray(data)
    for seg in segments(data):
        sep = "|" if b"|" in data[seg.offset:seg.offset + seg.length] else "*"
        text = sep.join(seg.elements).encode()
        assert bytes(rebuilt[seg.offset:seg.offset + seg.length]) == text
        rebuilt[seg.offset:seg.offset + seg.length] = b"\0" * seg.length
    # what is left between segments is terminators and white space only
    assert set(bytes(rebuilt)) <= set(b"\0~!\r\n")


def test_non_ascii_names_survive():
    data = interchange(claim_837p(patient=("MUÑOZ", "JOSÉ", "19800101"))).encode("utf-8")
    nm1 = next(s for s in segments(data) if s.id == "NM1" and s.get(1) == "IL")
    assert nm1.get(3) == "MUÑOZ" and nm1.get(4) == "JOSÉ"
    check_locations(data, segments(data))


def test_wrapped_segments_are_joined():
    text = sample().decode()
    head, body = text[:106], text[107:].replace("\n", "")
    wrapped = head + "\n" + "\n".join(body[i:i + 80] for i in range(0, len(body), 80))
    segs = segments(wrapped.encode())
    assert [s.elements for s in segs] == [s.elements for s in segments(sample())]


# -- bad input --------------------------------------------------------------

def test_empty_input_is_fatal():
    for data in (b"", b"\n\n  \r\n"):
        (problem,) = problems(data)
        assert problem.code == "syntax-empty" and problem.fatal


def test_binary_junk_is_fatal():
    import random
    rng = random.Random(7)
    data = bytes(rng.randrange(256) for _ in range(5000))
    (problem,) = problems(data)
    assert problem.code == "syntax-binary" and problem.fatal
    assert "binary" in problem.message


def test_no_isa_is_fatal_and_says_why():
    data = "\n".join(claim_837p()).encode()
    (problem,) = problems(data)
    assert problem.code == "syntax-no-isa" and problem.fatal and "ISA" in problem.message


def test_short_isa_is_reported_but_read():
    good = sample().decode()
    short = good.replace("SENDERID       ", "SENDERID     ", 1)  # 2 characters short
    segs = segments(short.encode())
    (problem,) = problems(short.encode())
    assert problem.code == "syntax-isa-length" and "104" in problem.message
    assert [s.id for s in segs][-1] == "IEA"


def test_truncated_file_keeps_the_last_segment_and_says_so():
    data = sample()
    cut = data[: data.index(b"SV1*") + 12]
    toks = tokens(cut)
    (problem,) = [t for t in toks if isinstance(t, SyntaxProblem)]
    assert problem.code == "syntax-unterminated"
    last = [t for t in toks if isinstance(t, Segment)][-1]
    assert last.id == "SV1" and last.elements[1] == "HC:99213"


def test_empty_segment_is_reported():
    data = sample().replace(b"HI*ABK:Z452~", b"HI*ABK:Z452~~")
    codes = [p.code for p in problems(data)]
    assert codes == ["syntax-empty-segment"]
    assert [s.id for s in segments(data)][-1] == "IEA"


def test_junk_between_interchanges_is_skipped_and_reported():
    data = (interchange(claim_837p("A1"), "000000001") + "THIS IS NOT X12\n" +
            interchange(claim_837p("B2"), "000000002")).encode()
    assert [s.get(1) for s in segments(data) if s.id == "CLM"] == ["A1", "B2"]
    (problem,) = problems(data)
    assert problem.code == "syntax-junk" and problem.line == data[:problem.offset].count(b"\n") + 1


def test_trailing_junk_is_reported():
    data = sample() + b"garbage at the end"
    assert [p.code for p in problems(data)] == ["syntax-trailing-junk"]


def test_unusable_delimiters_skip_the_interchange():
    bad = isa(element="*", component="*")  # component equals the element separator
    data = (bad + "GS*HC~IEA*0*000000001~").encode()
    codes = [p.code for p in problems(data)]
    assert "syntax-delimiters" in codes or "syntax-isa-unreadable" in codes


# -- properties -------------------------------------------------------------

_text = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .-", min_size=0, max_size=12)


@settings(max_examples=60, deadline=None)
@given(
    body=st.lists(st.lists(_text, min_size=1, max_size=6), min_size=1, max_size=20),
    delims=st.sampled_from([("*", ":", "^", "~"), ("|", "^", "{", "!"), ("+", ">", "^", "'")]),
    after=st.sampled_from(["", "\n", "\r\n"]),
    chunk=st.sampled_from([1, 5, 33, 1 << 20]),
)
def test_any_body_tokenizes_back_to_its_elements(body, delims, after, chunk):
    element, component, repetition, terminator = delims
    seg_texts = [element.join(["ZZ" + str(i % 10), *fields]) for i, fields in enumerate(body)]
    data = (isa(element=element, component=component, repetition=repetition,
                terminator=terminator) + after +
            "".join(s + terminator + after for s in seg_texts) +
            element.join(["IEA", "0", "000000001"]) + terminator).encode()
    segs = segments(data, chunk)
    got = [element.join(s.elements) for s in segs[1:-1]]
    assert got == [s.rstrip() if after else s for s in seg_texts] or got == seg_texts
    check_locations(data, segs)


@pytest.mark.skipif(not CORPUS.is_dir(), reason="shared corpus not present")
def test_corpus_files_tokenize_with_exact_locations():
    files = [p for p in CORPUS.rglob("*") if p.is_file() and p.suffix != ".tsv"]
    assert files
    for path in files:
        data = path.read_bytes()
        segs = segments(data)
        check_locations(data, segs)
        assert tokens(data, 97) == tokens(data), path
