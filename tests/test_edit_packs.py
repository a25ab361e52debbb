"""The CMS files of the fee-schedule, add-on and CLIA packs as published, and the rules over
the claim history.

The readers take each file as CMS ships it (the zip as downloaded, the CSV with
its preamble, the fixed-width text) and tell its quarter; the recognizers (what
`scrub data add` asks) tell these files from others; the global-period and
add-on rules find their other half in the claim ledger, across runs.
"""

from __future__ import annotations

import importlib.util
import zipfile
from datetime import date
from pathlib import Path

import pytest
from scrubbing import scrub_source

from scrubber.ledger import open_store
from scrubber.ncci.addons import addon_file, load_addons
from scrubber.pfs import RvuError, load_rvu, rvu_file
from scrubber.rules.engine import Engine
from scrubber.rules.findings import ScrubbedClaim
from scrubber.rules.packs import addons as addons_pack
from scrubber.rules.packs import pfs as pfs_pack
from scrubber.rules.packs import place as place_pack
from scrubber.rules.profile import load_profile
from scrubber.rules.resources import ResourceError, Resources

ROOT = Path(__file__).resolve().parent.parent / "fixtures"


def _module(name: str):
    spec = importlib.util.spec_from_file_location(f"{name}_fixture_build",
                                                  ROOT / name / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pfs, addons, place = _module("pfs"), _module("addons"), _module("place")


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))


