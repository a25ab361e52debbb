"""The code-set rules' fixtures, scrubbed with the synthetic CMS-layout files beside them.

fixtures/codesets/ holds two synthetic ICD-10-CM fiscal years, a HCPCS file, a
CPT list and the 837 files (<rule>.<pass|fail>[-x].<kind>.x12). The bundled
April 2026 release is always loaded too, so the dx-unknown and dx-not-billable
fixtures (dated in its window) are judged by it, with or without the files.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from rule_fixtures import assert_fixture
from scrubbing import scrub_source

from scrubber.codesets import load_codesets
from scrubber.rules.findings import ScrubbedClaim, Severity
from scrubber.rules.profile import load_profile
from scrubber.rules.registry import all_rules
from scrubber.rules.resources import Resources

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "codesets"
FILES = sorted(FIXTURES.glob("*.x12"))
_spec = importlib.util.spec_from_file_location("codesets_fixture_build", FIXTURES / "build.py")
build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build)


@pytest.fixture(scope="module")
def codesets(tmp_path_factory):
    return load_codesets(**build.codeset_files(), cache_dir=tmp_path_factory.mktemp("cache"))


def scrub(path: Path, codesets=None) -> list[ScrubbedClaim]:
    resources = Resources.of(codesets=codesets)
    return [e for e in scrub_source(path, profile=load_profile(),
                                    resources=resources)
            if isinstance(e, ScrubbedClaim)]


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_fixture(path, codesets):
    # a date after every release is judged by the nearest one, as a warning only
    assert_fixture(path, scrub(path, codesets),
                   Severity.WARN if "nocover" in path.name else None)


@pytest.mark.parametrize("path", [p for p in FILES if p.name.startswith(
    ("dx-unknown.fail", "dx-not-billable.fail"))], ids=lambda p: p.name)
def test_out_of_the_box_the_bundled_release_finds_the_same(path, codesets):
    # no resource at all: the rules fall back to the bundled ICD-10-CM release
    alone = [(f.rule, f.severity, f.message) for c in scrub(path) for f in c.findings]
    assert alone and alone == [(f.rule, f.severity, f.message)
                               for c in scrub(path, codesets) for f in c.findings]


@pytest.mark.parametrize("path", [p for p in FILES if p.name.startswith(
    ("hcpcs-", "cpt-")) and ".fail" in p.name], ids=lambda p: p.name)
def test_without_the_users_files_procedures_are_not_looked_up(path):
    assert scrub(path) and not any(c.findings for c in scrub(path))


@pytest.mark.parametrize("path", [p for p in FILES if p.name.startswith(
    "dx-not-in-force.fail")], ids=lambda p: p.name)
def test_without_a_release_of_the_date_nothing_is_rejected(path):
    # 2025-05-01 lies before the bundled release: judged by it, as warnings at most
    findings = [f for c in scrub(path) for f in c.findings]
    assert all(f.severity is Severity.WARN and "nearest" in f.message for f in findings)
    assert not any(c.rejected for c in scrub(path))


def test_every_codeset_rule_has_pass_and_fail_fixtures_for_both_kinds():
    rules = [r for r in all_rules() if r.check.__module__ == "scrubber.rules.packs.codesets"]
    assert [r.id for r in rules] == ["dx-unknown", "dx-not-billable", "dx-not-in-force",
                                     "hcpcs-unknown", "hcpcs-not-in-force", "cpt-unknown"]
    for rule in rules:
        for outcome in ("pass", "fail"):
            for kind in ("837p", "837i"):
                assert (FIXTURES / f"{rule.id}.{outcome}.{kind}.x12").is_file()


def test_fixtures_match_their_builder():
    rendered = build.render()
    on_disk = sorted(p.name for p in FIXTURES.iterdir() if p.is_file() and p.name != "build.py")
    assert sorted(rendered) == on_disk
    for name, text in rendered.items():
        assert (FIXTURES / name).read_bytes() == text.encode("ascii"), name
