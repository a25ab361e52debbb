"""Loading the user's CMS NCCI files: layouts, zips, bad rows, and the index cache."""

from __future__ import annotations

import importlib.util
import os
import pickle
import sqlite3
import tracemalloc
import zipfile
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from pathlib import Path

import pytest

from scrubber.ncci import MueLimit, NcciError, NcciTables, load_tables
from scrubber.ncci.files import mue_rows, ptp_rows

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("ncci_fixture_build",
                                               ROOT / "fixtures" / "ncci" / "build.py")
assert _spec is not None and _spec.loader is not None
build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build)
ptp, mue = build.ptp, build.mue


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    """Every test builds its indexes in a cache folder of its own."""
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    return cache / "scrubber"


def ptp_file(folder: Path, rows, name="ptp.txt", **kwargs) -> Path:
    path = folder / name
    path.write_text(build.tab_text(build.PTP_HEADINGS, rows, **kwargs), encoding="utf-8")
    return path


def mue_file(folder: Path, rows, name="mue.txt") -> Path:
    path = folder / name
    path.write_text(build.tab_text(build.MUE_HEADINGS, rows), encoding="utf-8")
    return path


def zipped(folder: Path, name: str, members: dict[str, str]) -> Path:
    path = folder / name
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, text in members.items():
            archive.writestr(member, text)
    return path


# -- layouts ------------------------------------------------------------------------------

def test_ptp_rows_skip_the_notice_and_headings_and_read_every_column(tmp_path):
    path = ptp_file(tmp_path, [ptp("99213", "36415", 0, prior="*"),
                               ptp("20610", "20550", 1, effective="20250401",
                                   deletion="20261001")])
    assert list(ptp_rows(path)) == [
        ("99213", "36415", True, 20260101, 99999999, 0, build.WHY),
        ("20610", "20550", False, 20250401, 20261001, 1, build.WHY)]


def test_headings_over_several_lines_and_blank_lines_are_skipped(tmp_path):
    path = tmp_path / "ptp.txt"
    path.write_text("CPT codes copyright notice line\n\nColumn 1\tColumn 2\n"
                    "Column 1/Column 2 Edits\n\n0001A\t0591T\t\t20210101\t*\t1\tMisuse\n\n"
                    "J1100\t96372\t\t20210101\t*\t0\t\n", encoding="utf-8")
    assert [r[:2] for r in ptp_rows(path)] == [("0001A", "0591T"), ("J1100", "96372")]


def test_csv_with_quotes_and_a_bom_and_a_six_column_ptp(tmp_path):
    path = tmp_path / "ptp.csv"
    path.write_bytes(b'\xef\xbb\xbf"Column 1","Column 2"\r\n"99213","36415","","20260101",'
                     b'"*","0","Standards of medical, surgical practice"\r\n'
                     b"20610,20550,*,20260101,*,1\r\n")
    assert list(ptp_rows(path)) == [
        ("99213", "36415", False, 20260101, 99999999, 0, "Standards of medical, surgical practice"),
        ("20610", "20550", True, 20260101, 99999999, 1, "")]


def test_windows_1252_rationale_is_read(tmp_path):
    path = tmp_path / "ptp.txt"
    path.write_bytes(b"Column 1\tColumn 2\n99213\t36415\t\t20260101\t*\t0\tCPT \x93separate\x94\n")
    (row,) = ptp_rows(path)
    assert row[6] == "CPT \u201cseparate\u201d"


def test_mue_rows_read_value_and_indicator(tmp_path):
    path = mue_file(tmp_path, [mue("20610", 2, 1), mue("J1100", 10, 2), mue("97110", 4, 3)])
    assert list(mue_rows(path)) == [("20610", 2, 1, build.WHY), ("J1100", 10, 2, build.WHY),
                                    ("97110", 4, 3, build.WHY)]


def test_zip_with_several_members_reads_each_data_member_and_passes_over_the_rest(tmp_path):
    path = zipped(tmp_path, "ccipra.zip", {
        "README.pdf": "%PDF not a table",
        "f1.txt": build.tab_text(build.PTP_HEADINGS, [ptp("99213", "36415", 0)]),
        "sub/f2.csv": build.csv_text(build.PTP_HEADINGS, [ptp("20610", "20550", 1)]),
        "__MACOSX/._f1.txt": "junk"})
    assert [r[:2] for r in ptp_rows(path)] == [("99213", "36415"), ("20610", "20550")]