def _zip(path: Path, members: dict[str, str | bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in members.items():
            archive.writestr(name, text)
    return path


# -- the RVU file ----------------------------------------------------------------------------

def test_the_csv_and_the_fixed_width_text_give_the_same_rows(tmp_path):
    csv = tmp_path / "PPRRVU26_JAN.csv"
    txt = tmp_path / "PPRRVU26_JAN.txt"
    csv.write_text(pfs.csv_text(pfs.ROWS))
    txt.write_text(pfs.fixed_text(pfs.ROWS))
    (release, rows), (_, fixed) = rvu_file(csv), rvu_file(txt)
    assert rows == fixed and len(rows) == len(pfs.ROWS)
    assert release.start == date(2026, 1, 1)
    row = dict((r[0] + r[1], r) for r in rows)["27130"]
    assert row[2:9] == ("A", "0", "090", "1", "2", "2", "1")


def test_the_zip_as_downloaded_reads_its_csv_and_names_the_quarter(tmp_path):
    rows = pfs.ROWS[:3]
    path = _zip(tmp_path / "RVU26B.zip", {
        "RVU26B.docx": b"documentation", "PPRRVU26_APR.xlsx": b"PK not read",
        "PPRRVU26_APR.txt": pfs.fixed_text(rows), "PPRRVU26_APR.csv": pfs.csv_text(rows),
        "GPCI2026.csv": "other,table\n"})
    release, found = rvu_file(path)
    assert release.start == date(2026, 4, 1) and len(found) == 3
    assert pfs_pack.recognize(path).label == "PFS RVU 2026 April quarter"
    assert pfs_pack.recognize(path).effective_from == date(2026, 4, 1)
    other = _zip(tmp_path / "other.zip", {"readme.txt": "x"})
    assert pfs_pack.recognize(other) is None


def test_a_broken_row_is_named_and_a_name_without_its_quarter_refused(tmp_path):
    text = pfs.csv_text(pfs.ROWS[:2]) + "99XX,,,A\r\n"
    bad = tmp_path / "PPRRVU26_JAN.csv"
    bad.write_text(text)
    with pytest.raises(RvuError, match=r"line \d+ is not an RVU row"):
        rvu_file(bad)
    with pytest.raises(ResourceError, match="not an RVU row"):
        pfs_pack.recognize(bad)
    unnamed = tmp_path / "fee-schedule.csv"
    unnamed.write_text(pfs.csv_text(pfs.ROWS[:2]))
    with pytest.raises(RvuError, match="does not say the quarter"):
        rvu_file(unnamed)


def test_each_date_is_judged_by_the_release_in_force(tmp_path):
    january, july = tmp_path / "PPRRVU26_JAN.csv", tmp_path / "PPRRVU26_JUL.csv"
    january.write_text(pfs.csv_text([pfs.rvu("99241", status="A")]))
    july.write_text(pfs.csv_text([pfs.rvu("99241", status="I")]))
    table = load_rvu([july, january])
    assert table.entry("99241", date(2026, 3, 2)).status == "A"
    assert table.entry("99241", date(2026, 8, 1)).status == "I"
    assert table.release_for(date(2025, 12, 31)) is None  # before every release
    assert table.release_for(date(2027, 1, 4)) is None  # the next fee-schedule year
    again = load_rvu([july, january])
    assert again.path == table.path and not again.built and table.built


def test_a_date_no_release_covers_is_said_once_not_judged(tmp_path):
    path = tmp_path / "late.x12"
    path.write_text(pfs.rules.interchange("837p", [[
        pfs.visit("LATE-A", ("99213", ("26",)), day="20251103"),
        pfs.visit("LATE-B", "99241", day="20251104")]]))
    rvu = load_rvu([ROOT / "pfs" / "PPRRVU26_JAN.csv"])
    claims = _scrub(path, Resources.of(**{"pfs-rvu": rvu}))
    assert not any(c.findings for c in claims)
    for claim in claims:  # said once per claim however many rules read the dates
        assert [n.key for n in claim.notices] == ["pfs-rvu-uncovered-dates"]


# -- the claim history ------------------------------------------------------------------------

def _scrub(path: Path, resources: Resources, ledger=None) -> list[ScrubbedClaim]:
    engine = Engine(load_profile(), resources=resources)
    return [e for e in scrub_source(path, engine=engine, ledger=ledger,
                                    record=ledger is not None)
            if isinstance(e, ScrubbedClaim)]


def _two_runs(tmp_path, first, second, resources, control=("000000001", "000000002")):
    """Scrub ``first`` (recorded as sent), then ``second`` against the same ledger."""
    with open_store(tmp_path / "ledger.sqlite") as ledger:
        out = []
        for n, claims in enumerate((first, second)):
            path = tmp_path / f"run{n}.x12"
            path.write_text(pfs.rules.interchange("837p", [claims], control=control[n]))
            out.append(_scrub(path, resources, ledger))
        return out


def test_a_visit_in_the_period_of_a_surgery_already_sent_is_rejected(tmp_path):
    rvu = Resources.of(**{"pfs-rvu": load_rvu([ROOT / "pfs" / "PPRRVU26_JAN.csv"])})
    sent, now = _two_runs(tmp_path, [pfs.visit("SURG-1", "27447")],
                          [pfs.visit("VISIT-1", "99213", day="20260320")], rvu)
    assert not any(c.findings for c in sent)
    (finding,) = now[0].findings
    assert finding.rule == "pfs-global-period" and finding.severity.value == "reject"
    assert "already accepted" in finding.message and finding.related


def test_a_surgery_after_a_visit_already_sent_warns_of_the_visit(tmp_path):
    rvu = Resources.of(**{"pfs-rvu": load_rvu([ROOT / "pfs" / "PPRRVU26_JAN.csv"])})
    sent, now = _two_runs(tmp_path, [pfs.visit("VISIT-2", "99213", day="20260320")],
                          [pfs.visit("SURG-2", "27447")], rvu)
    assert not any(c.findings for c in sent)
    (finding,) = now[0].findings
    assert finding.rule == "pfs-global-period" and finding.severity.value == "warn"
    assert "VISIT-2" in finding.message and "VISIT-2" in finding.related[0]


def test_an_add_on_finds_its_primary_among_the_claims_already_sent(tmp_path):
    aoc = Resources.of(**{"ncci-aoc": load_addons([ROOT / "addons" / "AOC_V2026Q1-MCR.txt"])})
    alone = tmp_path / "alone.x12"
    alone.write_text(pfs.rules.interchange("837p", [[addons.visit("ADD-1", "11045")]]))
    assert [f.rule for c in _scrub(alone, aoc) for f in c.findings] == ["addon-primary"]
    sent, now = _two_runs(tmp_path, [addons.visit("PRIM-1", "11042")],
                          [addons.visit("ADD-1", "11045")], aoc)
    assert not any(c.findings for c in sent + now)


# -- the add-on code file ----------------------------------------------------------------------

def test_the_add_on_file_reads_fixed_width_tab_and_csv_alike(tmp_path):
    fixed = tmp_path / "AOC_V2026Q1-MCR.txt"
    fixed.write_text(addons.fixed_text(addons.ROWS))
    tab = tmp_path / "AOC_V2026Q1-tab.txt"
    tab.write_text("\r\n".join(["\t".join(addons.HEADINGS),
                                *("\t".join(row) for row in addons.ROWS)]))
    quarter, rows = addon_file(fixed)
    assert quarter == date(2026, 1, 1) and rows == addon_file(tab)[1]
    assert ("99292", "", 2, 20260101, None, None, None) in rows  # CCCCC: no primary listed
    zipped = _zip(tmp_path / "AOC_V2026Q2-MCR.zip", {"AOC_V2026Q2-MCR.xlsx": b"PK",
                                                     "AOC_V2026Q2-MCR.txt": fixed.read_text()})
    release = addons_pack.recognize(zipped)
    assert release.option == "ncci-aoc" and release.effective_from == date(2026, 4, 1)
    assert addons_pack.recognize(ROOT / "pfs" / "PPRRVU26_JAN.csv") is None


def test_add_on_edits_keep_their_dates(tmp_path):
    edits = load_addons([ROOT / "addons" / "AOC_V2026Q1-MCR.txt"])
    march, january = date(2026, 3, 2), date(2026, 1, 15)
    assert edits.edit("11045", march).primaries == {"11042", "11043"}
    assert edits.edit("11045", january).primaries == {"11042", "11043", "11044"}
    assert edits.edit("15272", march) is None and edits.edit("15272", january).type == 1
    assert edits.edit("11045", date(2025, 12, 31)) is None  # before the edit took effect
    assert edits.edit("99213", march) is None


def test_a_row_that_does_not_fit_names_its_line(tmp_path):
    path = tmp_path / "AOC_V2026Q1-MCR.txt"
    path.write_text(addons.fixed_text([*addons.ROWS, addons.aoc("11045", "11042", 7)]))
    with pytest.raises(ResourceError, match="line 9 is not an add-on code row"):
        addons_pack.recognize(path)


# -- CLIA and place of service -------------------------------------------------------------------

def test_clia_lists_read_codes_with_qw_and_several_a_cell(tmp_path):
    from scrubber.codesets.clia import code_list

    codes = code_list(ROOT / "place" / "clia-waived-tests.csv")
    assert codes == {"87880", "82947", "82950", "81025"}
    assert place_pack._named("clia-waived", "waived", "x")(
        ROOT / "place" / "clia-waived-tests.csv").option == "clia-waived"
    empty = tmp_path / "waived-none.csv"
    empty.write_text("TEST NAME,USE\r\nnothing,here\r\n")
    with pytest.raises(ResourceError, match="holds no CPT or HCPCS codes"):
        place_pack._named("clia-waived", "waived", "x")(empty)


def test_a_users_place_of_service_table_replaces_the_shipped_one(tmp_path):
    table = tmp_path / "pos.csv"
    table.write_text("code,name,effective_from,effective_to\r\n11,Office,,\r\n"
                     "10,Telehealth home,2023-01-01,\r\n")
    release = place_pack._recognize_places(table)
    assert release is not None and release.option == "pos"
    loaded = place_pack._load_places({"pos": (str(table),)})
    path = tmp_path / "tele.x12"
    path.write_text(pfs.rules.interchange("837p", [[
        place.visit("TELE-1", ("99213", ("95",)), pos="10", day="20220601"),
        place.visit("TELE-2", "99213", pos="12")]]))
    found = [(c.claim.id, f.rule) for c in _scrub(path, Resources.of(pos=loaded))
             for f in c.findings]
    assert found == [("TELE-1", "pos-invalid"), ("TELE-2", "pos-invalid")]
    assert not [f for c in _scrub(path, Resources()) for f in c.findings]  # the shipped one
