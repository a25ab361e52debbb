"""Code sets: CMS layouts read, releases dated, verdicts by date of service, the index cached.

The fiscal-year files are written here in CMS's "code descriptions in tabular
order" layout (synthetic codes and releases), so the date-aware verdicts can
be checked across two releases without CMS's files.
"""

from __future__ import annotations

import importlib.util
import pickle
import zipfile
from datetime import date
from pathlib import Path

import pytest
from scrubbing import scrub_source

from scrubber.codesets import (
    NOT_BILLABLE,
    NOT_IN_FORCE,
    OK,
    UNKNOWN,
    CodeSetError,
    bundled,
    fiscal_year,
    load_codesets,
)
from scrubber.codesets.files import release_named
from scrubber.rules.findings import ScrubbedClaim
from scrubber.rules.profile import load_profile
from scrubber.rules.resources import ResourceError, Resources, load_resources

_spec = importlib.util.spec_from_file_location(
    "rules_fixture_build", Path(__file__).resolve().parent.parent / "fixtures" / "rules" /
    "build.py")
rules = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rules)

BASE = [("A00", 0), ("A000", 1), ("A001", 1), ("B20", 1), ("S72001", 0), ("S72001A", 1)]


def order_file(path, rows):
    """CMS's tabular order layout: order number, code padded to 7, 0/1, short, long."""
    text = "".join(f"{n:05d} {code:<7} {flag} {'SYNTHETIC ' + code:<60} Synthetic {code}\n"
                   for n, (code, flag) in enumerate(rows, 1))
    path.write_text(text, encoding="ascii")
    return path


@pytest.fixture
def two_years(tmp_path):
    """FY2023 has Q8881 (deleted after it); FY2024 adds Q8882 and splits A001 into two."""
    fy23 = order_file(tmp_path / "icd10cm_order_2023.txt", BASE + [("Q8881", 1)])
    fy24 = order_file(tmp_path / "icd10cm-order-2024.txt",
                      [r for r in BASE if r[0] != "A001"]
                      + [("A001", 0), ("A0010", 1), ("A0011", 1), ("Q8882", 1)])
    return load_codesets(icd10cm=[fy23, fy24], cache_dir=tmp_path / "cache")


def test_fiscal_years_and_release_names():
    assert fiscal_year(date(2026, 9, 30)) == 2026 and fiscal_year(date(2026, 10, 1)) == 2027
    fy = release_named("icd10cm_order_2026.txt", "x")
    assert (fy.name, fy.start, fy.end) == ("ICD-10-CM FY2026", date(2025, 10, 1),
                                          date(2026, 9, 30))
    april = release_named("icd10cm-order-April-2025.txt", "x")
    assert (april.start, april.end) == (date(2025, 4, 1), date(2025, 9, 30))
    assert release_named("codes.txt", "x") is None


@pytest.mark.parametrize("day, code, status", [
    (date(2023, 5, 1), "Q8881", OK),  # FY2023 has it
    (date(2024, 5, 1), "Q8881", NOT_IN_FORCE),  # deleted on 2023-10-01
    (date(2023, 5, 1), "Q8882", NOT_IN_FORCE),  # not added until FY2024
    (date(2024, 5, 1), "Q8882", OK),
    (date(2023, 9, 30), "A001", OK),  # billable in FY2023 ...
    (date(2023, 10, 1), "A001", NOT_BILLABLE),  # ... a header from FY2024
    (date(2023, 10, 1), "A0011", OK),
    (date(2023, 5, 1), "A0011", NOT_IN_FORCE),
    (date(2024, 5, 1), "Q9999", UNKNOWN),
    (date(2024, 5, 1), "S72001", NOT_BILLABLE),
])
def test_verdicts_follow_the_release_of_the_date(two_years, day, code, status):
    verdict = two_years.diagnosis(code, day)
    assert verdict.status == status and verdict.covered
    assert verdict.release.name == f"ICD-10-CM FY{fiscal_year(day)}"


def test_verdicts_name_what_the_biller_needs(two_years):
    header = two_years.diagnosis("A001", date(2024, 5, 1))
    assert header.children == ("A00.10", "A00.11")
    assert two_years.diagnosis("A00", date(2024, 5, 1)).children == ("A00.0", "A00.1-")
    later = two_years.diagnosis("Q8882", date(2023, 5, 1))
    assert [r.name for r in later.elsewhere] == ["ICD-10-CM FY2024"]


def test_a_date_no_release_covers_is_judged_by_the_nearest(two_years):
    before, covered = two_years.release_for(date(2022, 3, 1))
    assert before.name == "ICD-10-CM FY2023" and not covered
    after, covered = two_years.release_for(date(2026, 11, 2))
    assert after.name == "ICD-10-CM April 1, 2026 update" and not covered
    assert not two_years.diagnosis("Q9999", date(2026, 11, 2)).covered