def test_zip_without_a_text_member_says_what_it_holds(tmp_path):
    path = zipped(tmp_path, "ccipra.zip", {"ccipra-v321r0-f1.xlsx": "binary"})
    with pytest.raises(NcciError, match=r"ccipra\.zip.*no \.txt or \.csv.*\.xlsx"):
        list(ptp_rows(path))


# -- rows that do not fit: one clear error naming file, member and line ----------------

@pytest.mark.parametrize("row, words", [
    (("99213", "36415", "", "2026-01-01", "*", "0", "x"), "effective date is '2026-01-01'"),
    (("99213", "36415", "", "20260230", "*", "0", "x"), "effective date is '20260230'"),
    (("99213", "36415", "", "20260101", "never", "0", "x"), "deletion date is 'never'"),
    (("99213", "36415", "", "20260101", "*", "2", "x"), "modifier indicator is '2'"),
    (("99213", "36415", "Y", "20260101", "*", "0", "x"), "prior-1996 flag is 'Y'"),
    (("99213", "3641", "", "20260101", "*", "0", "x"), "column 2 code is '3641'"),
    (("99213", "36415", "20260101", "*", "0"), "5 columns"),
    (("99213", "36415", "", "20260101", "*", "0", "x", "extra"), "8 columns"),
])
def test_a_bad_ptp_row_names_file_and_line(tmp_path, row, words):
    path = ptp_file(tmp_path, [ptp("99213", "36415", 0), row])
    with pytest.raises(NcciError) as caught:
        list(ptp_rows(path))
    message = str(caught.value)
    assert f"{path}, line 4: not a PTP row" in message and words in message


def test_a_bad_row_in_a_zip_names_the_member(tmp_path):
    path = zipped(tmp_path, "ptp.zip", {
        "f1.txt": build.tab_text(build.PTP_HEADINGS, [ptp("99213", "36415", 0)]),
        "f2.txt": build.tab_text(build.PTP_HEADINGS, [ptp("20610", "20550", 1),
                                                      ptp("20610", "20551", 7)])})
    with pytest.raises(NcciError, match=r"ptp\.zip \(zip member f2\.txt\), line 4: .*"
                                        r"modifier indicator is '7'"):
        list(ptp_rows(path))


@pytest.mark.parametrize("row, words", [
    (("20610", "two", "1 Line Edit", "x"), "MUE value is 'two'"),
    (("20610", "2", "4 Something", "x"), "adjudication indicator is '4 Something'"),
    (("20610", "2", "12 Line Edit", "x"), "adjudication indicator is '12 Line Edit'"),
    (("20610", "2"), "2 columns"),
])
def test_a_bad_mue_row_names_file_and_line(tmp_path, row, words):
    path = mue_file(tmp_path, [mue("J1100", 10, 2), row])
    with pytest.raises(NcciError) as caught:
        list(mue_rows(path))
    assert f"{path}, line 4: not a MUE row (" in str(caught.value)
    assert words in str(caught.value)


def test_a_file_of_the_other_kind_or_without_rows_is_named(tmp_path):
    path = mue_file(tmp_path, [mue("J1100", 10, 2)])
    with pytest.raises(NcciError, match="not a PTP row"):
        list(ptp_rows(path))
    empty = ptp_file(tmp_path, [], name="empty.txt")
    with pytest.raises(NcciError, match=r"empty\.txt: no PTP rows found"):
        list(ptp_rows(empty))
    prose = tmp_path / "notes.txt"
    prose.write_text("a line of prose\n" * 150)
    with pytest.raises(NcciError, match=r"no PTP row in the first 100 lines"):
        list(ptp_rows(prose))


def test_missing_file_or_folder_is_an_ncci_error(tmp_path):
    with pytest.raises(NcciError, match="no such file"):
        load_tables(ptp=[tmp_path / "missing.zip"])
    with pytest.raises(NcciError, match="is a folder"):
        load_tables(mue=tmp_path)
    with pytest.raises(NcciError, match="837X"):
        load_tables(ptp={"837X": [tmp_path / "a.txt"]})


# -- lookups --------------------------------------------------------------------------------

