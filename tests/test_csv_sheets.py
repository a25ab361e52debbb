"""CSV sheets a spreadsheet sums right: per finding (money once) and per claim, BOM on request."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from decimal import Decimal
from pathlib import Path

from click.testing import CliRunner

from scrubber.cli import main

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures"
INPUTS = [*(str(p) for p in sorted((FIXTURES / "rules").glob("96523-*.x12"))[:12]),
          str(FIXTURES / "837i-multi.x12"), str(FIXTURES / "837p-multi.x12"),
          str(FIXTURES / "reports" / "hl-numbering.x12"), str(FIXTURES / "broken-empty.x12")]


def _sheets(tmp_path: Path, *options: str) -> tuple[list[dict], list[dict], dict]:
    out = tmp_path / "r.csv"
    run = CliRunner().invoke(main, ["check", *INPUTS, "--no-ledger", "--format", "csv",
                                    "--output", str(out), *options])
    assert run.exit_code == 2, run.output  # the empty file is not scrubbed
    report = CliRunner().invoke(main, ["check", *INPUTS, "--no-ledger", "--format", "json"])
    findings = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    claims = list(csv.DictReader(io.StringIO(
        (tmp_path / "r.claims.csv").read_text(encoding="utf-8-sig"))))
    return findings, claims, json.loads(report.stdout)["total"]


def test_the_finding_sheet_carries_each_charge_once(tmp_path):
    findings, _, total = _sheets(tmp_path)
    at_risk = sum(Decimal(r["at_risk"]) for r in findings if r["at_risk"])
    assert at_risk == Decimal(total["charges_rejected"])
    # several findings on one line: the line's charge on the first of them only
    per_line = Counter((r["file"], r["claim"], r["line"]) for r in findings if r["line"])
    crowded = [key for key, n in per_line.items() if n > 1]
    assert crowded
    for key in crowded:
        charges = [r["line_charge"] for r in findings
                   if (r["file"], r["claim"], r["line"]) == key]
        assert charges[0] and not any(charges[1:])
    risky = Counter((r["file"], r["claim"]) for r in findings if r["at_risk"])
    assert set(risky.values()) == {1}


def test_the_claim_sheet_has_a_row_per_claim_that_adds_up(tmp_path):
    _, claims, total = _sheets(tmp_path)
    assert list(claims[0]) == ["file", "claim", "billing_npi", "payer", "patient",
                               "first_service_date", "last_service_date", "claim_charge",
                               "status", "rules", "at_risk"]
    scrubbed = [r for r in claims if r["claim"]]
    assert len(scrubbed) == total["claims"]
    assert sum(Decimal(r["at_risk"]) for r in claims) == Decimal(total["charges_rejected"])
    assert sum(Decimal(r["claim_charge"]) for r in scrubbed) == \
        Decimal(total["charges_rejected"]) + Decimal(total["charges_accepted"])
    first = next(r for r in claims if r["claim"] == "MLT-0003"
                 and r["file"].endswith("837p-multi.x12"))
    assert (first["first_service_date"], first["last_service_date"], first["claim_charge"],
            first["billing_npi"]) == ("2026-11-10", "2026-11-11", "140.75", "1728394655")
    assert first["patient"] == "M*********, D****"  # masked as in the text report
    held = next(r for r in claims if r["file"].endswith("hl-numbering.x12"))
    assert held["status"] == "rejected" and held["rules"].split()[0] == "ig-hl-sequence"
    assert held["rules"].split()[-1] == "ig-999"
    (empty,) = [r for r in claims if r["file"].endswith("broken-empty.x12")]
    assert (empty["claim"], empty["status"]) == ("", "not scrubbed")


def test_a_byte_order_mark_on_request_and_from_scrub_toml(tmp_path):
    _sheets(tmp_path)
    assert not (tmp_path / "r.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    _sheets(tmp_path, "--csv-bom")
    for name in ("r.csv", "r.claims.csv"):
        assert (tmp_path / name).read_bytes().startswith(b"\xef\xbb\xbffile,")
    toml = tmp_path / "scrub.toml"
    toml.write_text("[check]\ncsv-bom = true\n", encoding="utf-8")
    sheet = tmp_path / "own.csv"
    run = CliRunner().invoke(main, ["--config", str(toml), "check", INPUTS[-2],
                                    "--no-ledger", "--format", "csv", "--csv-claims",
                                    str(sheet)])
    assert run.exit_code == 1 and run.stdout.startswith("\ufefffile,")
    assert sheet.read_bytes().startswith(b"\xef\xbb\xbffile,claim,billing_npi")


def test_a_front_end_writing_csv_reports_writes_the_claim_sheet_beside(tmp_path):
    from scrubber.api import process_file

    outcome = process_file(INPUTS[-2], str(tmp_path), reports=("csv",), no_ledger=True)
    assert sorted(Path(r).name for r in outcome.reports if r.endswith(".csv")) == \
        ["hl-numbering.x12.claims.csv", "hl-numbering.x12.csv"]
    rows = list(csv.DictReader(io.StringIO(
        (tmp_path / "hl-numbering.x12.claims.csv").read_text(encoding="utf-8"))))
    assert [r["claim"] for r in rows] == ["MLT-0001", "MLT-0002", "MLT-0003"]
