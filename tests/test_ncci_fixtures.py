"""The NCCI rules' passing and failing fixtures, scrubbed with the synthetic tables beside them.

fixtures/ncci/ holds both the CMS-layout tables and the 837 files, named like
the rule fixtures (<rule>.<pass|fail>[-x].<kind>.x12); the generic fixture test
scrubs without tables, so these have their own.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from rule_fixtures import assert_fixture
from scrubbing import scrub_source

from scrubber.ncci import load_tables
from scrubber.rules.findings import ScrubbedClaim
from scrubber.rules.profile import load_profile
from scrubber.rules.registry import all_rules, pack_of

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "ncci"
FILES = sorted(FIXTURES.glob("*.x12"))
_spec = importlib.util.spec_from_file_location("ncci_fixture_build", FIXTURES / "build.py")
assert _spec is not None and _spec.loader is not None
build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build)


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    return load_tables(**build.tables(), cache_dir=tmp_path_factory.mktemp("cache"))


def scrub(path: Path, tables) -> list[ScrubbedClaim]:
    return [e for e in scrub_source(path, profile=load_profile(), ncci=tables)
            if isinstance(e, ScrubbedClaim)]


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_fixture(path, tables):
    assert_fixture(path, scrub(path, tables))
    if ".fail" in path.name:  # without tables these rules find nothing
        assert scrub(path, None) and not any(c.findings for c in scrub(path, None))


def test_every_ncci_rule_has_both_fixtures():
    for rule in (r for r in all_rules() if pack_of(r).name == "ncci"):
        assert list(FIXTURES.glob(f"{rule.id}.pass*.x12")), rule.id
        assert list(FIXTURES.glob(f"{rule.id}.fail*.x12")), rule.id


def test_fixtures_match_their_builder():
    rendered = build.render()
    on_disk = sorted(p.name for p in FIXTURES.iterdir() if p.is_file() and p.name != "build.py")
    assert sorted(rendered) == on_disk
    for name, text in rendered.items():
        assert (FIXTURES / name).read_bytes() == text.encode("ascii"), name


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_fixture_is_valid_for_pyx12(path):
    pyx12 = pytest.importorskip("pyx12.x12n_document")
    import io
    import logging

    from pyx12.params import params

    logging.getLogger("pyx12").addHandler(logging.NullHandler())
    logging.getLogger("pyx12").propagate = False
    assert pyx12.x12n_document(params(), str(path), io.StringIO(), None)
