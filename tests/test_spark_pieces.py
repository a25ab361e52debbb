"""The Spark job's pieces: large files cut at interchange starts, read back exactly (no Spark)."""

from __future__ import annotations

from pathlib import Path

import pytest

from scrubber.model import ClaimRecord, read
from scrubber.spark import pieces as pieces_module
from scrubber.spark.pieces import interchange_starts, plan

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
PARTS = ("837p-multi.x12", "837p-delims.x12", "837i-multi.x12", "837p-oneline.x12")


@pytest.fixture
def joined(tmp_path) -> tuple[Path, list[int]]:
    """Four fixtures (three kinds of delimiters and line breaks) one after another."""
    data, starts = b"", []
    for name in PARTS:
        part = (FIXTURES / name).read_bytes()
        starts.append(len(data) + part.index(b"ISA"))
        data += part
    path = tmp_path / "joined.x12"
    path.write_bytes(data)
    return path, starts


@pytest.mark.parametrize("chunk", [7, 64, 1 << 20])
def test_every_isa_is_found_with_its_line_whatever_the_chunk(joined, monkeypatch, chunk):
    path, starts = joined
    monkeypatch.setattr(pieces_module, "_CHUNK", chunk)
    data = path.read_bytes()
    with open(path, "rb") as stream:
        found = list(interchange_starts(stream))
    assert found == [(s, data.count(b"\n", 0, s) + 1) for s in starts]


def test_isa_inside_a_name_is_not_an_interchange(tmp_path):
    text = (FIXTURES / "837p-single.x12").read_bytes().replace(b"NM1*IL*1*", b"NM1*IL*1*ISA", 1)
    assert b"*ISA" in text
    path = tmp_path / "name.x12"
    path.write_bytes(text)
    with open(path, "rb") as stream:
        assert [offset for offset, _ in interchange_starts(stream)] == [text.index(b"ISA")]


def test_a_small_file_is_one_piece_read_by_its_path(joined):
    path, _ = joined
    [piece] = plan([str(path)])
    assert piece.whole
    with piece.open() as source:
        assert source == str(path)


@pytest.mark.parametrize("piece_bytes", [1, 2000, 4000])
def test_pieces_cover_the_file_and_cut_only_at_interchanges(joined, piece_bytes):
    path, starts = joined
    size = path.stat().st_size
    made = plan([str(path), str(FIXTURES / "837p-single.x12")], piece_bytes)
    ours = [p for p in made if p.file == 0]
    assert [p.index for p in ours] == list(range(len(ours)))
    assert ours[0].start == 0 and ours[-1].end == size
    assert all(a.end == b.start for a, b in zip(ours, ours[1:], strict=False))
    assert all(p.start in starts for p in ours[1:])
    # a piece holds several interchanges only while it stays within the size asked for
    assert all(p.end - p.start <= piece_bytes or sum(p.start <= s < p.end for s in starts) == 1
               for p in ours if p.end is not None)
    if piece_bytes == 1:
        assert len(ours) == len(starts)
    assert made[-1].file == 1 and made[-1].whole
    assert [p.id for p in made] == list(range(len(made)))


def test_a_piece_reads_its_bytes_and_places_its_claims_in_the_file(joined):
    path, _ = joined
    data = path.read_bytes()
    whole = [e.claim.location for e in read(str(path)) if isinstance(e, ClaimRecord)]
    placed = []
    for piece in plan([str(path)], 1):
        with piece.open() as stream:
            assert not isinstance(stream, str)
            assert stream.read() == data[piece.start:piece.end]
            stream.seek(0)
            placed += [piece.in_file(e.claim.location) for e in read(stream)
                       if isinstance(e, ClaimRecord)]
    assert placed == whole
