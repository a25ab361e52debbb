"""Root causes with their money: a held claim counts, with its charge, under the errors that
caused the hold; ig-999 is only their total, and every report ranks causes by money at risk."""

from __future__ import annotations

import io
import json
from decimal import Decimal
from pathlib import Path

import jsonschema
from click.testing import CliRunner
from lxml import html

from scrubber.api import check_files
from scrubber.cli import main
from scrubber.emit.batch import Batch, by_cause
from scrubber.emit.html_report import page_data
from scrubber.options import ScrubOptions
from scrubber.rules.profile import load_profile

ROOT = Path(__file__).resolve().parents[1]
HL = str(ROOT / "fixtures" / "reports" / "hl-numbering.x12")
SINGLE = str(ROOT / "fixtures" / "837p-single.x12")
MISMATCH = str(ROOT / "fixtures" / "broken-control-mismatch.x12")
SCHEMA = json.loads((ROOT / "docs" / "report.schema.json").read_text())


def _report(fmt: str, *paths: str) -> tuple[str, Batch]:
    out, batch = io.StringIO(), Batch()
    check_files(list(paths), out, fmt=fmt, sinks=[batch],
                options=ScrubOptions(profile=load_profile(), ledger=None))
    return out.getvalue(), batch


def test_the_hl_numbering_error_carries_the_money_of_the_claims_it_holds():
    text, batch = _report("json", HL, SINGLE)
    report = json.loads(text)
    jsonschema.validate(report, SCHEMA)
    by_rule = report["total"]["by_rule"]
    first = by_rule[0]
    assert first["rule"] == "ig-hl-sequence"
    assert (first["rejected"], Decimal(first["at_risk"])) == (3, Decimal("428.50"))
    # the umbrella comes last, marked as the total, never ranked as a cause
    assert by_rule[-1]["rule"] == "ig-999" and by_rule[-1]["total_of_causes"] is True
    assert [r["rule"] for r in by_rule if r.get("total_of_causes")] == ["ig-999"]
    claims = [c for t in report["files"][0]["interchanges"][0]["groups"][0]["transactions"]
              for c in t["claims"]]
    assert [c["held_by"] for c in claims] == [["ig-hl-sequence", "ig-hl-parent"]] * 3
    assert [rule for rule, _ in by_cause(batch.by_rule)][-1] == "ig-999"


def test_a_ta1_rejection_puts_the_money_under_the_envelope_error_and_says_ta1():
    text, _ = _report("json", MISMATCH)
    report = json.loads(text)
    (claim,) = report["files"][0]["interchanges"][0]["groups"][0]["transactions"][0]["claims"]
    assert claim["held_by"] == ["env-iea-control"]
    (finding,) = claim["findings"]
    assert "a payer answers this interchange with a TA1" in finding["fix"]
    assert "999" not in finding["fix"]
    rows = {r["rule"]: r for r in report["total"]["by_rule"]}
    assert rows["env-iea-control"]["at_risk"] == "100.00"


def test_text_html_and_statistics_rank_root_causes_by_money():
    text, _ = _report("text", HL, MISMATCH)
    # each kind of IG error says once per file what to do, and where to read more
    assert text.count("what to do: Number the HL segments from 1") == 1
    assert "(`scrub rules ig-hl-sequence`)" in text
    ranking = text[text.index("rejections by root cause"):].splitlines()
    assert ranking[1].split()[:3] == ["ig-hl-sequence", "3", "claims,"]
    assert ranking[1].endswith("428.50")
    assert ranking[3].split()[0] == "env-iea-control"
    assert ranking[4].startswith("  ig-999") and "in all 4 claims held, 528.50" in ranking[4]
    page, _ = _report("html", HL, MISMATCH)
    tree = html.fromstring(page.encode())
    bars = tree.xpath('//*[@id="chart"]//*[@class="amount-bar"]')
    assert [b.get("data-rule") for b in bars] == ["ig-hl-sequence", "ig-hl-parent",
                                                    "env-iea-control"]
    assert bars[0].get("data-at-risk") == "428.50"
    assert "4 claims (528.50) held" in tree.get_element_by_id("chart-held").text_content()
    data = page_data(page)
    held = [" ".join(data["rules"][r] for r in row[7]) for row in data["claims"]]
    assert held.count("ig-hl-sequence ig-hl-parent ig-999") == 3  # the rule filter finds them
    rows = tree.xpath('//table[@id="by-rule"]/tbody/tr/td[1]/text()')
    assert rows[0] == "ig-hl-sequence" and rows[-1].startswith("ig-999 (in all")
    stats = CliRunner().invoke(main, ["check", HL, "--no-ledger", "-q", "--statistics"])
    lines = stats.output.splitlines()
    assert lines[0].split()[1] == "ig-hl-sequence" and "428.50 at risk" in lines[0]
    assert lines[-1].split()[1] == "ig-999"
