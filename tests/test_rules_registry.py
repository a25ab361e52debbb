"""The registry: unique documented rules, both fixtures each, and docs/rules.md in step."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from scrubber.problems import PROBLEMS
from scrubber.rules import docs
from scrubber.rules.findings import Severity
from scrubber.rules.registry import all_rules, pack_of, packs, rule

ROOT = Path(__file__).resolve().parent.parent


def test_ids_are_unique_and_records_frozen():
    rules = all_rules()
    ids = [r.id for r in rules]
    assert len(ids) == len(set(ids))
    order = [pack_of(r) for r in rules]  # pack by pack, in the packs' order
    assert order == sorted(order, key=lambda p: (p.order, p.module))
    assert [p.module for p in dict.fromkeys(order)] == [p.module for p in packs()]
    with pytest.raises(dataclasses.FrozenInstanceError):
        rules[0].severity = Severity.INFO  # type: ignore[misc]


def test_registering_an_id_twice_fails():
    with pytest.raises(ValueError, match="twice"):
        rule("96523-units", severity=Severity.WARN, summary="x", source="x", stc=None)(
            lambda ctx: iter(()))


@pytest.mark.parametrize("r", all_rules(), ids=lambda r: r.id)
def test_rule_is_documented_and_has_both_fixtures(r):
    assert r.summary and "\n" not in r.summary
    assert r.source
    assert "Fails:" in r.doc and "Passes:" in r.doc
    assert r.doc.splitlines()[0].endswith(".")
    folder = ROOT / "fixtures" / pack_of(r).fixtures
    assert list(folder.glob(f"{r.id}.pass*.837p.x12")) or \
        list(folder.glob(f"{r.id}.pass*.837i.x12"))
    assert list(folder.glob(f"{r.id}.fail*.x12"))


def test_docs_rules_md_is_generated_from_the_registry():
    text = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")
    assert text == docs.render(), "regenerate: python -m scrubber.rules.docs > docs/rules.md"
    rules_part, _, codes_part = text.partition("\n# Problem codes")
    listed = [line.split("`")[1] for line in rules_part.splitlines() if line.startswith("| `")]
    assert listed == [r.id for r in all_rules() if pack_of(r).builtin]
    codes = [line.split("`")[1] for line in codes_part.splitlines() if line.startswith("| `")]
    assert codes == list(PROBLEMS)


def test_rules_table_for_the_cli():
    table = docs.rules_table()
    assert table[0] == ("96523-sole-service", "reject (837I: warn)",
                        all_rules()[0].summary)
    assert dict((i, s) for i, s, _ in table)["96523-diagnosis"] == "warn"
