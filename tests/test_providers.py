"""Provider identity files as published (NPPES, PECOS Order and Referring, NUCC taxonomy) and
what the providers pack does with them beyond its fixtures (tests/test_data_pack_fixtures.py).

The files are built by fixtures/providers/build.py in the published layouts:
the NPPES monthly zip as downloaded, the PECOS CSV with a preamble line, the
NUCC CSV named with its version.
"""

from __future__ import annotations

import json
import os
import zipfile
from datetime import date
from pathlib import Path

import pytest
from rule_fixtures import rules_builder
from scrubbing import scrub_source

from scrubber.data import recognize
from scrubber.providers import ProviderFileError, load_nppes, load_nucc, load_pecos
from scrubber.rules.engine import Engine
from scrubber.rules.findings import ScrubbedClaim
from scrubber.rules.profile import load_profile
from scrubber.rules.resources import ResourceError, Resources, load_resources

HERE = Path(__file__).resolve().parent.parent / "fixtures" / "providers"
build = rules_builder("providers")


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def nppes_zip(folder: Path, day: str, rows, month="April_2026") -> Path:
    """The monthly zip as CMS ships it: the main CSV beside its header file, the other
    files of the dissemination and the readme."""
    path = folder / f"NPPES_Data_Dissemination_{month}.zip"
    text = build.nppes_text(rows)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"npidata_pfile_20050523-{day}.csv", text)
        archive.writestr(f"npidata_pfile_20050523-{day}_fileheader.csv", text.split("\r\n")[0])
        archive.writestr(f"othername_pfile_20050523-{day}.csv", '"NPI","Provider Other '
                         'Organization Name"\r\n')
        archive.writestr(f"pl_pfile_20050523-{day}.csv", '"NPI","Provider Secondary Practice '
                         'Location Address- Address Line 1"\r\n')
        archive.writestr(f"endpoint_pfile_20050523-{day}.csv", '"NPI","Endpoint Type"\r\n')
        archive.writestr("NPPES_Data_Dissemination_Readme.pdf", b"%PDF-1.4 synthetic\n")
    return path


def test_the_monthly_zip_as_downloaded_is_read_and_the_newest_snapshot_judges(tmp_path):
    older = nppes_zip(tmp_path, "20260308", build.NPPES_ROWS[:3], "March_2026")
    newer = nppes_zip(tmp_path, "20260406", build.NPPES_ROWS)
    release = recognize(newer)
    assert (release.option, release.label) == ("nppes", "NPPES as of 2026-04-06")
    index = load_nppes([newer, older])
    assert index.snapshot == date(2026, 4, 6) and index.built
    doctor = index.record(build.DOCTOR)
    assert (doctor.entity_type, doctor.taxonomies) == ("1", ("207Q00000X",))
    assert index.record(build.ORDERS).taxonomies == ("207R00000X", "207Q00000X")
    gone = index.record(build.GONE)
    assert gone.entity_type == "" and gone.deactivated == date(2025, 6, 30)
    assert not gone.active_on(date(2026, 3, 2)) and gone.active_on(date(2025, 6, 29))
    back = index.record(build.BACK)
    assert back.active_on(date(2026, 3, 2)) and not back.active_on(date(2025, 12, 1))
    assert not index.record(build.NEW).active_on(date(2026, 3, 2))
    assert index.record(build.NOWHERE) is None and index.record("12345") is None


def test_the_index_is_built_once_and_the_file_not_hashed_again(tmp_path, monkeypatch):
    path = nppes_zip(tmp_path, "20260406", build.NPPES_ROWS)
    first = load_nppes([path])
    import scrubber.cache

    hashing = scrubber.cache.file_sha256

    def no_hashing(path, *args):
        if os.fspath(path) not in (scrubber.cache._KNOWN.get() or {}):
            raise AssertionError("hashed the unchanged NPPES file again")
        return hashing(path, *args)

    monkeypatch.setattr(scrubber.cache, "file_sha256", no_hashing)
    again = load_nppes([path])
    assert again.path == first.path and not again.built
    assert again.record(build.DOCTOR) == first.record(build.DOCTOR)


