"""The ncci-ptp and mue rules through the engine, each edit both ways, and the 96523 overlap."""

from __future__ import annotations

import importlib.util
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from scrubbing import scrub_source
from test_rules_engine import FakeLedger, FakeLine, alex_identity

from scrubber.ncci import load_tables
from scrubber.rules.engine import Engine
from scrubber.rules.findings import ScrubbedClaim, Severity
from scrubber.rules.packs.ncci import BYPASS_MODIFIERS
from scrubber.rules.profile import CodeList, load_profile

ROOT = Path(__file__).resolve().parent.parent


def _module(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


rules_build = _module("rules_fixture_build", ROOT / "fixtures" / "rules" / "build.py")
build = _module("ncci_fixture_build", ROOT / "fixtures" / "ncci" / "build.py")
claim, line, ptp, mue = rules_build.claim, rules_build.line, build.ptp, build.mue
PLAIN = build.PLAIN
PROFILE = load_profile()
DAY = date(2026, 11, 2)


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture
def tables(tmp_path):
    """Tables of the given rows, per kind: tables(ptp=[...], mue=[...], ptp_837i=[...])."""

    def make(ptp=(), mue=(), ptp_837i=None):
        files = {}
        for name, rows, headings in (("ptp.txt", ptp, build.PTP_HEADINGS),
                                     ("hop.txt", ptp_837i, build.PTP_HEADINGS),
                                     ("mue.txt", mue, build.MUE_HEADINGS)):
            if rows:
                (tmp_path / name).write_text(build.tab_text(headings, rows))
                files[name] = [tmp_path / name]
        ptp_files = files.get("ptp.txt")
        if ptp_837i is not None:
            ptp_files = {"837P": files.get("ptp.txt", []), "837I": files.get("hop.txt", [])}
        return load_tables(ptp=ptp_files, mue=files.get("mue.txt"))

    return make


def text(*transactions, kind="837p"):
    return rules_build.interchange(kind, [list(t) for t in transactions]).encode()


def scrubbed(data: bytes, ncci, ledger=None, profile=PROFILE) -> list[ScrubbedClaim]:
    return [e for e in scrub_source(data, profile=profile, ledger=ledger, ncci=ncci)
            if isinstance(e, ScrubbedClaim)]


def findings(data: bytes, ncci, rule=None, **kwargs):
    return [(c.claim.id, f) for c in scrubbed(data, ncci, **kwargs) for f in c.findings
            if rule is None or f.rule == rule]


def pair(first, second, *, kind="837p", **claim_kwargs):
    """One claim with two lines on 2026-11-02."""
    return text([claim("P-1", [first, second], **{**PLAIN, **claim_kwargs})], kind=kind)


# -- ncci-ptp ---------------------------------------------------------------------------------

def test_indicator_0_rejects_the_column_2_line_and_says_why(tables):
    ncci = tables(ptp=[ptp("99213", "36415", 0)])
    (claim_id, finding), = findings(pair(line("99213", charge="100"), line("36415")), ncci)
    assert claim_id == "P-1" and finding.rule == "ncci-ptp"
    assert finding.severity is Severity.REJECT and finding.status == ("A8", "454")
    assert finding.line_number == 2 and finding.element == "SV101"
    assert "36415*60" in finding.segment_text
    for words in ("99213/36415", "2026-01-01", "modifier indicator 0", "2026-11-02",
                  build.WHY):
        assert words in finding.message
    assert "Remove the 36415 line" in finding.fix


def test_indicator_0_is_not_lifted_by_a_modifier(tables):
    ncci = tables(ptp=[ptp("99213", "36415", 0)])
    assert findings(pair(line("99213", mods=("25",)), line("36415", mods=("59",))), ncci,
                    "ncci-ptp")


def test_column_order_matters(tables):
    ncci = tables(ptp=[ptp("36415", "99213", 0)])
    (_, finding), = findings(pair(line("99213", charge="100"), line("36415")), ncci)
    assert finding.line_number == 1  # 99213 is column 2 here


@pytest.mark.parametrize("modifier", sorted(BYPASS_MODIFIERS))
def test_indicator_1_is_lifted_by_any_ncci_modifier_on_either_line(tables, modifier):
    ncci = tables(ptp=[ptp("20610", "20550", 1)])
    assert findings(pair(line("20610"), line("20550", mods=(modifier,))), ncci) == []
    assert findings(pair(line("20610", mods=(modifier,)), line("20550")), ncci) == []


@pytest.mark.parametrize("modifiers", [(), ("26",), ("GT", "KX")])
def test_indicator_1_without_an_ncci_modifier_rejects(tables, modifiers):
    ncci = tables(ptp=[ptp("20610", "20550", 1)])
    (_, finding), = findings(pair(line("20610"), line("20550", mods=modifiers)), ncci)
    assert "modifier indicator 1" in finding.message and "neither line" in finding.message
    assert "59, XE, XS, XP, XU" in finding.fix


def test_a_profile_list_replaces_the_bypass_modifiers(tables):
    ncci = tables(ptp=[ptp("20610", "20550", 1)])
    profile = replace(PROFILE, lists=PROFILE.lists + (("ncci-bypass-modifiers",
                                                       CodeList(("XS",))),))
    data_59 = pair(line("20610"), line("20550", mods=("59",)))
    assert findings(data_59, ncci) == [] and findings(data_59, ncci, profile=profile)
    assert findings(pair(line("20610"), line("20550", mods=("XS",))), ncci,
                    profile=profile) == []


def profile_file(folder, body: str):
    """A payer profile file holding ``body``, loaded as --profile would load it."""
    path = folder / "payer.xml"
    path.write_text(f'<?xml version="1.0"?><profile name="p">{body}</profile>')
    return load_profile(path)


def test_a_profile_file_may_carry_the_bypass_modifiers(tables, tmp_path):
    profile = profile_file(tmp_path, '<lists><list name="ncci-bypass-modifiers">'
                                      "<term>XS</term></list></lists>")
    ncci = tables(ptp=[ptp("20610", "20550", 1)])
    assert findings(pair(line("20610"), line("20550", mods=("59",))), ncci, profile=profile)
    assert findings(pair(line("20610"), line("20550", mods=("XS",))), ncci,
                    profile=profile) == []


def test_indicator_9_is_no_edit(tables):
    ncci = tables(ptp=[ptp("11042", "97597", 9)])
    assert findings(pair(line("11042"), line("97597")), ncci) == []


@pytest.mark.parametrize("effective, deletion, day, fires", [
    ("20250101", "20261102", "20261101", True),  # the day before deletion
    ("20250101", "20261102", "20261102", False),  # deleted that day
    ("20250101", "20261001", "20261102", False),  # deleted before
    ("20261102", "*", "20261102", True),  # in force from that day
    ("20261103", "*", "20261102", False),  # not yet in force
    ("20270101", "*", "20261102", False),  # future-dated edit
])
def test_only_edits_in_force_on_the_date_count(tables, effective, deletion, day, fires):
    ncci = tables(ptp=[ptp("93000", "93005", 0, effective=effective, deletion=deletion)])
    data = pair(line("93000", day=day), line("93005", day=day))
    assert bool(findings(data, ncci)) is fires


def test_pair_across_claims_and_transaction_sets_rejects_the_column_2_claim(tables):
    ncci = tables(ptp=[ptp("99213", "36415", 0)])
    data = text([claim("A", [line("99213", charge="100")], **PLAIN)],
                [claim("B", [line("36415")], **PLAIN)])
    claims = {c.claim.id: c for c in scrubbed(data, ncci)}
    assert not claims["A"].rejected and claims["B"].rejected
    (finding,) = claims["B"].findings
    assert "99213 on claim A line 1" in finding.message
    assert finding.related == ("A (submission EXAMPLESUBM:000009652)",)


def test_other_patient_or_other_day_is_no_pair(tables):
    ncci = tables(ptp=[ptp("99213", "36415", 0)])
    other_patient = text([claim("A", [line("99213")], **PLAIN),
                          claim("B", [line("36415")], patient=rules_build.SAM, **PLAIN)])
    other_day = pair(line("99213"), line("36415", day="20261103"))
    assert findings(other_patient, ncci) == [] and findings(other_day, ncci) == []


def test_void_claim_draws_nothing(tables):
    ncci = tables(ptp=[ptp("99213", "36415", 0)], mue=[mue("36415", 1, 1)])
    assert findings(pair(line("99213"), line("36415", units="3"), freq="8"), ncci) == []


def test_without_tables_the_rules_find_nothing():
    data = pair(line("99213"), line("36415", units="9"))
    assert findings(data, None) == []
    assert Engine(PROFILE).resources.get("ncci") is None


def test_837i_uses_the_outpatient_tables(tables):
    ncci = tables(ptp=[ptp("99213", "36415", 0)], ptp_837i=[ptp("96365", "96360", 0)])
    outpatient = pair(line("96365", revenue="0260"), line("96360", revenue="0260"), kind="837i")
    practitioner_pair = pair(line("99213", revenue="0510"), line("36415", revenue="0300"),
                             kind="837i")
    (_, finding), = findings(outpatient, ncci)
    assert finding.element == "SV202" and "96365/96360" in finding.message
    assert findings(practitioner_pair, ncci) == []
    assert findings(pair(line("99213"), line("36415")), ncci)  # and 837P still has its own


def ledger_with(*lines):
    """Claims already accepted for ALEX, the patient of the builder's claims."""
    return FakeLedger(alex_identity(), [FakeLine(*x) for x in lines])


def test_column_1_in_the_ledger_rejects_the_column_2_line_in_hand(tables):
    ncci = tables(ptp=[ptp("99213", "36415", 0)])
    ledger = ledger_with(("EM-1", 1, "99213", (), Decimal(1), DAY, "OTHER:000000001"))
    (_, finding), = findings(text([claim("B", [line("36415")], **PLAIN)]), ncci, ledger=ledger)
    assert finding.severity is Severity.REJECT and "already accepted" in finding.message
    assert finding.related == ("EM-1 (submission OTHER:000000001)",)


def test_column_2_in_the_ledger_warns_on_the_column_1_line_in_hand(tables):
    ncci = tables(ptp=[ptp("99213", "36415", 0)])
    ledger = ledger_with(("LAB-1", 2, "36415", (), Decimal(1), DAY, "OTHER:000000001"))
    claims = scrubbed(text([claim("A", [line("99213")], **PLAIN)]), ncci, ledger=ledger)
    (finding,) = claims[0].findings
    assert not claims[0].rejected and finding.severity is Severity.WARN
    assert "already sent will be denied or recouped" in finding.message
    assert "LAB-1" in finding.message and "remove its 36415 line" in finding.fix


# -- mue --------------------------------------------------------------------------------------

@pytest.mark.parametrize("units, fires", [("2", False), ("3", True), ("2.5", True)])
def test_line_edit_compares_each_line(tables, units, fires):
    ncci = tables(mue=[mue("20610", 2, 1)])
    data = pair(line("20610", units=units, mods=("RT",)), line("20610", units="2", mods=("LT",)))
    found = findings(data, ncci, "mue")
    assert [f.line_number for _, f in found] == ([1] if fires else [])
    if fires:
        finding = found[0][1]
        assert finding.status == ("A7", "476") and finding.element == "SV104"
        assert f"billed with {units} units on this line" in finding.message
        assert "MUE is 2 units per line" in finding.message and "indicator 1" in finding.message


@pytest.mark.parametrize("indicator", [2, 3])
@pytest.mark.parametrize("second, fires", [("4", False), ("5", True)])
def test_date_of_service_edit_sums_the_day_across_claims(tables, indicator, second, fires):
    ncci = tables(mue=[mue("J1100", 10, indicator)])
    data = text([claim("A", [line("J1100", units="6")], **PLAIN)],
                [claim("B", [line("J1100", units=second), line("J1100", units="0",
                                                               day="20261103")], **PLAIN)])
    found = findings(data, ncci, "mue")
    assert sorted(c for c, _ in found) == (["A", "B"] if fires else [])
    for _, finding in found:
        assert f"billed with {6 + int(second)} units for this patient on 2026-11-02" in \
            finding.message and f"indicator {indicator}" in finding.message
        assert "across all claims" in finding.fix


def test_date_of_service_edit_counts_the_ledger(tables):
    ncci = tables(mue=[mue("J1100", 10, 2)])
    ledger = ledger_with(("INJ-1", 1, "J1100", (), Decimal(8), DAY, "OTHER:000000001"))
    data = text([claim("A", [line("J1100", units="3")], **PLAIN)])
    (_, finding), = findings(data, ncci, "mue", ledger=ledger)
    assert "11 units" in finding.message and finding.related == (
        "INJ-1 (submission OTHER:000000001)",)
    assert findings(text([claim("A", [line("J1100", units="2")], **PLAIN)]), ncci,
                    ledger=ledger) == []


def test_mue_on_837i_points_at_sv205(tables):
    ncci = tables(mue=[mue("96365", 1, 1)])
    (_, finding), = findings(pair(line("96365", units="2"), line("96366"), kind="837i"), ncci)
    assert finding.element == "SV205" and finding.rule == "mue"


def test_a_date_range_line_gets_only_the_line_edit(tables):
    ncci = tables(mue=[mue("97110", 4, 3)])
    ranged = text([claim("A", [line("97110", units="8", dtp=("RD8", "20261102-20261103"))],
                         **PLAIN)])
    assert findings(ranged, ncci) == []


# -- one finding per reason -----------------------------------------------------------------

def test_96523_and_an_ncci_pair_on_the_same_line_make_one_finding_naming_both(tables):
    ncci = tables(ptp=[ptp("99213", "96523", 0)])
    data = text([claim("S-1", [line("96523"), line("99213", charge="100")])])
    (claim_,) = scrubbed(data, ncci)
    on_96523 = [f for f in claim_.findings if f.line_number == 1 and f.status == ("A8", "454")]
    (finding,) = on_96523
    assert finding.rule == "96523-sole-service" and finding.severity is Severity.REJECT
    assert "ncci-ptp: CMS NCCI procedure-to-procedure" in finding.source
    assert "Also ncci-ptp: " in finding.message and "99213/96523" in finding.message
    assert not any(f.rule == "ncci-ptp" for f in claim_.findings)


def test_the_merged_finding_keeps_the_stronger_severity(tables):
    ncci = tables(ptp=[ptp("99213", "96523", 0)], ptp_837i=[ptp("99213", "96523", 0)])
    data = text([claim("S-2", [line("96523"), line("99213", charge="100", revenue="0510")])],
                kind="837i")
    (claim_,) = scrubbed(data, ncci)
    (finding,) = [f for f in claim_.findings if f.line_number == 1]
    assert finding.rule == "96523-sole-service" and finding.severity is Severity.REJECT
    assert claim_.rejected  # the facility warning alone would have let it through


def test_96523_units_and_the_mue_merge_on_the_later_line(tables):
    ncci = tables(mue=[mue("96523", 1, 2)])
    data = text([claim("U-1", [line("96523"), line("96523")])])
    (claim_,) = scrubbed(data, ncci)
    by_line = {}
    for f in claim_.findings:
        if f.status == ("A7", "476"):
            by_line.setdefault(f.line_number, []).append(f.rule)
    # the first line: only the MUE (a date of service edit denies every line of the day);
    # the second: 96523-units, which names the MUE too
    assert by_line == {1: ["mue"], 2: ["96523-units"]}
    (second,) = [f for f in claim_.findings if f.rule == "96523-units"]
    assert "Also mue: " in second.message and "mue: CMS NCCI" in second.source


def test_different_reasons_on_the_same_line_stay_apart(tables):
    ncci = tables(mue=[mue("96523", 1, 1)])
    data = text([claim("U-2", [line("96523", units="2", charge="120")],
                       notes=("FLUSHED WITH 10ML NS",))])
    rules = sorted(f.rule for c in scrubbed(data, ncci) for f in c.findings)
    assert rules == ["96523-device", "96523-units"]  # the MUE folds into 96523-units only
    merged = [f for c in scrubbed(data, ncci) for f in c.findings if f.rule == "96523-units"]
    assert "Also mue" in merged[0].message


def test_profile_can_turn_the_rules_off(tables, tmp_path):
    profile = profile_file(tmp_path, '<rules><rule id="ncci-ptp" enabled="false"/>'
                                      '<rule id="mue" severity="warn"/></rules>')
    ncci = tables(ptp=[ptp("99213", "36415", 0)], mue=[mue("36415", 1, 1)])
    found = findings(pair(line("99213"), line("36415", units="2")), ncci, profile=profile)
    assert [(f.rule, f.severity) for _, f in found] == [("mue", Severity.WARN)]