def test_an_april_update_wins_over_its_fiscal_year(tmp_path):
    fy = order_file(tmp_path / "icd10cm_order_2025.txt", BASE)
    april = order_file(tmp_path / "icd10cm_order_April_2025.txt", BASE + [("Q8883", 1)])
    sets = load_codesets(icd10cm=[april, fy], cache_dir=tmp_path)
    assert sets.diagnosis("Q8883", date(2025, 3, 31)).status == NOT_IN_FORCE
    assert sets.diagnosis("Q8883", date(2025, 4, 1)).status == OK


def test_the_bundled_release_checks_out_of_the_box():
    sets = bundled()
    assert sets is not None and sets is bundled()  # once per process
    (release,) = sets.releases
    assert (release.start, release.end) == (date(2026, 4, 1), date(2026, 9, 30))
    day = date(2026, 5, 4)
    assert sets.diagnosis("E1165", day).status == OK
    e116 = sets.diagnosis("E116", day)
    assert e116.status == NOT_BILLABLE
    assert e116.children == ("E11.61-", "E11.62-", "E11.63-", "E11.64-", "E11.65", "E11.69")
    assert sets.diagnosis("E1199", day).status == UNKNOWN
    # the fixtures' "deleted" code must really be in no release but the synthetic one
    assert sets.diagnosis("R6899", day).status == UNKNOWN


def test_the_index_is_built_once_and_keyed_by_content(tmp_path):
    path = order_file(tmp_path / "icd10cm_order_2023.txt", BASE)
    first = load_codesets(icd10cm=[path], cache_dir=tmp_path / "c")
    again = load_codesets(icd10cm=[path], cache_dir=tmp_path / "c")
    assert first.built and not again.built and first.path == again.path
    order_file(path, BASE + [("Q8881", 1)])
    changed = load_codesets(icd10cm=[path], cache_dir=tmp_path / "c")
    assert changed.built and changed.path != first.path
    assert changed.diagnosis("Q8881", date(2023, 5, 1)).status == OK
    copy = pickle.loads(pickle.dumps(changed))  # worker processes reopen the same file
    assert copy.path == changed.path and copy.diagnosis("Q8881", date(2023, 5, 1)).status == OK


def test_a_zip_as_cms_publishes_it(tmp_path):
    order = order_file(tmp_path / "icd10cm_order_2023.txt", BASE + [("Q8881", 1)])
    archive = tmp_path / "2023-code-descriptions-tabular-order.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(order, "icd10cm_order_2023.txt")
        zf.writestr("icd10cm_order_addenda_2023.pdf", b"%PDF")
    sets = load_codesets(icd10cm=[archive], cache_dir=tmp_path)
    assert sets.diagnosis("Q8881", date(2023, 5, 1)).status == OK


@pytest.mark.parametrize("name, text, words", [
    ("icd10cm_order_2023.txt", "", "holds no codes"),
    ("icd10cm_order_2023.txt", "A000    Cholera due to Vibrio cholerae\n", "codes file"),
    ("icd10cm_order_2023.txt", "00001 A00     7 Cholera\n", "line 1"),
    ("tabular.txt", "00001 A00     0 Cholera\n", "fiscal year"),
])
def test_files_that_do_not_fit_are_refused_with_the_reason(tmp_path, name, text, words):
    path = tmp_path / name
    path.write_text(text, encoding="ascii")
    with pytest.raises(CodeSetError, match=words):
        load_codesets(icd10cm=[path], cache_dir=tmp_path)


def test_the_resource_hook_loads_the_options_and_names_bad_files(tmp_path):
    path = order_file(tmp_path / "icd10cm_order_2023.txt", BASE)
    resources = load_resources({"icd10cm": [str(path)]})
    sets = resources.get("codesets")
    assert [r.name for r in sets.releases] == ["ICD-10-CM April 1, 2026 update",
                                               "ICD-10-CM FY2023"]
    assert load_resources({}).get("codesets") is None  # the rules fall back to bundled()
    for bad, words in ((tmp_path / "missing.txt", "no such file"), (tmp_path, "folder")):
        with pytest.raises(ResourceError, match=words):
            load_resources({"icd10cm": [str(bad)]})


def hcpcs_record(code, record="3", added="", effective="", terminated=""):
    return (f"{code:<5}00100{record}{'SYNTHETIC':<80}{'SYNTHETIC':<28}".ljust(268)
            + f"{added:<8}{effective:<8}{terminated:<8}N").ljust(320) + "\n"