def test_a_row_that_does_not_fit_names_its_line_and_a_name_without_its_day_is_refused(
        tmp_path):
    bad = tmp_path / "npidata_pfile_20050523-20260406.csv"
    rows = [*build.NPPES_ROWS[:2], build.nppes_row("12345", "1", "SHORT,NPI")]
    bad.write_text(build.nppes_text(rows))
    with pytest.raises(ProviderFileError, match="line 4 is not an NPPES row"):
        load_nppes([bad])
    unnamed = tmp_path / "npidata_pfile.csv"
    unnamed.write_text(build.nppes_text(build.NPPES_ROWS))
    with pytest.raises(ProviderFileError, match="does not say the day"):
        load_nppes([unnamed])
    with pytest.raises(ResourceError, match="does not say the day"):
        recognize(unnamed)


def test_pecos_reads_the_csv_under_a_preamble_zipped_or_not(tmp_path):
    text = "Order and Referring data, synthetic\r\n" + build.PECOS_TEXT
    zipped = tmp_path / "Order_and_Referring_20260401.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("Order_and_Referring_20260401.csv", text)
    assert recognize(zipped).option == "pecos-order-refer"
    table = load_pecos([zipped])
    assert table.as_of == date(2026, 4, 1)
    assert table.eligible(build.ORDERS) == {"PARTB", "DME", "HHA", "PMD", "HOSPICE"}
    assert table.eligible(build.NO_PART_B) == {"DME"}
    assert table.eligible(build.DOCTOR) == frozenset()
    assert table.eligible(build.SOLO) is None
    broken = tmp_path / "OrderReferring.csv"
    broken.write_text(build.PECOS_TEXT + "1234,SHORT,NPI,Y,Y,Y,Y,Y\r\n")
    with pytest.raises(ProviderFileError, match="line 5 is not an Order and Referring row"):
        load_pecos([broken])


def test_nucc_versions_judge_their_own_dates(tmp_path):
    first = tmp_path / "nucc_taxonomy_251.csv"
    first.write_text(build.nucc_text().replace("207R00000X", "2080X0099X"))
    second = HERE / "nucc_taxonomy_260.csv"
    assert recognize(first).effective_from == date(2025, 7, 1)
    codes = load_nucc([second, first])
    assert "2080X0099X" in codes.release_for(date(2025, 12, 31)).codes
    assert "2080X0099X" not in codes.release_for(date(2026, 1, 1)).codes
    assert codes.release_for(date(2025, 6, 30)) is None
    assert recognize(HERE / "npidata_pfile_20050523-20260406.csv").option == "nppes"


def _scrub(text: str, tmp_path: Path, resources: Resources) -> list[ScrubbedClaim]:
    path = tmp_path / "claims.x12"
    path.write_text(text)
    engine = Engine(load_profile(), resources=resources)
    return [e for e in scrub_source(path, engine=engine) if isinstance(e, ScrubbedClaim)]


def _resources() -> Resources:
    return load_resources({option: [str(p) for p in paths]
                           for option, paths in build.data_files().items()})


def test_an_individual_billing_where_the_guide_wants_an_organisation_is_a_warning(tmp_path):
    resources = _resources()
    professional = build.interchange("837p", [build.visit("BILL-A", "99213")],
                                     billing=("2", build.SOLO, ""))
    institutional = build.interchange("837i", [build.hha("BILL-B")],
                                      billing=("2", build.SOLO, ""))
    for text in (professional, institutional):
        findings = [f for c in _scrub(text, tmp_path, resources) for f in c.findings
                    if f.rule == "npi-entity-type"]
        assert [(f.severity.value, "as an individual" in f.message) for f in findings] == [
            ("warn", True)]
    person = build.interchange("837p", [build.visit("BILL-C", "99213")],
                               billing=("1", build.BILLING, ""))
    (finding,) = [f for c in _scrub(person, tmp_path, resources) for f in c.findings]
    assert finding.rule == "npi-entity-type" and finding.severity.value == "reject"


