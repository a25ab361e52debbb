"""Every id a report prints is a rule or a problem code: it can be looked up and filtered.

The problem codes (scrubber.problems) are the ids of what the tokenizer, the
envelope walker and the implementation-guide check find; `scrub rules`,
--select, --ignore, profiles and scrub.toml accept them. The table is checked
against the code that produces the ids, and against every id the reports
print over every fixture and the shared corpus.
"""

from __future__ import annotations

import ast
import io
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from scrubber.api import check_files
from scrubber.cli import main
from scrubber.emit.batch import Batch
from scrubber.options import ScrubOptions, scrub_options
from scrubber.problems import PROBLEMS
from scrubber.rules.profile import load_profile
from scrubber.rules.registry import all_rules, get_rule

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"
_CODE = re.compile(r"(ig|env|syntax|file)-[a-z0-9]+(-[a-z0-9]+)*\Z")
SINGLE = str(ROOT / "fixtures" / "837p-single.x12")


def _literals() -> set[str]:
    """Every string literal of the package that has the shape of a problem code."""
    found = set()
    for path in (ROOT / "scrubber").rglob("*.py"):
        if path.name == "problems.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and _CODE.match(node.value):
                found.add(node.value)
    return found


def test_every_problem_code_the_code_produces_is_in_the_table_and_no_other():
    produced = _literals()
    assert produced - set(PROBLEMS) == set(), "codes produced but not documented"
    assert set(PROBLEMS) - produced == set(), "codes documented but produced nowhere"
    for code in PROBLEMS.values():
        assert code.summary and code.fix and code.source and code.answer in ("TA1", "999",
                                                                             "none")
        assert get_rule(code.id) is None, "a problem code shares an id with a rule"


def _inputs() -> list[str]:
    files = sorted(str(p) for p in (ROOT / "fixtures").rglob("*")
                   if p.is_file() and p.suffix in (".x12", ".bin"))
    if CORPUS.is_dir():
        rows = (CORPUS / "PROVENANCE.tsv").read_text(encoding="utf-8").splitlines()[1:]
        files += [str(CORPUS / row.split("\t")[0]) for row in rows if row.strip()]
    return files


@pytest.fixture(scope="module")
def printed_ids() -> set[str]:
    """Every rule id and problem code a report prints over the fixtures and the corpus."""
    batch = Batch()
    check_files(_inputs(), io.StringIO(), fmt="csv", sinks=[batch],
                options=ScrubOptions(profile=load_profile(), ledger=None))
    return set(batch.by_rule)


@pytest.mark.slow
def test_every_id_a_report_prints_is_accepted_by_rules_select_and_ignore(printed_ids):
    problem_ids = {i for i in printed_ids if i in PROBLEMS}
    # the run met the envelope, syntax and implementation-guide families, not just rules
    assert {i.partition("-")[0] for i in problem_ids} >= {"ig", "env", "syntax"}
    assert "ig-999" in printed_ids and "ig-hl-sequence" in printed_ids
    runner = CliRunner()
    for ident in sorted(printed_ids):
        assert get_rule(ident) is not None or ident in PROBLEMS, ident
        shown = runner.invoke(main, ["rules", ident])
        assert shown.exit_code == 0 and shown.output.startswith(f"{ident}: "), shown.output
        for flag in ("--select", "--ignore"):
            run = runner.invoke(main, ["check", SINGLE, "--no-ledger", "-q", flag, ident])
            assert run.exit_code == 0, (ident, flag, run.output)
        assert scrub_options("check", ignore=ident).ignore == (ident,)


def test_families_are_accepted_and_listed():
    runner = CliRunner()
    for family in ("ig", "env", "syntax", "file"):
        listed = runner.invoke(main, ["rules", family])
        assert listed.exit_code == 0
        ids = [line.split()[0] for line in listed.output.splitlines()]
        assert ids == [c for c in PROBLEMS if c.startswith(family + "-")]
        assert runner.invoke(main, ["check", SINGLE, "--no-ledger", "-q", "--ignore",
                                    family]).exit_code == 0
    assert runner.invoke(main, ["rules", "nosuch"]).exit_code == 2
    assert runner.invoke(main, ["check", SINGLE, "--no-ledger", "-q", "--ignore",
                                "nosuch"]).exit_code == 2
    whole = runner.invoke(main, ["rules"]).output
    assert len(whole.splitlines()) == len(all_rules()) + len(PROBLEMS)


def test_explaining_a_problem_code_gives_what_to_do_and_the_answer():
    shown = CliRunner().invoke(main, ["rules", "env-iea-control"]).output
    assert "what to do: Make IEA02 equal ISA13." in shown and "TA1" in shown
    as_json = CliRunner().invoke(main, ["rules", "ig-hl-sequence", "--format", "json"])
    import json

    (item,) = json.loads(as_json.output)
    assert item["kind"] == "problem" and item["answer"] == "999" and item["fix"]


def test_ignoring_a_problem_code_keeps_the_verdict_and_says_so():
    """--ignore cannot make a set the payer rejects look sendable: the problem stays, the
    exit code stays 1 and the report says the pattern named the payer's check."""
    broken = str(ROOT / "fixtures" / "broken-se-count.x12")
    runner = CliRunner()
    plain = runner.invoke(main, ["check", broken, "--no-ledger"])
    ignored = runner.invoke(main, ["check", broken, "--no-ledger", "--ignore", "env-se-count,ig"])
    assert plain.exit_code == ignored.exit_code == 1
    assert "[env-se-count]" in ignored.output and "verdict: fix 1 claim" in ignored.output
    assert "--ignore names the payer's own checks (env-se-count, ig-999" in ignored.output
    assert "payer's own checks" not in plain.output


def test_a_profile_and_scrub_toml_accept_problem_codes(tmp_path):
    profile = tmp_path / "payer.xml"
    profile.write_text('<?xml version="1.0"?>\n<profile name="p"><rules>'
                       '<rule id="ig-element" enabled="false"/></rules></profile>\n',
                       encoding="utf-8")
    loaded = load_profile(profile)
    assert loaded.problem_settings == ("ig-element",)
    toml = tmp_path / "scrub.toml"
    toml.write_text('[scrub]\nignore = ["env-se-count", "syntax"]\n', encoding="utf-8")
    broken = str(ROOT / "fixtures" / "broken-se-count.x12")
    run = CliRunner().invoke(main, ["--config", str(toml), "check", broken, "--no-ledger",
                                    "--profile", str(profile)])
    assert run.exit_code == 1, run.output
    assert "the profile p names the payer's own checks (ig-element)" in run.output
    (said,) = [line for line in run.output.splitlines() if "--ignore names" in line]
    assert "syntax-empty, " in said and "cannot be switched off" in said
