"""The fee-schedule rules' fixtures, scrubbed with the synthetic CMS-layout files beside them.

fixtures/pfs/ holds a PPRRVU CSV (January 2026 release), a HCPCS file with
modifier records and the 837 files (<rule>.<pass|fail>[-x].837p.x12). The files
are loaded as a run loads them: through the registered resource kinds.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from rule_fixtures import assert_fixture

from scrubber.model import read
from scrubber.rules.engine import scrub_events
from scrubber.rules.findings import ScrubbedClaim
from scrubber.rules.profile import load_profile
from scrubber.rules.registry import all_rules, pack_of
from scrubber.rules.resources import Resources, load_resources

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "pfs"
FILES = sorted(FIXTURES.glob("*.x12"))
_spec = importlib.util.spec_from_file_location("pfs_fixture_build", FIXTURES / "build.py")
assert _spec is not None and _spec.loader is not None
build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build)


@pytest.fixture(scope="module")
def resources(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
        return load_resources({k: [str(p) for p in v] for k, v in build.data_files().items()})


def scrub(path: Path, resources: Resources, select=()) -> list[ScrubbedClaim]:
    from scrubber.rules.engine import Engine

    engine = Engine(load_profile(), resources=resources, select=select)
    return [e for e in scrub_events(lambda: read(path), profile=load_profile(), engine=engine)
            if isinstance(e, ScrubbedClaim)]


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_fixture(path, resources):
    assert_fixture(path, scrub(path, resources))


@pytest.mark.parametrize("path", [p for p in FILES if ".fail" in p.name], ids=lambda p: p.name)
def test_without_the_data_the_rule_does_not_run(path):
    claims = scrub(path, Resources())
    assert claims and not any(c.findings for c in claims)


@pytest.mark.parametrize("path", [p for p in FILES if ".fail" in p.name], ids=lambda p: p.name)
def test_removing_the_rule_removes_the_finding(path, resources):
    rule_id = path.name.split(".")[0]
    others = [r.id for r in all_rules() if r.id != rule_id]
    claims = scrub(path, resources, select=others)
    assert not any(f.rule == rule_id for c in claims for f in c.findings)
    assert not any(f.severity.value != "info" for c in claims for f in c.findings)


def test_every_rule_of_the_pack_has_both_fixtures():
    rules = [r for r in all_rules() if pack_of(r).fixtures == "pfs"]
    assert {r.id for r in rules} >= {"pfs-pctc-modifier", "pfs-global-period",
                                     "modifier-invalid"}
    for rule in rules:
        assert list(FIXTURES.glob(f"{rule.id}.pass*.x12")), rule.id
        assert list(FIXTURES.glob(f"{rule.id}.fail*.x12")), rule.id


def test_fixtures_match_their_builder():
    rendered = build.render()
    on_disk = sorted(p.name for p in FIXTURES.iterdir() if p.is_file() and p.name != "build.py")
    assert sorted(rendered) == on_disk
    for name, text in rendered.items():
        assert (FIXTURES / name).read_bytes() == text.encode("ascii"), name
