"""`scrub rules` (table, JSON, one rule explained), `scrub profile show`, help and version."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from scrubber import __version__
from scrubber.cli import main
from scrubber.rules import load_profile
from scrubber.rules.profile import DEFAULT_PROFILE, maps_dir
from scrubber.rules.registry import all_rules, get_rule


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def test_the_rules_table_has_a_status_column():
    from scrubber.problems import PROBLEMS

    lines = run("rules").output.splitlines()
    assert len(lines) == len(all_rules()) + len(PROBLEMS)  # the problem codes come after
    for line, code in zip(lines[len(all_rules()):], PROBLEMS.values(), strict=True):
        assert line.split()[:3] == [code.id, "reject", code.answer]
    for line, r in zip(lines, all_rules(), strict=False):
        assert line.split()[0] == r.id
        assert (":".join(r.status) if r.status else "-") in [c.strip() for c in line.split("  ")]
        assert line.endswith(r.summary)


def test_rules_as_json_and_by_prefix():
    listed = json.loads(run("rules", "--format", "json").output)
    assert [r["id"] for r in listed][:len(all_rules())] == [r.id for r in all_rules()]
    units = next(r for r in listed if r["id"] == "96523-units")
    assert units["status_code"] == "A7:476" and units["severity"]["837P"] == "reject"
    assert "Fails:" in units["doc"]
    snip = json.loads(run("rules", "snip-", "--format", "json").output)
    assert {r["id"] for r in snip} == {r.id for r in all_rules() if r.id.startswith("snip-")}
    unknown = run("rules", "96532-units")
    assert unknown.exit_code == 2 and "'96532-units'" in unknown.output


def test_one_rule_explained_with_its_examples():
    text = run("rules", "96523-units").output
    rule = get_rule("96523-units")
    assert rule is not None
    assert text.startswith(f"96523-units: {rule.summary}\n")
    assert "277CA status:  A7:476" in text and f"source:        {rule.source}" in text
    assert "Fails: SV1*HC:96523*120*UN*2" in text
    assert "96523-units.fail.837p.x12" in text  # the example file in this checkout


def test_sources_name_the_reference_not_an_internal_file():
    for r in all_rules():
        assert "seed" not in r.source.lower() and "000_" not in r.source, r.id
    assert get_rule("96523-units") is not None
    sources = {r.id.split("-")[0]: r.source for r in all_rules()}
    assert sources["snip"].startswith("WEDI SNIP") and sources["ncci"].startswith("CMS NCCI")
    assert "CPT 96523 coding reference" in get_rule("96523-sole-service").source


def test_profile_show_prints_the_default_profile_a_user_can_start_from(tmp_path):
    shown = run("profile", "show").output
    assert shown == (maps_dir() / DEFAULT_PROFILE).read_text(encoding="utf-8")
    mine = tmp_path / "my-payer.xml"
    mine.write_text(shown)
    assert load_profile(mine).settings == load_profile().settings


def test_help_is_not_cut_off_and_there_is_one_version():
    text = run("--help").output
    commands = text[text.index("Commands:"):]
    assert "..." not in commands
    assert "version" not in commands.split()  # --version is the one
    assert run("--version").output == f"scrub {__version__}\n"
    assert run("version").output == run("--version").output
    check = run("check", "--help").output
    for option in ("--select", "--ignore", "--statistics", "--color", "--output"):
        assert option in check
    assert Path(maps_dir() / DEFAULT_PROFILE).is_file()
