"""The examples in docs/api.md run, and the public API does what they say."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import scrubber

ROOT = Path(__file__).resolve().parent.parent


def test_docs_api_examples_run(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "api.md").read_text(), re.S)
    assert len(blocks) == 3
    for block in blocks:
        exec(compile(block, "docs/api.md", "exec"), {})  # noqa: S102
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "2 1"
    assert out[1] == "ADMIN-A 96523-drug-admin ('A8', '454')"
    assert out[2:5] == ["MLT-0001 accepted", "MLT-0002 accepted", "MLT-0003 accepted"]
    assert out[5:] == ["MLT-0001 182.50 ['99214', '85025', '36415']",
                       "MLT-0002 105.25 ['99213', '81002']",
                       "MLT-0003 140.75 ['96523', '99212', '90686']"]


def test_scrub_result_writes_owner_only_reports(tmp_path):
    result = scrubber.scrub(ROOT / "fixtures" / "broken-missing-iea.x12")
    assert result.ack_277ca == b"" and result.ack_ta1.startswith(b"ISA*")
    assert [p.code for p in result.problems] == ["env-missing-iea"]
    written = result.write_acks(tmp_path, "batch")
    assert [Path(p).name for p in written] == ["batch.ta1.x12"]
    for fmt in ("json", "text", "html"):
        target = tmp_path / f"report.{fmt}"
        result.write_report(target, fmt)
        assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
        assert target.read_text()
