"""The fixtures of the packs that read CMS files, scrubbed with the synthetic files beside them.

Each such pack names its folder (FIXTURES: fixtures/pfs, fixtures/addons,
fixtures/place); the folder's build.py writes small files in CMS's published
layouts and the 837 files (<rule>.<pass|fail>[-x].<kind>.x12), and says which
resource option reads which file (``data_files``). The files are loaded as a
run loads them, through the registered resource kinds, and each fixture is
scrubbed as an intake would: every interchange recorded in a fresh claim ledger
as sent, so a "history" fixture's later interchange meets the earlier one there.
"""

from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path
from types import ModuleType

import pytest
from rule_fixtures import assert_fixture
from scrubbing import scrub_source

from scrubber.ledger import open_store
from scrubber.rules.engine import Engine
from scrubber.rules.findings import ScrubbedClaim, Severity
from scrubber.rules.profile import load_profile
from scrubber.rules.registry import all_rules, pack_of, packs
from scrubber.rules.resources import Resources, load_resources

ROOT = Path(__file__).resolve().parent.parent / "fixtures"
FOLDERS = ("pfs", "addons", "place", "providers", "diagnoses")


def builder(folder: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"{folder}_fixture_build",
                                                  ROOT / folder / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BUILDERS = {folder: builder(folder) for folder in FOLDERS}
# packs whose data ships with the scrubber: the place of service table, the bundled
# ICD-10-CM tabular and the profile's Medicare Code Editor lists
SHIPPED = ("place", "diagnoses")
FILES = [path for folder in FOLDERS for path in sorted((ROOT / folder).glob("*.x12"))]


@pytest.fixture(scope="module")
def resources(tmp_path_factory) -> dict[str, Resources]:
    """Each folder's files loaded through the resource kinds, in a private cache."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
        return {folder: load_resources({option: [str(p) for p in paths] for option, paths
                                        in build.data_files().items()})
                for folder, build in BUILDERS.items()}


def scrub(path: Path, resources: Resources, select=()) -> list[ScrubbedClaim]:
    engine = Engine(load_profile(), resources=resources, select=select)
    with tempfile.TemporaryDirectory() as scratch, \
            open_store(Path(scratch) / "ledger.sqlite") as ledger:
        return [e for e in scrub_source(path, engine=engine, ledger=ledger, record=True)
                if isinstance(e, ScrubbedClaim)]


@pytest.mark.parametrize("path", FILES, ids=[f"{p.parent.name}/{p.name}" for p in FILES])
def test_fixture(path, resources):
    assert_fixture(path, scrub(path, resources[path.parent.name]))


FAILS = [p for p in FILES if ".fail" in p.name]


@pytest.mark.parametrize("path", FAILS, ids=[f"{p.parent.name}/{p.name}" for p in FAILS])
def test_the_rule_alone_finds_it(path, resources):
    """Without the rule the finding is gone (nothing else rejects or warns); without the
    pack's data files, nothing is found at all."""
    rule_id = path.name.split(".")[0]
    others = [r.id for r in all_rules() if r.id != rule_id]
    claims = scrub(path, resources[path.parent.name], select=others)
    assert claims and not [f for c in claims for f in c.findings
                           if f.rule == rule_id or f.severity is not Severity.INFO]
    if path.parent.name not in SHIPPED:
        assert not any(c.findings for c in scrub(path, Resources()))


def test_every_rule_of_these_packs_has_both_fixtures():
    mine = [r for r in all_rules() if pack_of(r).fixtures in FOLDERS]
    assert {pack_of(r).fixtures for r in mine} == set(FOLDERS)
    assert {p.fixtures for p in packs()} >= set(FOLDERS)
    for rule in mine:
        folder = ROOT / pack_of(rule).fixtures
        assert list(folder.glob(f"{rule.id}.pass*.x12")), rule.id
        assert list(folder.glob(f"{rule.id}.fail*.x12")), rule.id


@pytest.mark.parametrize("folder", FOLDERS)
def test_fixtures_match_their_builder(folder):
    rendered = BUILDERS[folder].render()
    on_disk = sorted(p.name for p in (ROOT / folder).iterdir()
                     if p.is_file() and p.name != "build.py")
    assert sorted(rendered) == on_disk
    for name, text in rendered.items():
        assert (ROOT / folder / name).read_bytes() == text.encode("ascii"), name
