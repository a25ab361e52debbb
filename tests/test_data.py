"""scrub data: CMS's files as downloaded, installed once, judged by their dates, used by
every front end without flags.

The files are built here in CMS's published layouts (tests/cms_layouts.py; synthetic,
not CMS's): the FY order zip with its addenda, two HCPCS quarterly zips with their record
layout, readme and Excel copy where the newer terminates a code, a January update, a zip
with an April file inside. Each test has its own data folder (tests/conftest.py).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from datetime import date
from pathlib import Path

import cms_layouts as cms
import pytest
from click.testing import CliRunner
from rule_fixtures import rules_builder

import scrubber
from scrubber.api import check_files
from scrubber.cli import main
from scrubber.core import ScrubOptions
from scrubber.data import freshness_report, installed_files, installed_resources
from scrubber.rules.resources import Resources, load_resources, resource_options

ROOT = Path(__file__).resolve().parent.parent
rules = rules_builder()


# -- the files, as CMS ships them ---------------------------------------------------------------

@pytest.fixture
def cms_files(tmp_path) -> dict[str, Path]:
    """Every kind of file the issue names, in a folder of downloads."""
    down = tmp_path / "downloads"
    down.mkdir()
    return {
        "fy2027": cms.order_zip(down / "2027-code-descriptions-tabular-order.zip",
                                "icd10cm_order_2027.txt", cms.FY2027,
                                [r for r in cms.FY2027 if r[0].startswith("R05")]),
        "fy2021": cms.order_file(down / "icd10cm_order_2021.txt", cms.FY2021),
        "january2021": cms.order_zip(
            down / "2021-code-descriptions-tabular-order-january-1-2021-update.zip",
            "icd10cm_order_2021.txt", cms.JANUARY_2021, cms.JANUARY_2021_ADDED),
        "fy2025": cms.order_file(down / "icd10cm_order_2025.txt", cms.FY2025),
        "april2025": cms.order_zip(down / "code-descriptions-in-tabular-order.zip",
                                   "icd10cm-order-April-2025.txt", cms.APRIL_2025,
                                   cms.APRIL_2025_ADDED,
                                   addenda="icd10cm-order-addenda-April-2025.txt"),
        "hcpcs-oct2024": cms.hcpcs_zip(down / "october-2024-alpha-numeric-hcpcs-file.zip",
                                       2024, "OCT", cms.HCPCS_OCT_2024),
        "hcpcs-jan2025": cms.hcpcs_zip(down / "january-2025-alpha-numeric-hcpcs-file.zip",
                                       2025, "JAN", cms.HCPCS_JAN_2025),
    }


def flags(files: dict[str, Path]) -> list[str]:
    """The same files as one run's --icd10cm / --hcpcs options."""
    return [arg for name, path in files.items()
            for arg in ("--hcpcs" if name.startswith("hcpcs") else "--icd10cm", str(path))]


# (claim id, procedure, date of service, diagnosis) -> the verdict, and the rule that decides
CASES = {
    "FY27-R05": ("99213", "20261015", "R05", ("rejected", "dx-not-billable")),
    "FY27-I10": ("99213", "20261015", "I10", ("accepted", None)),
    "HC-FEB25": ("C9800", "20250203", "I10", ("rejected", "hcpcs-not-in-force")),
    "HC-NOV24": ("C9800", "20241105", "I10", ("accepted", None)),
    "JAN-NOV20": ("99213", "20201115", "Z20822", ("rejected", "dx-not-in-force")),
    "JAN-FEB21": ("99213", "20210201", "Z20822", ("accepted", None)),
    "APR-MAR25": ("99213", "20250331", "U070", ("rejected", "dx-not-in-force")),
    "APR-APR25": ("99213", "20250401", "U070", ("accepted", None)),
}


@pytest.fixture
def batch(tmp_path) -> list[Path]:
    """One 837P per case, in a folder: what a billing office scrubs."""
    folder = tmp_path / "claims"
    folder.mkdir()
    paths = []
    for n, (cid, (code, day, dx, _)) in enumerate(CASES.items(), 1):
        claim = rules.claim(cid, [rules.line(code, charge="100", day=day)], notes=(), dx=(dx,))
        path = folder / f"{n:02d}-{cid}.x12"
        path.write_text(rules.interchange("837p", [[claim]]), encoding="ascii")
        paths.append(path)
    return paths