def test_ptp_is_in_force_from_its_effective_date_until_its_deletion_date(tmp_path):
    tables = load_tables(ptp=ptp_file(tmp_path, [
        ptp("93000", "93005", 0, effective="20250101", deletion="20260701"),
        ptp("71046", "71045", 1, effective="20270101")]))
    assert tables.ptp("93000", "93005", date(2024, 12, 31)) is None
    edit = tables.ptp("93000", "93005", date(2025, 1, 1))
    assert (edit.column1, edit.column2, edit.modifier) == ("93000", "93005", 0)
    assert edit.effective == date(2025, 1, 1) and edit.deletion == date(2026, 7, 1)
    assert tables.ptp("93000", "93005", date(2026, 6, 30)) is not None
    assert tables.ptp("93000", "93005", date(2026, 7, 1)) is None  # deleted that day
    assert tables.ptp("93005", "93000", date(2026, 1, 1)) is None  # the order matters
    assert tables.ptp("71046", "71045", date(2026, 12, 31)) is None  # not yet
    future = tables.ptp("71046", "71045", date(2027, 1, 1))
    assert future.deletion is None and future.rationale == build.WHY


def test_a_pair_deleted_and_added_again_answers_the_row_in_force(tmp_path):
    tables = load_tables(ptp=ptp_file(tmp_path, [
        ptp("11042", "97597", 0, effective="20200101", deletion="20250101"),
        ptp("11042", "97597", 9, effective="20250101")]))
    assert tables.ptp("11042", "97597", date(2024, 6, 1)).modifier == 0
    assert tables.ptp("11042", "97597", date(2025, 6, 1)).modifier == 9
    assert len(tables.ptp_edits("11042", "97597")) == 2


def test_several_ptp_files_together_and_mue(tmp_path):
    one = ptp_file(tmp_path, [ptp("99213", "36415", 0)], name="f1.txt")
    two = zipped(tmp_path, "f2.zip", {"f2.txt": build.tab_text(
        build.PTP_HEADINGS, [ptp("20610", "20550", 1)])})
    tables = load_tables(ptp=[one, two], mue=[mue_file(tmp_path, [mue("20610", 2, 1),
                                                                  mue("J1100", 10, 3)])])
    day = date(2026, 11, 2)
    assert tables.ptp("99213", "36415", day) and tables.ptp("20610", "20550", day)
    assert tables.mue("J1100") == tables.mue("j1100") == MueLimit("J1100", 10, 3, build.WHY)
    assert tables.mue("99213") is None
    assert tables.counts == {"ptp": 2, "mue": 2}
    # one list serves both claim kinds
    assert tables.ptp("99213", "36415", day, "837I") and tables.mue("20610", "837I").units == 2


def test_per_kind_files_answer_only_their_kind(tmp_path):
    practitioner = ptp_file(tmp_path, [ptp("99213", "36415", 0)], name="pra.txt")
    outpatient = ptp_file(tmp_path, [ptp("96365", "96360", 0)], name="hop.txt")
    tables = load_tables(ptp={"837P": [practitioner], "837I": [outpatient]},
                         mue={"837I": mue_file(tmp_path, [mue("96365", 1, 2)])})
    day = date(2026, 11, 2)
    assert tables.ptp("99213", "36415", day, "837P") is not None
    assert tables.ptp("99213", "36415", day, "837I") is None
    assert tables.ptp("96365", "96360", day, "837I") is not None
    assert tables.mue("96365", "837P") is None and tables.mue("96365", "837I").units == 1
    assert tables.kinds("mue") == ("837I",) and tables.kinds("ptp") == ("837P", "837I")


def test_a_code_listed_twice_answers_the_lower_mue(tmp_path):
    tables = load_tables(mue=[mue_file(tmp_path, [mue("J1100", 10, 2)], name="a.txt"),
                              mue_file(tmp_path, [mue("J1100", 8, 2)], name="b.txt")])
    assert tables.mue("J1100").units == 8


def test_no_files_means_no_edits_and_no_index(private_cache):
    tables = load_tables()
    assert tables.path is None and tables.ptp("99213", "36415", date(2026, 1, 1)) is None
    assert tables.mue("J1100") is None and not private_cache.exists()


