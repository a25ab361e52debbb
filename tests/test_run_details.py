"""Reports say what the run was made with and where things are, in words people read:
run details (version, profile, data, ledger, UTC time), amounts with thousands separators
where people read them (not in JSON or CSV), places on a one-line file by segment and byte."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
from click.testing import CliRunner
from lxml import html
from x12text import claim_837p, interchange

from scrubber import __version__
from scrubber.cli import main
from scrubber.emit.html_report import page_data
from scrubber.emit.sinks import ledger_words

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((ROOT / "docs" / "report.schema.json").read_text())
UNITS = ROOT / "fixtures" / "rules" / "96523-units.fail.837p.x12"


def _check(*args: str, env: dict | None = None):
    return CliRunner().invoke(main, ["check", *args], env=env)


def test_every_report_carries_the_run_details(tmp_path):
    epoch = {"SOURCE_DATE_EPOCH": "1796083200"}  # 2026-12-01 00:00:00 UTC
    report = json.loads(_check(str(UNITS), "--no-ledger", "--format", "json", env=epoch).stdout)
    jsonschema.validate(report, SCHEMA)
    run = report["run"]
    assert run["version"] == __version__ and run["started"] == "2026-12-01T00:00:00Z"
    assert (run["profile"], run["conformance"]) == ("default", "on")
    assert run["ledger"].startswith("none") and run["data"]  # the bundled ICD-10-CM
    ledger = tmp_path / "ledger.sqlite"
    with_ledger = json.loads(_check(str(UNITS), "--ledger", str(ledger), "--no-ig",
                                    "--format", "json").stdout)["run"]
    assert (with_ledger["ledger"], with_ledger["conformance"]) == (str(ledger), "off")
    text = _check(str(UNITS), "--no-ledger", env=epoch).stdout
    (line,) = [t for t in text.splitlines() if t.startswith("RUN ")]
    assert line.startswith(f"RUN scrubber {__version__}; profile default; ")
    assert "ledger none" in line and line.endswith("run 2026-12-01 00:00:00 UTC")
    page = html.fromstring(_check(str(UNITS), "--no-ledger", "--format", "html",
                                  env=epoch).stdout.encode())
    shown = page.get_element_by_id("run-details").text_content()
    assert f"scrubber {__version__}" in shown and "2026-12-01 00:00:00 UTC" in shown


def test_a_ledger_url_is_named_without_its_credentials():
    assert ledger_words("postgresql://clerk:s3cret@db.example:5432/claims") == \
        "postgresql://db.example:5432/claims"
    assert ledger_words("/var/lib/scrub/ledger.sqlite") == "/var/lib/scrub/ledger.sqlite"


def test_amounts_people_read_have_thousands_separators_machine_formats_do_not(tmp_path):
    path = tmp_path / "big.x12"
    path.write_text(interchange(claim_837p("BIG-1", lines=[("96523", "1234.5", "2",
                                                            "20261102")])))
    text = _check(str(path), "--no-ledger").stdout
    assert "1 rejected (1,234.50)" in text
    report = json.loads(_check(str(path), "--no-ledger", "--format", "json").stdout)
    assert report["total"]["charges_rejected"] == "1234.50"
    assert report["total"]["by_rule"][0]["at_risk"] == "1234.50"
    page = html.fromstring(_check(str(path), "--no-ledger", "--format", "html").stdout.encode())
    assert page.xpath('//table[@id="by-rule"]/tbody/tr[1]/td[5]/text()') == ["1,234.50"]
    sheet = _check(str(path), "--no-ledger", "--format", "csv").stdout
    assert "1234.50" in sheet and "1,234.50" not in sheet


def test_a_one_line_file_is_located_by_segment_and_byte(tmp_path):
    one = tmp_path / "one.x12"
    one.write_bytes(UNITS.read_bytes().replace(b"\n", b""))
    text = _check(str(one), "--no-ledger").stdout
    assert "segment 24 (byte " in text and "line 24" not in text
    assert "line 24: SV1*HC:96523" in _check(str(UNITS), "--no-ledger").stdout
    page = _check(str(one), "--no-ledger", "--format", "html").stdout
    (claim,) = page_data(page)["claims"]
    lines, here = claim[9][0][1][:2]  # the first finding's segment in context
    assert lines[here][0] == "#24" and lines[here][1].startswith("SV1")
