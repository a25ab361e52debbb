"""Every rule's passing and failing fixtures, found by name: <rule>.<pass|fail>[-x].<kind>.x12."""

from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path

import pytest
from scrubbing import scrub_source

from scrubber.ledger import open_store
from scrubber.rules.findings import ScrubbedClaim, Severity
from scrubber.rules.profile import load_profile
from scrubber.rules.registry import get_rule, packs

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "rules"
# the fixtures of every pack that needs no data files beside them (those that do, such as
# NCCI's and the code sets', have a test module that loads them): the built-in packs' in
# fixtures/rules, an installed pack's in the folder it names
FOLDERS = sorted({FIXTURES.parent / pack.fixtures for pack in packs()
                  if pack.fixtures == "rules" or Path(pack.fixtures).is_absolute()})
FILES = sorted(path for folder in FOLDERS for path in folder.glob("*.x12"))


def parse_name(path: Path) -> tuple[str, str, str]:
    rule_id, outcome, kind, _ = path.name.rsplit(".", 3)
    return rule_id, outcome.split("-")[0], kind.upper()


def scrub(path: Path, profile=None) -> list[ScrubbedClaim]:
    """Scrub a fixture as an intake would: each interchange recorded as sent, in a new ledger.

    A fixture of one interchange is unaffected (a submission never meets itself in
    the ledger); the history fixtures send a claim, then a later interchange.
    """
    profile = profile or load_profile()
    with tempfile.TemporaryDirectory() as scratch, \
            open_store(Path(scratch) / "ledger.sqlite") as ledger:
        return [e for e in scrub_source(path, profile=profile, ledger=ledger,
                                        record=True)
                if isinstance(e, ScrubbedClaim)]


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_fixture(path):
    rule_id, outcome, kind = parse_name(path)
    rule = get_rule(rule_id)
    assert rule is not None, f"{path.name} names no registered rule"
    claims = scrub(path)
    assert claims and all(c.record.kind == kind for c in claims)
    findings = [f for c in claims for f in c.findings]
    if outcome == "fail":
        mine = [f for f in findings if f.rule == rule_id]
        assert mine, f"{rule_id} did not fire on {path.name}"
        expected = load_profile().severity(rule, kind)
        for finding in mine:
            # the documentation rules may cap a hit (non-implanted device -> warn)
            assert finding.severity in (expected, Severity.WARN)
            assert finding.status == rule.status
            assert finding.message and finding.fix and finding.segment_text
            assert finding.location is not None
    else:
        loud = [(f.rule, f.severity.value) for f in findings if f.severity is not Severity.INFO]
        assert loud == [], f"{path.name} should draw no reject or warning"
        assert not any(c.rejected for c in claims)


def _builder():
    spec = importlib.util.spec_from_file_location("rules_fixture_build", FIXTURES / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fixtures_match_their_builder():
    rendered = _builder().render()
    assert sorted(rendered) == sorted(p.name for p in FIXTURES.glob("*.x12"))
    for name, text in rendered.items():
        assert (FIXTURES / name).read_text(encoding="ascii") == text, name


@pytest.mark.slow
def test_fixtures_are_valid_for_pyx12():
    pytest.importorskip("pyx12")
    import io
    import logging

    import pyx12.params
    import pyx12.x12n_document

    logging.getLogger("pyx12").addHandler(logging.NullHandler())
    logging.getLogger("pyx12").propagate = False
    from scrubber.ig import check

    ig_invalid = _builder().IG_INVALID
    for path in FILES:
        valid = pyx12.x12n_document.x12n_document(
            pyx12.params.params(), str(path), io.StringIO(), None)
        # the few fail fixtures a payer's 999 stops first: pyx12 and our IG check say so
        expected = path.name.removesuffix(".x12") not in ig_invalid
        assert valid is expected and check(path).accepted is expected, path.name


def _findings(name):
    return [f for c in scrub(FIXTURES / name) for f in c.findings]


def test_conflict_across_transaction_sets_lands_on_the_96523_claim_and_names_the_other():
    claims = scrub(FIXTURES / "96523-sole-service.fail.837p.x12")
    by_id = {c.claim.id: c for c in claims}
    assert by_id["SOLE-A"].rejected and not by_id["SOLE-B"].rejected
    assert by_id["SOLE-A"].record.transaction.control_number != \
        by_id["SOLE-B"].record.transaction.control_number
    (finding,) = by_id["SOLE-A"].findings
    assert "SOLE-B" in finding.message and finding.related[0].startswith("SOLE-B ")
    assert "Modifier 59" in finding.message  # the bypass modifier does not lift it
    assert finding.status == ("A8", "454") and finding.element == "SV101"


def test_specific_conflict_replaces_the_generic_one():
    rules = {f.rule for f in _findings("96523-blood-draw.fail.837p.x12")}
    assert rules == {"96523-blood-draw"}
    assert "blood draw" in _findings("96523-blood-draw.fail.837p.x12")[0].fix


def test_facility_claims_warn_and_stay_accepted():
    claims = scrub(FIXTURES / "96523-sole-service.fail.837i.x12")
    (claim,) = claims
    assert not claim.rejected
    assert [f.severity for f in claim.findings] == [Severity.WARN]
    assert "packaged" in claim.findings[0].message


def test_picc_is_a_warning_saying_96523_is_for_implanted_devices():
    (finding,) = _findings("96523-device.fail-picc.837p.x12")
    assert finding.severity is Severity.WARN and "implanted" in finding.message


def test_attachment_turns_documentation_rules_into_info():
    findings = _findings("96523-device.pass-pwk.837p.x12")
    assert {f.rule for f in findings} == {"96523-device", "96523-solution", "96523-amount"}
    assert all(f.severity is Severity.INFO and "PWK" in f.message for f in findings)


def test_second_irrigation_of_the_day_is_flagged_once_on_the_later_claim():
    claims = scrub(FIXTURES / "96523-units.fail-twice.837p.x12")
    assert [c.claim.id for c in claims if c.rejected] == ["UNIT-C"]