def test_hcpcs_dates_and_quarters(tmp_path):
    path = tmp_path / "HCPC2025_APR_ANWEB.txt"
    path.write_text(hcpcs_record("J1100", added="19860101")
                    + hcpcs_record("J1100", record="4")
                    + hcpcs_record("G0999", added="20200101", terminated="20250331")
                    + hcpcs_record("G9999", added="20250501"), encoding="ascii")
    sets = load_codesets(hcpcs=[path], cache_dir=tmp_path)
    assert sets.hcpcs_windows == ((date(2025, 4, 1), date(2025, 6, 30)),)
    day = date(2025, 4, 15)
    assert sets.hcpcs("J1100", day).status == OK
    ended = sets.hcpcs("G0999", day)
    assert ended.status == NOT_IN_FORCE and ended.terminated == date(2025, 3, 31)
    assert sets.hcpcs("G0999", date(2025, 3, 31)).status == OK
    assert sets.hcpcs("G9999", day).status == NOT_IN_FORCE
    assert sets.hcpcs("A9999", day).covered and not sets.hcpcs("A9999", date(2025, 8, 1)).covered
    assert sets.cpt_known("99213") is None  # no CPT list: form only


def test_an_hcpcs_file_in_another_layout_is_refused(tmp_path):
    path = tmp_path / "HCPC2025_APR_ANWEB.txt"
    path.write_text("J1100    3 too short\n", encoding="ascii")
    with pytest.raises(CodeSetError, match="layout"):
        load_codesets(hcpcs=[path], cache_dir=tmp_path)


def dx_findings(sets, kind, dx, lines, period=None):
    """The dx-* findings on one claim: ``lines`` are (procedure, date, SV107 pointers)."""
    claim = rules.claim("DATES", [rules.line(code, day=day, pointers=pointers, charge="100",
                                             revenue="0510")
                                  for code, day, pointers in lines],
                        notes=(), dx=dx, period=period)
    text = rules.interchange(kind, [[claim]]).encode("ascii")
    return [f for event in scrub_source(text, profile=load_profile(),
                                        resources=Resources.of(codesets=sets))
            if isinstance(event, ScrubbedClaim) for f in event.findings
            if f.rule.startswith("dx-")]


def test_an_837p_diagnosis_is_judged_on_the_dates_of_the_lines_pointing_at_it(two_years):
    # A001 is billable in FY2023 and a header in FY2024: only the line of 2023-10-02
    # points at it, so the claim's other date (2023-09-29) does not save it
    findings = dx_findings(two_years, "837p", ("B20", "A001"),
                           [("99213", "20230929", "1"), ("99214", "20231002", "2")])
    assert [(f.rule, f.severity.value) for f in findings] == [("dx-not-billable", "reject")]
    assert "2023-10-02" in findings[0].message and "A00.10, A00.11" in findings[0].message
    assert dx_findings(two_years, "837p", ("B20", "A001"),
                       [("99213", "20230929", "1"), ("99214", "20230929", "2")]) == []


def test_an_837i_is_judged_on_the_statement_period_through_date(two_years):
    spanning = dx_findings(two_years, "837i", ("A001",), [("99213", "20230929", "1")],
                           period="20230929-20231002")
    assert [f.rule for f in spanning] == ["dx-not-billable"]
    assert dx_findings(two_years, "837i", ("A001",), [("99213", "20230929", "1")],
                       period="20230928-20230929") == []


def test_a_payer_profile_turns_the_code_checks_off_or_down(tmp_path):
    path = tmp_path / "payer.xml"
    path.write_text("""<?xml version="1.0"?>
<profile name="payer-x">
  <rules>
    <rule id="dx-not-billable" severity="warn"/>
    <rule id="dx-unknown" enabled="false"/>
  </rules>
</profile>""", encoding="utf-8")
    profile = load_profile(path)
    fixtures = Path(__file__).resolve().parent.parent / "fixtures" / "codesets"

    def found(name):
        return [(f.rule, f.severity.value)
                for e in scrub_source(fixtures / name, profile=profile)
                if isinstance(e, ScrubbedClaim) for f in e.findings]

    assert found("dx-not-billable.fail.837p.x12") == [("dx-not-billable", "warn")]
    assert found("dx-unknown.fail.837p.x12") == []


def test_an_unwritable_cache_folder_still_gets_the_bundled_release(tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("", encoding="ascii")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    bundled.cache_clear()
    try:
        sets = bundled()
        assert sets is not None and sets.diagnosis("E1165", date(2026, 5, 4)).status == OK
        assert not sets.path.is_relative_to(blocker)
    finally:
        bundled.cache_clear()


def test_a_date_a_release_covers_decides_over_one_only_the_nearest_judges():
    # E11.6 on a line of 2026-11-02 (after the bundled release: a warning at most) and on
    # one of 2026-05-04 (inside it): the covered date rejects
    findings = dx_findings(bundled(), "837p", ("E116",),
                           [("99213", "20261102", "1"), ("99214", "20260504", "1")])
    assert [(f.rule, f.severity.value) for f in findings] == [("dx-not-billable", "reject")]
    assert "2026-05-04" in findings[0].message and "nearest" not in findings[0].message
    (late,) = dx_findings(bundled(), "837p", ("E116",), [("99213", "20261102", "1")])
    assert late.severity.value == "warn" and "FY2027" in late.message
