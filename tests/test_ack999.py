"""999 acknowledgements: golden files, and pyx12's 999 guide accepts every one we write."""

from __future__ import annotations

import io
import itertools
from datetime import datetime
from pathlib import Path

import pytest
from ig_reference import run_pyx12
from mutate import build_837, mutants

from scrubber.emit.ack999 import write_999
from scrubber.ig import check

GOLDEN = Path(__file__).resolve().parent / "golden"
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
CLOCK = lambda: datetime(2026, 11, 28, 12, 0)  # noqa: E731


def ack(data: bytes, start: int = 41) -> str:
    out = io.BytesIO()
    write_999(check(data), out, clock=CLOCK, control_numbers=itertools.count(start))
    return out.getvalue().decode("ascii")


def rejected_837() -> bytes:
    """Two claims: a bad birth date, a non-numeric charge, and a claim without service lines."""
    data = build_837("P", 2, 2)
    data = data.replace(b"DMG*D8*19", b"DMG*D8*17", 1)
    data = data.replace(b"CLM*M0002C0*", b"CLM*M0002C0*ABC", 1)
    return data.replace(b"LX*1~\n", b"", 1)


@pytest.mark.parametrize("name, data", [
    ("ig-accepted.999.x12", lambda: build_837("P", 2, 2)),
    ("ig-rejected.999.x12", rejected_837),
])
def test_999_golden(name, data):
    text = ack(data())
    assert text == (GOLDEN / name).read_text()


def test_what_the_rejected_999_says():
    lines = ack(rejected_837()).splitlines()
    assert lines[1].endswith("*X*005010X231A1~") and lines[2] == "ST*999*0001*005010X231A1~"
    assert "IK4*2*1251*8*17410906~" in lines  # DMG02: no such date (before 1800)
    assert any(line.startswith("IK4*2*782*6*ABC") for line in lines)  # CLM02: not a number
    assert "IK3*SV1*21*2300*1~" in lines  # without its LX, the SV1 has no place
    assert "IK3*LX*23*2400*3~" in lines  # claim 1 has no 2400 loop: noticed at claim 2's CLM
    ctx = lines[lines.index("IK3*LX*23*2400*3~") + 1]
    assert ctx == "CTX*CLM01:M0002C0~"
    assert lines[-5:-3] == ["IK5*R*4*5~", "AK9*R*1*1*0~"]


def _validate(text: str) -> None:
    ok, tree, _ = run_pyx12(text.encode())
    assert ok, tree
    (isa,) = tree["interchanges"]
    assert all(g["vriic"] == "005010X231A1" for g in isa["groups"])


def test_every_999_passes_pyx12_and_matches_the_verdicts():
    for mutant in mutants(60, seed=11):
        report = check(mutant.data)
        text = ack(mutant.data)
        # a rejected interchange (TA1 R) gets no 999: its groups are never opened
        answered = [st for isa in report.interchanges if isa.accepted
                    for gs in isa.groups for st in gs.transactions]
        if not answered:
            assert text == "" and not all(isa.accepted for isa in report.interchanges)
            continue
        _validate(text)
        ik5 = [line.split("*")[1].rstrip("~") for line in text.splitlines()
               if line.startswith("IK5*")]
        assert ik5 == [st.ack_code for st in answered]
        ik3 = sum(1 for line in text.splitlines() if line.startswith("IK3*"))
        assert (ik3 > 0) == any(st.errors for st in answered)


def test_a_rejected_interchange_gets_a_ta1_not_a_999():
    data = build_837("P", 1, 1)
    head, _, _ = data.rpartition(b"IEA*")
    assert ack(head) == ""  # no IEA: TA1 023 rejects the interchange
    assert ack(data).startswith("ISA*")


def test_one_999_interchange_per_interchange_one_set_per_group():
    path = FIXTURES / "837p-multi-envelope.x12"
    if not path.exists():
        pytest.skip("fixture not there")
    text = ack(path.read_bytes(), start=7)
    assert text.count("ISA*") == 2 and text.count("ST*999*") == 2
    assert "*000000007*" in text and "*000000008*" in text
    for block in text.split("ISA*")[1:]:
        _validate("ISA*" + block)


def test_interchanges_without_groups_get_no_999():
    assert ack(b"") == ""
    assert write_999(check(b"not x12"), io.BytesIO()) == 0
