"""Linter habits: --select/--ignore by id or prefix in every front end, --statistics, colour."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import scrubber
from scrubber.cli import main, use_color
from scrubber.core import ScrubOptions
from scrubber.rules.registry import all_rules, selected

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "fixtures" / "rules"
UNITS = RULES / "96523-units.fail.837p.x12"
BALANCE = RULES / "snip-claim-balance.fail.837p.x12"


def rules_fired(path: Path, **options) -> set[str]:
    result = scrubber.scrub(path, options=ScrubOptions(**options))
    return {f.rule for c in result.claims for f in c.findings}


def test_select_and_ignore_take_ids_and_prefixes():
    ids = [r.id for r in all_rules()]
    snip = [r.id for r in selected(all_rules(), ["snip-"])]
    assert snip == [i for i in ids if i.startswith("snip-")] and snip
    assert [r.id for r in selected(all_rules(), (), ["snip-", "96523-units"])] == \
        [i for i in ids if not i.startswith("snip-") and i != "96523-units"]
    with pytest.raises(ValueError, match="'snp-'"):
        selected(all_rules(), ["snp-"])


def test_every_front_end_gets_them_through_the_options():
    assert "96523-units" in rules_fired(UNITS)
    assert "96523-units" not in rules_fired(UNITS, ignore=("96523-units",))
    assert rules_fired(UNITS, select=("snip-",)) <= {r.id for r in selected(all_rules(),
                                                                           ["snip-"])}
    assert "snip-claim-balance" in rules_fired(BALANCE)
    assert not rules_fired(BALANCE, select=("96523-",))
    assert scrubber.scrub(BALANCE, options=ScrubOptions(ignore=("snip-",))).ok


def test_the_command_line_selects_ignores_and_refuses_an_unknown_rule():
    run = CliRunner().invoke
    assert run(main, ["check", str(UNITS), "--no-ledger", "--ignore",
                      "96523-units"]).exit_code == 0
    assert run(main, ["check", str(UNITS), "--no-ledger", "--select",
                      "snip-,96523-date"]).exit_code == 0
    assert run(main, ["check", str(UNITS), "--no-ledger", "--select", "96523"]).exit_code == 1
    typo = run(main, ["check", str(UNITS), "--no-ledger", "--ignore", "96532-units"])
    assert typo.exit_code == 2 and "'96532-units'" in typo.output
    assert "Traceback" not in typo.output


def test_statistics_count_what_the_report_holds():
    paths = [str(p) for p in sorted(RULES.glob("*.fail*.x12"))[:10]]
    result = CliRunner().invoke(main, ["check", *paths, "--no-ledger", "--format", "json",
                                       "--statistics"])
    by_rule = json.loads(result.stdout)["total"]["by_rule"]
    lines = [line.split() for line in result.stderr.splitlines()
             if line and line.split()[0].isdigit()]
    assert [(int(w[0]), w[1]) for w in lines] == [(r["findings"], r["rule"]) for r in by_rule]
    assert all(f"{r['at_risk']} at risk" in " ".join(w) for w, r in zip(lines, by_rule,
                                                                         strict=True))
    text = CliRunner().invoke(main, ["check", *paths, "--no-ledger", "--statistics"])
    assert text.stdout.rstrip().endswith(" at risk")  # after a text report, on its stream


class Tty:
    def __init__(self, tty: bool):
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_colour_follows_the_flag_then_no_color_then_the_terminal(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert use_color(None, Tty(True)) and not use_color(None, Tty(False))
    monkeypatch.setenv("NO_COLOR", "1")
    assert not use_color(None, Tty(True))
    assert use_color(True, Tty(False)) and not use_color(False, Tty(True))
    coloured = CliRunner().invoke(main, ["check", str(UNITS), "--no-ledger", "--color"])
    assert "\x1b[7m2\x1b[0m" in coloured.stdout and "[2]" not in coloured.stdout
    plain = CliRunner().invoke(main, ["check", str(UNITS), "--no-ledger"])
    assert "\x1b[" not in plain.stdout and "*[2]*" in plain.stdout