def test_a_service_after_the_snapshot_by_an_unlisted_npi_is_only_a_warning(tmp_path):
    claim = build.visit("LATE-A", "99213", rendering=build.NOWHERE)
    text = build.interchange("837p", [claim]).replace("20260302", "20260420")
    (finding,) = [f for c in _scrub(text, tmp_path, _resources()) for f in c.findings
                  if f.rule == "npi-not-in-nppes"]
    assert finding.severity.value == "warn" and "issued since" in finding.message


def test_a_professional_place_of_service_is_not_read_as_a_bill_type(tmp_path):
    # an 837P's CLM05-1 is a place of service: 34 (hospice) and 81 (independent laboratory)
    # are places, not hospice bills, so an office visit there with a referring provider
    # whom PECOS lists for nothing asks nothing of PECOS; the same provider on an 837I
    # hospice bill (081x) does not pass
    claims = [build.visit(f"POS-{pos}", "99213", referring=build.DOCTOR, pos=pos)
              for pos in ("34", "81", "32")]
    text = build.interchange("837p", claims)
    found = [(c.claim.id, f.rule) for c in _scrub(text, tmp_path, _resources())
             for f in c.findings]
    assert not [rule for _, rule in found if rule == "order-refer-not-eligible"], found
    hospice = build.interchange("837i", [build.hha("HOSP-A")], bill_type="81")
    assert "order-refer-not-eligible" in {
        f.rule for c in _scrub(hospice, tmp_path, _resources()) for f in c.findings}


def test_without_the_files_the_rules_say_so_once_and_do_not_run(tmp_path):
    text = build.interchange("837p", [build.visit("NONE-A", "80053",
                                                  referring=build.NO_PART_B),
                                      build.visit("NONE-B", "99213",
                                                  rendering=build.NOWHERE)])
    claims = _scrub(text, tmp_path, Resources())
    assert claims and not any(c.findings for c in claims)
    said = {n.key: n.message for n in Engine(load_profile(), resources=Resources()).notices}
    for kind, rules in (("nppes", "npi-not-in-nppes"), ("pecos-order-refer",
                                                        "order-refer-not-eligible"),
                        ("nucc-taxonomy", "taxonomy-unknown")):
        assert rules in said[f"no-data-{kind}"]


def test_the_benchmark_file_is_in_the_layout_and_holds_the_providers_given(tmp_path):
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    import gen_nppes

    given = [(build.DOCTOR, "1", "207Q00000X"), (build.GROUP, "2", "193200000X")]
    path = gen_nppes.write(tmp_path, 2000, given)
    index = load_nppes([path])
    assert index.snapshot == date(2026, 12, 7)
    assert index.record(build.DOCTOR).taxonomies == ("207Q00000X",)
    assert index.record(build.GROUP).entity_type == "2"
    from scrubber.providers.files import nppes_rows

    rows = list(nppes_rows(path))
    assert len(rows) == 2002 and {r[1] for r in rows} == {"1", "2", ""}
    assert any(r[3] and r[4] for r in rows)  # some deactivated, then reactivated


def test_files_added_with_scrub_data_give_the_verdicts_of_the_same_files_by_flag(tmp_path):
    from click.testing import CliRunner

    from scrubber.cli import main

    def verdicts(*extra: str) -> dict:
        found = {}
        for path in sorted(HERE.glob("*.x12")):
            out = CliRunner().invoke(main, ["check", str(path), "--format", "json",
                                            "--no-ledger", *extra])
            assert out.exit_code in (0, 1), out.output
            report = json.loads(out.stdout)
            found[path.name] = sorted(
                {f["rule"] for file in report["files"] for interchange in file["interchanges"]
                 for group in interchange["groups"] for transaction in group["transactions"]
                 for claim in transaction["claims"] for f in claim["findings"]})
        return found

    flags = [arg for option, paths in build.data_files().items()
             for path in paths for arg in (f"--{option}", str(path))]
    by_flag = verdicts(*flags)
    assert by_flag["npi-inactive.fail.837p.x12"] == ["npi-inactive"]
    added = CliRunner().invoke(main, ["data", "add", *(str(p) for paths in
                                                       build.data_files().values()
                                                       for p in paths)])
    assert added.exit_code == 0, added.output
    assert "added nppes: NPPES as of 2026-04-06" in added.output
    assert verdicts() == by_flag