def test_tables_pickle_by_reopening_the_index(tmp_path):
    tables = load_tables(ptp=ptp_file(tmp_path, [ptp("99213", "36415", 0)]))
    again = pickle.loads(pickle.dumps(tables))
    assert isinstance(again, NcciTables) and again.path == tables.path
    assert again.ptp("99213", "36415", date(2026, 11, 2)).modifier == 0


# -- the index cache --------------------------------------------------------------------

def test_index_is_built_once_and_reused(tmp_path, private_cache):
    path = ptp_file(tmp_path, [ptp("99213", "36415", 0)])
    first = load_tables(ptp=[path])
    assert first.built and first.path.parent == private_cache and first.path.is_file()
    second = load_tables(ptp=[path])
    assert not second.built and second.path == first.path
    assert [p.name for p in private_cache.iterdir()] == [first.path.name]  # no temp files


def test_changed_file_rebuilds_and_its_content_not_its_name_is_the_key(tmp_path):
    path = ptp_file(tmp_path, [ptp("99213", "36415", 0)])
    first = load_tables(ptp=path)
    path.write_text(build.tab_text(build.PTP_HEADINGS, [ptp("99213", "36415", 1)]))
    second = load_tables(ptp=path)
    assert second.built and second.path != first.path
    assert second.ptp("99213", "36415", date(2026, 11, 2)).modifier == 1
    copy = tmp_path / "copy.txt"
    copy.write_bytes(path.read_bytes())
    assert not load_tables(ptp=copy).built  # same bytes, same index
    assert load_tables(mue=mue_file(tmp_path, [mue("J1100", 1, 1)])).built


def test_cache_dir_argument_and_a_torn_index_is_rebuilt(tmp_path):
    path = ptp_file(tmp_path, [ptp("99213", "36415", 0)])
    tables = load_tables(ptp=path, cache_dir=tmp_path / "elsewhere")
    assert tables.path.parent == tmp_path / "elsewhere"
    tables.close()
    tables.path.write_bytes(b"SQLite format 3\x00 and then nothing useful")
    again = load_tables(ptp=path, cache_dir=tmp_path / "elsewhere")
    assert again.built and again.ptp("99213", "36415", date(2026, 11, 2)) is not None


def test_a_failed_build_leaves_neither_index_nor_temporary_file(tmp_path, private_cache):
    path = ptp_file(tmp_path, [ptp("99213", "36415", 0), ("99213", "bad")])
    with pytest.raises(NcciError, match="line 4"):
        load_tables(ptp=path)
    assert not private_cache.exists() or list(private_cache.iterdir()) == []


def test_the_index_opens_read_only(tmp_path):
    tables = load_tables(ptp=ptp_file(tmp_path, [ptp("99213", "36415", 0)]))
    with pytest.raises(sqlite3.OperationalError):
        tables._db.execute("DELETE FROM ptp")


def _load_in_process(args):
    folder, cache = args
    os.environ["XDG_CACHE_HOME"] = cache
    tables = load_tables(ptp=[Path(folder) / "ptp.txt"])
    return str(tables.path), tables.counts["ptp"], \
        tables.ptp("99213", "36415", date(2026, 11, 2)) is not None


def test_two_processes_loading_at_once_both_get_a_whole_index(tmp_path, private_cache):
    ptp_file(tmp_path, [ptp("99213", "36415", 0)] +
             [ptp(f"{n:05d}", f"{n + 1:05d}", 1) for n in range(10000, 30000)])
    with ProcessPoolExecutor(2) as pool:
        results = list(pool.map(_load_in_process, [(str(tmp_path), str(private_cache.parent))] * 4))
    assert len(set(results)) == 1 and results[0][1:] == (20001, True)
    assert [p.suffix for p in private_cache.iterdir()] == [".sqlite"]


@pytest.mark.slow
def test_building_streams_rows_in_flat_memory(tmp_path):
    rows = 150_000
    path = tmp_path / "big.txt"
    with open(path, "w") as out:
        out.write("\t".join(build.PTP_HEADINGS) + "\n")
        for n in range(rows):
            out.write(f"{10000 + n % 90000:05d}\t{n // 90000 + 10000:05d}\t\t20260101\t*\t1\t"
                      f"{build.WHY}\n")
    tracemalloc.start()
    try:
        tables = load_tables(ptp=path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert tables.counts["ptp"] == rows
    # holding the rows in a list would peak near 40 MB; batches keep it near 10
    assert peak < 20 * 1024 * 1024, peak
