"""The benchmark's generator writes valid 837s: pyx12 accepts them, counts add up."""

from __future__ import annotations

import io
import logging
import sys
from pathlib import Path

import pytest
import pyx12.params
import pyx12.x12n_document

from scrubber.model import ClaimRecord, Problem, read
from x12text import luhn_npi_ok

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from gen837 import generate  # noqa: E402


@pytest.fixture(autouse=True)
def quiet_pyx12():
    log = logging.getLogger("pyx12")
    log.addHandler(logging.NullHandler())
    log.propagate = False


@pytest.mark.parametrize("kind", ["P", "I"])
def test_generated_file_is_valid_for_pyx12_and_counts_add_up(tmp_path, kind):
    path = tmp_path / f"gen-{kind}.x12"
    counts = generate(path, 60, kind, seed=3, claims_per_transaction=25)
    text = path.read_text()
    assert pyx12.x12n_document.x12n_document(pyx12.params.params(), str(path), io.StringIO(),
                                             None, None, io.StringIO())
    assert counts["claims"] == text.count("\nCLM*") == 60
    assert counts["lines"] == text.count("\nLX*")
    assert counts["transactions"] == text.count("\nST*") == 3
    assert counts["bytes"] == path.stat().st_size
    events = list(read(path))
    assert [e for e in events if isinstance(e, Problem)] == []
    records = [e for e in events if isinstance(e, ClaimRecord)]
    assert len(records) == 60
    for record in records:
        assert record.claim.charge == sum(line.charge for line in record.claim.lines)
    for seg in text.split("~\n"):
        parts = seg.split("*")
        if parts[0] == "NM1" and len(parts) > 9 and parts[8] == "XX":
            assert luhn_npi_ok(parts[9]), seg


def test_same_seed_same_file(tmp_path):
    one, two = io.BytesIO(), io.BytesIO()
    generate(one, 30, "P", seed=9)
    generate(two, 30, "P", seed=9)
    assert one.getvalue() == two.getvalue()
    other = io.BytesIO()
    generate(other, 30, "P", seed=10)
    assert other.getvalue() != one.getvalue()