def verdicts_of(report: dict) -> dict[str, tuple[str, tuple[str, ...]]]:
    """{CLM01: (status, the rules of its rejects and warnings)} of a JSON report."""
    return {c["id"]: (c["status"], tuple(sorted(f["rule"] for f in c["findings"]
                                                if f["severity"] != "info")))
            for file in report["files"] for i in file["interchanges"] for g in i["groups"]
            for t in g["transactions"] for c in t["claims"]}


def check(paths, *extra: str, env: dict | None = None) -> tuple[int, dict, str]:
    result = CliRunner().invoke(main, ["check", *map(str, paths), "--format", "json",
                                       "--no-ledger", *extra], env=env)
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(result.stdout), result.stderr


def expected() -> dict[str, tuple[str, tuple[str, ...]]]:
    return {cid: (status, (rule,) if rule else ()) for cid, (*_, (status, rule)) in CASES.items()}


def add(*paths: Path, store: str | None = None) -> CliRunner:
    args = ["data", *(["--store", store] if store else []), "add", *map(str, paths)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return result


# -- releases by their dates, through scrub data add and a plain scrub check -------------------

def test_added_files_give_the_verdicts_of_the_same_files_by_flag(cms_files, batch, monkeypatch,
                                                                  tmp_path):
    _, by_flag, _ = check(batch, *flags(cms_files))
    assert verdicts_of(by_flag) == expected()
    # nothing installed: only what the bundled release can say
    _, plain, _ = check(batch)
    assert verdicts_of(plain) != expected()
    said = add(*cms_files.values())
    assert said.output.count("added ") == len(cms_files)
    for words in ("icd10cm: ICD-10-CM FY2027 (in force 2026-10-01 to 2027-09-30)",
                  "icd10cm: ICD-10-CM January 1, 2021 update (in force 2021-01-01 to "
                  "2021-09-30)",
                  "icd10cm: ICD-10-CM April 1, 2025 update (in force 2025-04-01 to 2025-09-30)",
                  "hcpcs: HCPCS 2025 January quarter (in force 2025-01-01 to 2025-03-31)",
                  "hcpcs: HCPCS 2024 October quarter (in force 2024-10-01 to 2024-12-31)"):
        assert words in said.output
    _, installed, _ = check(batch)
    assert verdicts_of(installed) == verdicts_of(by_flag) == expected()
    assert installed["files"] and _without_paths(installed) == _without_paths(by_flag)
    notices = {n["key"]: n["message"] for n in installed["total"]["notices"]}
    assert "ICD-10-CM FY2027 (2027-code-descriptions-tabular-order.zip)" in notices["data-in-use"]
    assert "HCPCS 2024 October quarter" in notices["data-in-use"]


def _without_paths(report: dict) -> list:
    """The claims of a report with everything but where the data came from."""
    return [c for file in report["files"] for i in file["interchanges"] for g in i["groups"]
            for t in g["transactions"] for c in t["claims"]]


def test_a_newer_quarter_terminating_a_code_wins_over_an_older_one_listing_it(cms_files, batch):
    hcpcs = [cms_files["hcpcs-oct2024"], cms_files["hcpcs-jan2025"]]
    add(*hcpcs, cms_files["fy2025"])
    _, report, _ = check([batch[2], batch[3]])
    assert verdicts_of(report) == {"HC-FEB25": ("rejected", ("hcpcs-not-in-force",)),
                                   "HC-NOV24": ("accepted", ())}
    (finding,) = [f for f in _without_paths(report)[0]["findings"]]
    assert "terminated on 2024-12-31" in finding["message"]
    # the older quarter alone cannot know: the date is outside it, so a notice, no reject
    _, older, _ = check([batch[2]], "--hcpcs", str(hcpcs[0]), env={
        "XDG_DATA_HOME": str(Path(os.environ["XDG_DATA_HOME"]) / "other")})
    assert verdicts_of(older)["HC-FEB25"][0] == "accepted"


def test_a_flag_adds_to_the_installed_releases_of_its_option(cms_files, batch):
    add(cms_files["fy2027"])
    _, report, _ = check([batch[0], batch[6], batch[7]], "--icd10cm", str(cms_files["fy2025"]),
                         "--icd10cm", str(cms_files["april2025"]))
    assert verdicts_of(report) == {"FY27-R05": ("rejected", ("dx-not-billable",)),
                                   "APR-MAR25": ("rejected", ("dx-not-in-force",)),
                                   "APR-APR25": ("accepted", ())}


# -- every front end, without flags -------------------------------------------------------------

def test_the_api_sees_the_installed_data(cms_files, batch):
    add(*cms_files.values())
    for path in batch:
        (claim,) = scrubber.scrub(path).claims
        status, rules_ = expected()[claim.claim.id]
        assert claim.status == status
        assert tuple(f.rule for f in claim.findings if f.severity.value != "info") == rules_
    out = io.StringIO()
    check_files([str(p) for p in batch], out, fmt="json")
    assert verdicts_of(json.loads(out.getvalue())) == expected()
    # a kind given from code replaces the installed one; ScrubOptions(data=None): none at all
    (claim,) = scrubber.scrub(batch[0], options=ScrubOptions(data=None)).claims
    assert claim.status == "accepted"


def test_the_watcher_files_by_the_installed_data_and_logs_its_freshness(cms_files, batch,
                                                                        tmp_path):
    add(*cms_files.values())
    root = tmp_path / "watched"
    (root / "inbox").mkdir(parents=True)
    for path in batch:
        (root / "inbox" / path.name).write_bytes(path.read_bytes())
    done = subprocess.run([sys.executable, "-m", "scrubber", "watch", str(root), "--once",
                           "--poll", "--settle", "0.1", "--no-ledger", "--workers", "1"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    for path in batch:
        status, _ = expected()[path.stem.split("-", 1)[1]]
        assert (root / status / path.name).is_file(), (path.name, status)
    today = date.today().isoformat()
    assert f"reference data NOT covering {today}: hcpcs" in done.stderr  # January 2025 at most
    assert f"covering {today}: icd10cm" in done.stderr  # FY2027
    assert "not installed: " in done.stderr and "ncci-ptp" in done.stderr.split(
        "not installed: ")[1]


def test_the_http_intake_validates_with_the_installed_data(cms_files, batch, tmp_path):
    from fastapi.testclient import TestClient
    from servekit import auth, settings

    from scrubber.serve import create_app

    add(*cms_files.values())
    config = settings(tmp_path)
    with TestClient(create_app(config)) as client:
        got = {}
        for path in batch:
            answer = client.post("/v1/validate", content=path.read_bytes(), headers=auth())
            assert answer.status_code == 200, answer.text
            got.update(verdicts_of(answer.json()))
        assert got == expected()
        ready = client.get("/readyz")
        assert ready.status_code == 200
        data = ready.json()["data"]
        assert data["date"] == date.today().isoformat()
        assert "icd10cm" in data["covered"] + data["not_covered"]
        assert "ncci-ptp" in data["not_installed"]
        assert os.environ["XDG_DATA_HOME"] not in ready.text  # no paths


def test_readyz_says_stale_data_without_failing_readiness(tmp_path):
    from fastapi.testclient import TestClient
    from servekit import settings

    from scrubber.serve import create_app

    hcpcs = cms.hcpcs_zip(tmp_path / "january-2025-alpha-numeric-hcpcs-file.zip", 2025, "JAN",
                          cms.HCPCS_JAN_2025)
    add(hcpcs)
    with TestClient(create_app(settings(tmp_path))) as client:
        ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert ready.json()["data"]["ok"] is False and "hcpcs" in ready.json()["data"]["not_covered"]
    assert str(tmp_path) not in ready.text


# -- scrub data's own commands ------------------------------------------------------------------

def test_a_file_no_option_claims_is_refused_with_what_it_looked_like(tmp_path, cms_files):
    claims = ROOT / "fixtures" / "837p-multi.x12"
    odd = tmp_path / "stuff.zip"
    with zipfile.ZipFile(odd, "w") as zf:
        zf.writestr("notes.pdf", b"%PDF")
    for path, words in ((claims, "its first line is 'ISA*00*"),
                        (odd, "it is a zip holding notes.pdf"),
                        (tmp_path / "missing.zip", "no such file")):
        result = CliRunner().invoke(main, ["data", "add", str(cms_files["fy2025"]), str(path)])
        assert result.exit_code == 2, result.output
        assert words in result.stderr and "nothing was added" in result.stderr
        assert "Traceback" not in result.output
    listed = CliRunner().invoke(main, ["data", "list", "--format", "json"])
    assert json.loads(listed.stdout)["releases"] == []  # all or none


@pytest.mark.parametrize("name, make, words", [
    ("icd10cm_codes_2027.txt", lambda p: p.write_text("A000    Cholera due to Vibrio\r\n"),
     "does not mark headers"),
    ("HCPC2025_JAN.zip", lambda p: _zip(p, {"HCPC2025_JAN_ANWEB.xlsx": "PK"}),
     "only the Excel copy"),
    ("MCR_MUE_DMESupplierServices_Eff_01-01-2026.csv",
     lambda p: cms.mue_csv(p, [("E0100", "1", "1 Line Edit", "x")], "DME Supplier"),
     "DME supplier"),
    ("icd10cm_order_2027.txt", lambda p: p.write_text(
        cms.order_text(cms.FY2027) + "00099 I10     7 broken flag\r\n"), "line 8"),
])
def test_a_file_that_is_of_a_kind_but_cannot_be_used_says_why(tmp_path, name, make, words):
    path = tmp_path / name
    make(path)
    result = CliRunner().invoke(main, ["data", "add", str(path)])
    assert result.exit_code == 2, result.output
    assert words in result.stderr and "Traceback" not in result.output


def _zip(path: Path, members: dict[str, str]) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in members.items():
            zf.writestr(name, text)


def test_list_status_remove_and_verify(cms_files, tmp_path):
    add(cms_files["fy2025"], cms_files["april2025"], cms_files["hcpcs-jan2025"])
    again = add(cms_files["fy2025"])
    assert "already installed: icd10cm_order_2025.txt" in again.output
    listed = json.loads(CliRunner().invoke(main, ["data", "list", "--format", "json"]).stdout)
    assert [(r["option"], r["label"], r["effective_from"]) for r in listed["releases"]] == [
        ("icd10cm", "ICD-10-CM FY2025", "2024-10-01"),
        ("icd10cm", "ICD-10-CM April 1, 2025 update", "2025-04-01"),
        ("hcpcs", "HCPCS 2025 January quarter", "2025-01-01")]
    assert listed["bundled"][0]["label"].startswith("ICD-10-CM April 1, 2026 update (bundled")
    text = CliRunner().invoke(main, ["data", "list"]).output
    assert "code-descriptions-in-tabular-order.zip" in text and "(bundled)" in text

    inside = CliRunner().invoke(main, ["data", "status", "--date", "2025-02-03"])
    assert inside.exit_code == 0, inside.output
    assert "icd10cm: 3 release(s) cover 2024-10-01 to 2025-09-30, 2026-04-01 to 2026-09-30; " \
           "gaps 2025-10-01 to 2026-03-31; 2025-02-03 covered" in inside.output
    assert "ncci-ptp: nothing installed" in inside.output
    outside = CliRunner().invoke(main, ["data", "status", "--date", "2025-12-01"])
    assert outside.exit_code == 1 and "2025-12-01 NOT covered" in outside.output

    hcpcs_id = listed["releases"][2]["id"]
    removed = CliRunner().invoke(main, ["data", "remove", hcpcs_id[:6]])
    assert removed.exit_code == 0 and "removed hcpcs: HCPCS 2025 January quarter" in removed.output
    assert CliRunner().invoke(main, ["data", "remove", "ffff0000"]).exit_code == 2
    assert "hcpcs" not in installed_files()

    ok = CliRunner().invoke(main, ["data", "verify"])
    assert ok.exit_code == 0 and "2 installed file(s) checked" in ok.output
    stored = Path(installed_files()["icd10cm"][0])
    stored.chmod(0o644)
    data = bytearray(stored.read_bytes())
    data[-3] = ord("X")  # same size, one byte changed
    stored.write_bytes(bytes(data))
    bad = CliRunner().invoke(main, ["data", "verify"])
    assert bad.exit_code == 1 and "its bytes changed since it was added" in bad.output


def test_status_looks_at_the_dates_of_service_recently_recorded(cms_files, batch):
    add(cms_files["fy2027"])
    recorded = CliRunner().invoke(main, ["check", str(batch[0]), str(batch[4]), "--record",
                                         "--format", "json"])
    assert recorded.exit_code in (0, 1), recorded.output
    status = CliRunner().invoke(main, ["data", "status", "--date", "2026-11-01"])
    assert status.exit_code == 0, status.output
    assert "1 recently recorded service line(s) dated outside them (2020-11-15 to " \
           "2020-11-15)" in status.output


def test_a_folder_store_named_in_scrub_toml(cms_files, batch, tmp_path, monkeypatch):
    shared = tmp_path / "shared-data"
    (tmp_path / "site").mkdir()
    monkeypatch.chdir(tmp_path / "site")
    Path("scrub.toml").write_text(f"[data]\nstore = {json.dumps(str(shared))}\n")
    add(cms_files["fy2027"])
    assert (shared / "catalog.json").is_file()
    assert installed_files() == {}  # the user's own data folder holds nothing
    _, report, _ = check([batch[0]])
    assert verdicts_of(report) == {"FY27-R05": ("rejected", ("dx-not-billable",))}


def test_a_postgresql_store_many_hosts_share(cms_files, batch, pg_schema, tmp_path,
                                             monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.chdir(site)
    Path("scrub.toml").write_text(f"[data]\nstore = {json.dumps(pg_schema)}\n")
    add(cms_files["fy2027"], cms_files["hcpcs-jan2025"], cms_files["fy2025"])
    listed = CliRunner().invoke(main, ["data", "list"])
    assert "ICD-10-CM FY2027" in listed.output and "postgres" in listed.output
    _, report, _ = check([batch[0], batch[2]])
    assert verdicts_of(report) == {"FY27-R05": ("rejected", ("dx-not-billable",)),
                                   "HC-FEB25": ("rejected", ("hcpcs-not-in-force",))}
    # another host: its own cache folder, the same database
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "host2-cache"))
    _, again, _ = check([batch[0], batch[2]])
    assert verdicts_of(again) == verdicts_of(report)
    assert CliRunner().invoke(main, ["data", "verify"]).exit_code == 0
    (hcpcs,) = [e for e in json.loads(CliRunner().invoke(
        main, ["data", "list", "--format", "json"]).stdout)["releases"] if e["option"] == "hcpcs"]
    assert CliRunner().invoke(main, ["data", "remove", hcpcs["id"]]).exit_code == 0
    assert "hcpcs" not in installed_files(pg_schema)


# -- what a run costs and says ------------------------------------------------------------------

def test_installed_files_are_indexed_when_added_and_not_hashed_again(cms_files, monkeypatch):
    add(cms_files["fy2027"], cms_files["hcpcs-jan2025"])
    import scrubber.cache as cache
    import scrubber.data as data

    read = []

    def reading(path, *args, **kwargs):
        read.append(str(path))
        return open(path, *args, **kwargs)

    monkeypatch.setattr(cache, "open", reading, raising=False)  # what file_sha256 reads
    data._LOADED.clear()
    sets = installed_resources().get("codesets")
    assert sets is not None and not sets.built  # the index scrub data add built
    # the stored files' digests were recorded when they were added: not read again
    assert read and not [p for p in read if p.startswith(os.environ["XDG_DATA_HOME"])]
    assert [r.name for r in sets.releases][-1] == "ICD-10-CM FY2027"


def test_a_store_that_changes_is_seen_by_a_running_process(cms_files):
    assert installed_resources().get("codesets") is None
    add(cms_files["fy2027"])
    sets = installed_resources().get("codesets")
    assert sets is not None and "ICD-10-CM FY2027" in [r.name for r in sets.releases]


def test_freshness_for_probes_names_no_paths(cms_files):
    add(cms_files["fy2027"])
    report = freshness_report(day=date(2026, 12, 1))
    addable = [o.name for o in resource_options() if o.recognize or o.bundled]
    assert report == {"date": "2026-12-01", "ok": True, "covered": ["icd10cm"],
                      "not_covered": [], "undated": [],
                      "not_installed": [name for name in addable if name != "icd10cm"]}
    assert {"hcpcs", "cpt", "ncci-ptp", "mue"} <= set(report["not_installed"])
    assert freshness_report(day=date(2028, 1, 1))["not_covered"] == ["icd10cm"]


def test_the_resource_hook_merges_installed_files_before_the_runs_own(cms_files):
    add(cms_files["fy2027"])
    loaded = load_resources({"icd10cm": [str(cms_files["fy2025"])]},
                            installed=installed_files())
    names = [r.name for r in loaded.get("codesets").releases]
    assert names == ["ICD-10-CM April 1, 2026 update", "ICD-10-CM FY2027", "ICD-10-CM FY2025"]
    assert installed_resources(None, Resources.of(codesets=loaded.get("codesets"))).get(
        "codesets") is loaded.get("codesets")


# -- NCCI quarters -------------------------------------------------------------------------------

def test_ncci_quarters_the_newest_listing_a_pair_decides(tmp_path):
    from scrubber.ncci import load_tables

    january = cms.ptp_zip(tmp_path / "medicare-ncci-2024q1-practitioner-ptp-edits-ccipra-"
                                     "v300r0-f1.zip", "ccipra-v300r0-f1.txt",
                          [("99213", "36415", "", "20230101", "*", "0", "x")])
    april = cms.ptp_zip(tmp_path / "medicare-ncci-2024q2-practitioner-ptp-edits-ccipra-"
                                   "v301r0-f1.zip", "ccipra-v301r0-f1.txt",
                        [("99213", "36415", "", "20230101", "20240401", "0", "x")])
    mue_jan = cms.mue_csv(tmp_path / "MCR_MUE_PractitionerServices_Eff_01-01-2024.csv",
                          [("20610", "2", "1 Line Edit", "x")])
    mue_apr = cms.mue_csv(tmp_path / "MCR_MUE_PractitionerServices_Eff_04-01-2024.csv",
                          [("20610", "1", "1 Line Edit", "x")])
    result = CliRunner().invoke(main, ["data", "add", str(april), str(january), str(mue_jan),
                                       str(mue_apr)])
    assert result.exit_code == 0, result.output
    assert "ncci-ptp: NCCI practitioner PTP edits, April 2024 quarter (version 30.1) (in " \
           "force 2024-04-01 to 2024-06-30)" in result.output
    assert "mue: NCCI practitioner MUEs, January 2024 quarter" in result.output
    tables = installed_resources().get("ncci")
    assert tables.ptp("99213", "36415", date(2024, 3, 1)) is not None
    assert tables.ptp("99213", "36415", date(2024, 5, 1)) is None  # deleted in April's file
    assert tables.mue("20610", "837P", date(2024, 2, 1)).units == 2
    assert tables.mue("20610", "837P", date(2024, 5, 1)).units == 1
    same = load_tables(ptp=[january, april], mue=[mue_jan, mue_apr])
    assert same.ptp("99213", "36415", date(2024, 5, 1)) is None


# -- a big run outside every release ----------------------------------------------------------

@pytest.mark.slow
def test_twenty_thousand_claims_outside_every_release_get_one_notice(tmp_path):
    import re

    from servekit import generator

    path = tmp_path / "p20k.x12"
    generator().generate(path, 20_000, "P", seed=25)
    # every date of service moved into FY2024 (2023-10-02 on): no installed release covers it
    shift = date(2026, 1, 2) - date(2023, 10, 2)

    def day(text: bytes) -> bytes:
        when = date(int(text[:4]), int(text[4:6]), int(text[6:]))
        return (when - shift).strftime("%Y%m%d").encode()

    def moved(match: re.Match) -> bytes:
        to = b"-" + day(match[3]) if match[3] else b""
        return match[1] + day(match[2]) + to

    path.write_bytes(re.sub(rb"(\*(?:D8|RD8)\*)(\d{8})(?:-(\d{8}))?", moved, path.read_bytes()))
    result = CliRunner().invoke(main, ["check", str(path), "--no-ledger", "--jobs", "1"])
    assert result.exit_code in (0, 1), result.output
    lines = result.output.splitlines()
    notices = [line for line in lines if line.startswith("NOTICE No installed ICD-10-CM")]
    assert len(notices) == 1 and "FY2024" in notices[0], notices
    assert notices[0].endswith("(20000 claims)")
    # on the claims: only what the nearest release finds wrong with a code (the generator
    # bills M54.5, a category since FY2022, on some), never that the date is not covered
    warned = [line for line in lines if line.strip().startswith("WARN")]
    assert warned and all("codeset-uncovered" in line and "judged by the nearest" in line
                          for line in warned if "codeset" in line)
    (counts,) = [line for line in lines if line.startswith("  20000 claim(s)")]
    with_warnings = int(counts.split(", ")[-1].split(" with warnings")[0].split()[-1])
    assert with_warnings < 20_000 / 4, counts
