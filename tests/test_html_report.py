"""The HTML report's page, read back without a browser (tests/test_html_browser.py has one)."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import lxml.html
from click.testing import CliRunner

from scrubber.cli import main
from scrubber.core import Scrubber, feed
from scrubber.emit.html_report import ROW, HtmlReport, page_data

ROOT = Path(__file__).resolve().parent.parent
MULTI = ROOT / "fixtures" / "837p-multi.x12"


def test_a_file_name_that_is_not_utf8_is_shown_escaped_not_fatal(tmp_path):
    name = os.fsdecode(b"batch-\xff.x12")  # what a folder listing gives for such a name
    out = io.StringIO()
    writer = HtmlReport(out)
    feed(name, Scrubber().events(MULTI), [writer])
    writer.close()
    page = out.getvalue()
    assert "batch-\\udcff.x12" in lxml.html.document_fromstring(page).xpath("//h2/text()")
    assert page_data(page)["files"] == ["batch-\\udcff.x12"]


def test_every_claim_of_a_folder_is_in_the_page_in_status_order(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / os.fsdecode(b"odd-\xff.x12")).write_bytes(MULTI.read_bytes())
    (folder / "units.x12").write_bytes(
        (ROOT / "fixtures/rules/96523-units.fail.837p.x12").read_bytes())
    target = tmp_path / "report.html"
    result = CliRunner().invoke(main, ["check", str(folder), "--no-ledger", "--format", "html",
                                       "--output", str(target)])
    assert result.exit_code == 1, result.output
    assert stat.S_IMODE(target.stat().st_mode) == 0o600  # it names patients
    rows = page_data(target.read_text())["claims"]
    assert {len(row) for row in rows} == {len(ROW)}
    assert [(row[1], row[2]) for row in rows] == [("UNIT-A", "rejected"), ("MLT-0001", "accepted"),
                                                  ("MLT-0002", "accepted"),
                                                  ("MLT-0003", "accepted")]


def test_a_file_of_one_line_numbers_its_segments_in_context(tmp_path):
    """Every segment of a file without line breaks is on line 1: the context says which."""
    units = ROOT / "fixtures/rules/96523-units.fail.837p.x12"
    one = tmp_path / "one.x12"
    one.write_bytes(units.read_bytes().replace(b"\n", b""))

    def context(path: Path) -> list:
        out = io.StringIO()
        writer = HtmlReport(out)
        feed(str(path), Scrubber().events(path), [writer])
        writer.close()
        (row,) = page_data(out.getvalue())["claims"]
        lines, here = row[9][0][1][:2]  # the first finding's context
        return lines[here]

    assert context(units) == ["24", "SV1*HC:96523*120*UN*2***1"]
    assert context(one) == ["#24", "SV1*HC:96523*120*UN*2***1"]
