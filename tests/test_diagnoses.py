"""The ICD-10-CM tabular as CMS publishes it (XML, in its zip) and the diagnosis conventions
pack beyond its fixtures (tests/test_data_pack_fixtures.py scrubs those with the bundled
tabular)."""

from __future__ import annotations

import zipfile
from datetime import date
from pathlib import Path

import pytest
from rule_fixtures import rules_builder
from scrubbing import scrub_source

from scrubber.data import recognize
from scrubber.diagnoses import Ref, refs_in
from scrubber.rules.engine import Engine
from scrubber.rules.findings import ScrubbedClaim
from scrubber.rules.packs import diagnoses as pack
from scrubber.rules.profile import load_profile
from scrubber.rules.resources import Resources, load_resources

build = rules_builder("diagnoses")


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def _findings(tmp_path: Path, text: str, resources: Resources | None = None):
    path = tmp_path / "claims.x12"
    path.write_text(text)
    engine = Engine(load_profile(), resources=resources or Resources())
    return [(f.rule, f.severity.value) for e in scrub_source(path, engine=engine)
            if isinstance(e, ScrubbedClaim) for f in e.findings]


def test_note_references_read_codes_ranges_and_with():
    assert refs_in("diabetes mellitus (E08-E13 with .42); gonococcal (A54.81)") == (
        Ref("E08", "E13", "42"), Ref("A5481", "A5481"))
    (family,) = refs_in("hypothyroidism, acquired (E00-E03.-)")
    assert family.matches("E039") and family.matches("E00") and not family.matches("E04")
    (narrow,) = refs_in("(E08-E13 with .42)")
    assert narrow.matches("E1142") and not narrow.matches("E1140") and not narrow.matches("E1442")
    assert refs_in("(in)") == () and refs_in("Alzheimer's (G30.-)") == (Ref("G30", "G30"),)


def test_cms_tabular_zip_as_downloaded_is_told_and_its_notes_judge(tmp_path):
    zipped = tmp_path / "icd10cm-table-index-2026.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("icd10cm-tabular-2026.xml", build.tabular_xml())
        archive.writestr("icd10cm-index-2026.xml", "<ICD10CM.index/>")
        archive.writestr("icd10cm-tabular-2026.pdf", b"%PDF-1.4 synthetic\n")
    release = recognize(zipped)
    assert release.option == "icd10cm-tabular"
    assert (release.effective_from, release.effective_to) == (date(2025, 10, 1),
                                                              date(2026, 9, 30))
    # the synthetic file says E11 excludes I10; the real tabular does not
    text = build.rules.interchange("837p", [[build.visit("SYN-A", "E119", "I10")]])
    resources = load_resources({"icd10cm-tabular": [str(zipped)]})
    assert ("dx-excludes1", "warn") in _findings(tmp_path, text, resources)
    assert "dx-excludes1" not in dict(_findings(tmp_path, text))
    assert resources.get("icd10cm-tabular").label() == "ICD-10-CM FY2026 tabular"


def test_a_code_first_code_that_is_no_manifestation_is_only_a_warning_first(tmp_path):
    # E08 (diabetes due to an underlying condition): "code first the underlying condition"
    text = build.rules.interchange("837p", [[build.visit("SEQ-A", "E0800", "I10")]])
    assert ("dx-manifestation-first", "warn") in _findings(tmp_path, text)


def test_a_conditional_code_first_note_is_not_required(tmp_path):
    # N18.6: "code first any associated ..." applies only when such a condition exists
    alone = build.rules.interchange("837p", [[build.visit("CKD-A", "N186")]])
    assert not [r for r, _ in _findings(tmp_path, alone) if r.startswith("dx-")]
    # ... and when it is on the claim, after N18.6, the order is wrong
    after = build.rules.interchange("837p", [[build.visit("CKD-B", "N186", "E1122")]])
    assert ("dx-manifestation-first", "warn") in _findings(tmp_path, after)


def test_an_external_cause_after_the_injury_passes_on_an_inpatient_bill(
        tmp_path):
    text = build.inpatient([build.stay("EXT-C", "S52501A", "W010XXA")])
    assert not [r for r, _ in _findings(tmp_path, text) if r.startswith(("dx-", "mce-"))]


def test_the_code_editor_judges_inpatient_bills_only(tmp_path):
    outpatient = build.rules.interchange("837i", [[build.stay("OUT-A", "Z6841")]])
    assert not [r for r, _ in _findings(tmp_path, outpatient) if r.startswith("mce-")]
    inpatient = build.inpatient([build.stay("IN-A", "Z6841")])
    assert ("mce-unacceptable-principal", "reject") in _findings(tmp_path, inpatient)


def test_without_a_tabular_the_run_says_so_and_judges_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(pack, "bundled", lambda: None)
    path = tmp_path / "claims.x12"
    path.write_text(build.rules.interchange("837p", [[build.visit("NO-A", "G63", "E1140"),
                                                      build.visit("NO-B", "E119", "E0800")]]))
    claims = [e for e in scrub_source(path, engine=Engine(load_profile()))
              if isinstance(e, ScrubbedClaim)]
    assert claims and not [f for c in claims for f in c.findings
                           if f.rule in ("dx-excludes1", "dx-manifestation-first",
                                         "dx-etiology-missing")]
    assert {n.key for c in claims for n in c.notices} >= {"no-icd10cm-tabular"}
