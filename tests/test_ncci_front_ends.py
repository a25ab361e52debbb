"""The NCCI tables reach every front end: scrub check options, scrub.toml, the API, the watcher.

The synthetic CMS-layout tables and 837 fixtures of fixtures/ncci are used as
a user would: practitioner files for 837P, outpatient files for 837I.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import scrubber
from scrubber.api import process_file
from scrubber.cli import main
from scrubber.ncci import load_tables

NCCI = Path(__file__).resolve().parent.parent / "fixtures" / "ncci"
P_FAIL = NCCI / "ncci-ptp.fail.837p.x12"
I_FAIL = NCCI / "ncci-ptp.fail.837i.x12"
OPTIONS = ["--ncci-ptp", str(NCCI / "ptp-practitioner.txt"),
           "--ncci-ptp-837i", str(NCCI / "ptp-outpatient.txt"),
           "--mue", str(NCCI / "mue-practitioner.csv"),
           "--mue-837i", str(NCCI / "mue-outpatient.txt")]


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def rules_of(output: str) -> set[str]:
    report = json.loads(output)
    return {f["rule"] for file in report["files"] for i in file["interchanges"]
            for g in i["groups"] for t in g["transactions"] for c in t["claims"]
            for f in c["findings"]}


@pytest.mark.parametrize("path", [P_FAIL, I_FAIL], ids=["837p", "837i"])
def test_check_applies_the_tables_only_when_given(path):
    runner = CliRunner()
    plain = runner.invoke(main, ["check", str(path), "--no-ledger", "--format", "json"])
    assert plain.exit_code == 0 and "ncci-ptp" not in rules_of(plain.output)
    run = runner.invoke(main, ["check", str(path), "--no-ledger", "--format", "json", *OPTIONS])
    assert run.exit_code == 1, run.output
    assert "ncci-ptp" in rules_of(run.output)


def test_practitioner_tables_do_not_apply_to_837i_when_outpatient_ones_are_given():
    # the pair of the 837I fixture is only in the outpatient file
    run = CliRunner().invoke(main, ["check", str(I_FAIL), "--no-ledger", "--format", "json",
                                    "--ncci-ptp", str(NCCI / "ptp-practitioner.txt"),
                                    "--ncci-ptp-837i", str(NCCI / "ptp-practitioner.txt")])
    assert run.exit_code == 0 and "ncci-ptp" not in rules_of(run.output)


def test_the_same_keys_in_scrub_toml(tmp_path):
    config = tmp_path / "scrub.toml"
    config.write_text("[check]\n"
                      f"ncci-ptp = [{json.dumps(str(NCCI / 'ptp-practitioner.txt'))}]\n"
                      f"mue = [{json.dumps(str(NCCI / 'mue-practitioner.csv'))}]\n")
    run = CliRunner().invoke(main, ["--config", str(config), "check", str(P_FAIL),
                                    "--no-ledger", "--format", "json"])
    assert run.exit_code == 1 and "ncci-ptp" in rules_of(run.output)


def test_a_broken_table_is_a_clear_usage_error(tmp_path):
    bad = tmp_path / "ptp.txt"
    bad.write_text("99213\t36415\t\t2026O101\t*\t1\tMisuse of column two code\n")
    run = CliRunner().invoke(main, ["check", str(P_FAIL), "--no-ledger", "--ncci-ptp", str(bad)])
    assert run.exit_code == 2 and "ptp.txt" in run.output and "line 1" in run.output
    assert "Traceback" not in run.output


def test_api_and_watcher_unit_get_the_same_verdict(tmp_path):
    tables = load_tables(ptp=[NCCI / "ptp-practitioner.txt"], mue=[NCCI / "mue-practitioner.csv"])
    result = scrubber.scrub(P_FAIL, ncci=tables)
    api = {c.claim.id: c.status for c in result.claims}
    assert "rejected" in api.values()
    assert any(f.rule == "ncci-ptp" for c in result.claims for f in c.findings)
    streamed = {c.claim.id: c.status for c in scrubber.iter_claims(P_FAIL, ncci=tables)}
    assert streamed == api
    outcome = process_file(str(P_FAIL), str(tmp_path), ncci=tables)
    assert outcome.rejected == list(api.values()).count("rejected")
