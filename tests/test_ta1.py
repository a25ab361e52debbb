"""TA1: broken interchange envelopes get an interchange acknowledgement, in codes and words."""

from __future__ import annotations

import io
import itertools
import stat
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from scrubber.cli import main
from scrubber.emit.ta1 import explain_ta1, write_ta1
from scrubber.model import read

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
CLOCK = lambda: datetime(2026, 11, 28, 12, 0)  # noqa: E731


def ta1(name: str):
    out = io.BytesIO()
    answers = write_ta1(read(FIXTURES / name), out, clock=CLOCK,
                        control_numbers=itertools.count(500))
    return out.getvalue().decode(), answers


@pytest.mark.parametrize("name, ack, note", [
    ("broken-missing-iea.x12", "R", "023"),
    ("broken-truncated.x12", "R", "023"),
    ("broken-control-mismatch.x12", "R", "001"),
    ("broken-isa-short.x12", "R", "022"),
])
def test_broken_envelopes_get_the_right_ta1(name, ack, note):
    text, (answer,) = ta1(name)
    interchange = next(e for e in read(FIXTURES / name) if type(e).__name__ == "Interchange")
    assert (answer.ack_code, answer.note_code) == (ack, note)
    assert f"TA1*{interchange.control_number}*" in text
    assert text.splitlines()[1].endswith(f"*{ack}*{note}~")
    assert explain_ta1(answer).startswith(f"interchange {interchange.control_number} ")


def test_sound_envelopes_get_no_ta1():
    for name in ("837p-multi.x12", "837p-multi-envelope.x12", "broken-se-count.x12"):
        assert ta1(name) == ("", [])


def test_ta1_golden():
    text, _ = ta1("broken-missing-iea.x12")
    assert text == (
        "ISA*00*          *00*          *ZZ*SCRUBBER       *ZZ*SCRUBTESTSUBM  *261128*1200*"
        "^*00501*000000500*0*T*:~\n"
        "TA1*000000306*261120*0930*R*023~\n"
        "IEA*0*000000500~\n")
    assert len(text.splitlines()[0]) == 106


def test_cli_writes_a_ta1_instead_of_a_277ca(tmp_path):
    acks = tmp_path / "acks"
    result = CliRunner().invoke(main, ["check", str(FIXTURES / "broken-missing-iea.x12"),
                                       "--277ca", str(acks), "--no-ledger"])
    assert result.exit_code == 1
    (written,) = acks.iterdir()
    assert written.name == "broken-missing-iea.x12.ta1.x12"
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert "*R*023~" in written.read_text()
