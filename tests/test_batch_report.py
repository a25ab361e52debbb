"""One report for a batch: every input scrubbed or named as not scrubbed, with a total."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from scrubber.cli import main

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"


def test_a_valid_batch_beside_junk_is_not_a_pass(tmp_path):
    """The issue's case: batch.txt (valid) and claims.txt (junk) in one folder exited 0."""
    (tmp_path / "batch.txt").write_bytes((FIXTURES / "837p-multi.x12").read_bytes())
    (tmp_path / "claims.txt").write_text("Claim list for Tuesday\n")
    report = tmp_path / "report.txt"
    result = CliRunner().invoke(main, ["check", str(tmp_path), "--no-ledger",
                                       "--output", str(report)])
    assert result.exit_code == 2
    text = report.read_text()
    assert f"not scrubbed: {tmp_path / 'claims.txt'}: no ISA header" in text
    assert "verdict: 1 file not scrubbed" in text
    assert report.stat().st_mode & 0o777 == 0o600


def test_every_format_writes_one_report_for_every_input_to_output(tmp_path):
    inputs = [str(FIXTURES / "837p-multi.x12"), str(FIXTURES / "rules" /
                                                   "96523-units.fail.837p.x12")]
    for fmt in ("text", "json"):
        target = tmp_path / f"report.{fmt}"
        result = CliRunner().invoke(main, ["check", *inputs, "--no-ledger", "--format", fmt,
                                           "--output", str(target)])
        assert result.exit_code == 1, (fmt, result.output)
        assert result.stdout == ""
        body = target.read_text()
        for name in inputs:
            assert name in body, fmt
        if fmt == "json":
            assert json.loads(body)["total"]["files"] == 2
