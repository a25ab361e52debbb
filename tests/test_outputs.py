"""Outputs people can rely on: -o is the report, files whole or absent, clear failures.

Every report, acknowledgement and export is written under a temporary name and
renamed (scrubber.files.open_private); a full disk or a folder that cannot be
written is one line naming the path, exit 2, and no partial file under a final
name. Inputs that share a file name get distinct acknowledgements, and a rerun
into the same folder leaves no earlier run's acknowledgement beside the new ones.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from servekit import generated
from x12text import claim_837p, interchange

from scrubber.cli import main
from scrubber.files import OutputError, open_private

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "837p-multi.x12"


def scrub_run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scrubber", *map(str, args)],
                          capture_output=True, text=True, timeout=600, cwd=cwd)


def one_line_error(result: subprocess.CompletedProcess, *names: str) -> str:
    """The run failed with exit 2 and a single line on stderr naming each of ``names``."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert all(name in lines[0] for name in names), lines
    return lines[0]


# -- -o / --output and the format ---------------------------------------------------------

@pytest.mark.parametrize(("name", "starts"), [
    ("r.html", "<!DOCTYPE html>"), ("r.json", "{"), ("r.csv", "file,"), ("r.txt", "")])
def test_o_is_the_report_file_and_its_extension_the_format(tmp_path, name, starts):
    target = tmp_path / name
    run = CliRunner().invoke(main, ["check", str(FIXTURE), "--no-ledger", "-o", str(target)])
    assert run.exit_code in (0, 1), run.output
    assert target.is_file() and run.stdout == ""  # the report went to the file, not stdout
    text = target.read_text()
    assert text.startswith(starts)
    if name.endswith(".txt"):
        assert not text.startswith(("{", "<", "file,")) and "claim" in text
    if name.endswith(".json"):
        json.loads(text)
    beside = ["r.claims.csv"] if name.endswith(".csv") else []  # the per-claim sheet
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, *beside])  # no folder


def test_format_wins_over_the_extension(tmp_path):
    target = tmp_path / "r.html"
    run = CliRunner().invoke(main, ["check", str(FIXTURE), "--no-ledger", "--format", "json",
                                    "--output", str(target)])
    assert run.exit_code in (0, 1), run.output
    json.loads(target.read_text())


def test_the_acknowledgement_folder_has_a_long_flag_only():
    options = {name for param in main.commands["check"].params
               for name in getattr(param, "opts", [])}
    assert "-o" in options and "--277ca" in options
    ack = next(p for p in main.commands["check"].params if "--277ca" in p.opts)
    assert ack.opts == ["--277ca"] and not ack.secondary_opts


def test_a_missing_or_unwritable_output_folder_is_one_line_exit_2(tmp_path):
    missing = tmp_path / "nowhere" / "r.html"
    one_line_error(scrub_run("check", FIXTURE, "--no-ledger", "-o", missing), str(missing))
    assert not missing.parent.exists()
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    blocked = tmp_path / "file"
    blocked.write_text("")
    one_line_error(scrub_run("check", FIXTURE, "--no-ledger", "--277ca", blocked / "acks"),
                   str(blocked / "acks"))
    if os.geteuid() == 0:  # root writes anywhere the mode forbids: make it immutable
        if subprocess.run(["chattr", "+i", str(locked)], capture_output=True).returncode:
            return
    try:
        one_line_error(scrub_run("check", FIXTURE, "--no-ledger", "-o", locked / "r.txt"),
                       str(locked / "r.txt"))
        one_line_error(scrub_run("check", FIXTURE, "--no-ledger", "--277ca", locked),
                       str(locked))
        assert list(locked.iterdir()) == []
    finally:
        subprocess.run(["chattr", "-i", str(locked)], capture_output=True)


def test_ledger_export_o_is_whole_and_a_missing_folder_is_exit_2(tmp_path):
    ledger = tmp_path / "ledger.sqlite"
    assert CliRunner().invoke(main, ["check", str(FIXTURE), "--ledger", str(ledger),
                                     "--record", "-q"]).exit_code in (0, 1)
    missing = tmp_path / "nowhere" / "dump.jsonl"
    one_line_error(scrub_run("ledger", "export", "--ledger", ledger, "-o", missing),
                   str(missing))
    dump = tmp_path / "dump.jsonl"
    run = CliRunner().invoke(main, ["ledger", "export", "--ledger", str(ledger),
                                    "--output", str(dump)])
    assert run.exit_code == 0 and dump.read_text().count("\n") > 1
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


# -- whole or absent ----------------------------------------------------------------------

def test_open_private_is_whole_or_absent(tmp_path):
    target = tmp_path / "r.txt"
    target.write_text("the earlier report\n")
    with pytest.raises(RuntimeError), open_private(target) as out:
        out.write("half a report")
        raise RuntimeError("the writer failed midway")
    assert target.read_text() == "the earlier report\n"
    unfinished = open_private(target)
    unfinished.write("never closed")
    del unfinished
    assert target.read_text() == "the earlier report\n"
    with open_private(target) as out:
        out.write("new\n")
        assert target.read_text() == "the earlier report\n"  # not under the name until closed
    assert target.read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.txt"]


def fill(folder: Path, leave: int) -> None:
    """Fill ``folder``'s disk but ``leave`` bytes."""
    stats = os.statvfs(folder)
    free = stats.f_bavail * stats.f_frsize
    (folder / "filler").write_bytes(b"\0" * max(0, free - leave))


def no_partial(folder: Path, finals: dict[str, str]) -> None:
    """Only the filler, and each final name with exactly its earlier content."""
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted(["filler", *finals]), names
    for name, content in finals.items():
        assert (folder / name).read_text() == content


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> Path:
    return generated(tmp_path_factory.mktemp("big") / "big.x12", 300, seed=5)


def test_a_full_disk_while_writing_the_report_is_exit_2_and_no_partial_file(tmpfs, big):
    finals = {f"r.{ext}": f"the earlier {ext} report\n" for ext in ("txt", "json", "html", "csv")}
    for name, content in finals.items():
        (tmpfs / name).write_text(content)
    fill(tmpfs, 16 << 10)  # each report of 300 claims is larger than this
    for name in finals:
        # a CSV report is two sheets (r.csv, r.claims.csv): either may meet the full disk
        named = str(tmpfs / name) if not name.endswith(".csv") else str(tmpfs / "r.")
        one_line_error(scrub_run("check", big, "--no-ledger", "-o", tmpfs / name),
                       named, "No space left")
        no_partial(tmpfs, finals)


def test_a_full_disk_while_writing_acknowledgements_is_exit_2_and_no_partial_file(
        tmpfs, big):
    acks = tmpfs / "acks"
    acks.mkdir()
    earlier = {"big.x12.277ca.x12": "ISA*the earlier 277CA~\n"}
    for name, content in earlier.items():
        (acks / name).write_text(content)
    fill(tmpfs, 16 << 10)  # the 277CA of 300 claims is larger than this
    error = one_line_error(scrub_run("check", big, "--no-ledger", "-q", "--277ca", acks,
                                     "--999"), "No space left")
    assert str(acks / "big.x12.277ca.x12") in error
    assert sorted(p.name for p in acks.iterdir()) == sorted(earlier)
    assert (acks / "big.x12.277ca.x12").read_text() == earlier["big.x12.277ca.x12"]


def test_a_full_disk_under_the_ledger_is_exit_2_and_records_nothing(tmpfs, big):
    from scrubber.ledger import open_store

    ledger = tmpfs / "ledger.sqlite"
    open_store(ledger).close()
    fill(tmpfs, 8 << 10)  # no room for the journal: the ledger cannot even be opened
    error = one_line_error(scrub_run("check", big, "--record", "--ledger", ledger, "-q"),
                           str(ledger))
    assert "space" in error and "not a usable ledger" not in error, error
    (tmpfs / "filler").unlink()
    fill(tmpfs, 64 << 10)  # room to open it, not to record 300 claims
    error = one_line_error(scrub_run("check", big, "--record", "--ledger", ledger, "-q"),
                           str(ledger))
    assert "full" in error or "space" in error, error
    (tmpfs / "filler").unlink()
    with open_store(ledger) as store:
        assert store.submissions() == []


# -- acknowledgement names ----------------------------------------------------------------

def test_inputs_sharing_a_name_get_distinct_acknowledgements(tmp_path):
    one, two = tmp_path / "d1", tmp_path / "d2"
    one.mkdir(), two.mkdir()
    (one / "a.x12").write_text(interchange(claim_837p("FIRST1")))
    (two / "a.x12").write_text(interchange(claim_837p("SECOND2"), control="000000002"))
    acks = tmp_path / "acks"
    run = CliRunner().invoke(main, ["check", str(one / "a.x12"), str(two / "a.x12"),
                                    "--no-ledger", "-q", "--277ca", str(acks)])
    assert run.exit_code == 0, run.output
    assert sorted(p.name for p in acks.iterdir()) == ["d1__a.x12.277ca.x12",
                                                      "d2__a.x12.277ca.x12"]
    assert "TRN*2*FIRST1~" in (acks / "d1__a.x12.277ca.x12").read_text()
    assert "TRN*2*SECOND2~" in (acks / "d2__a.x12.277ca.x12").read_text()


def test_a_rerun_leaves_no_earlier_acknowledgement_beside_the_new_ones(tmp_path):
    batch = tmp_path / "batch.x12"
    broken = interchange(claim_837p("RERUN1")).replace("IEA*1*000000001", "IEA*1*000000009")
    batch.write_text(broken)
    acks = tmp_path / "acks"
    other = acks / "other.x12.ta1.x12"  # another input's: left alone
    args = ["check", str(batch), "--no-ledger", "-q", "--277ca", str(acks), "--999"]
    CliRunner().invoke(main, args)
    other.write_text("ISA*another input's TA1~")
    assert (acks / "batch.x12.ta1.x12").is_file()
    batch.write_text(interchange(claim_837p("RERUN1")))  # the envelope mended
    assert CliRunner().invoke(main, args[:-1]).exit_code == 0  # and no --999 this time
    assert sorted(p.name for p in acks.iterdir()) == ["batch.x12.277ca.x12",
                                                      "other.x12.ta1.x12"]


def test_output_errors_name_the_final_path_not_a_temporary_one(tmp_path):
    error = OutputError(28, "No space left on device", str(tmp_path / "r.html"))
    assert str(error) == f"cannot write {tmp_path / 'r.html'}: No space left on device"


def test_batch_acks_hold_only_this_run_and_tell_shared_names_apart(tmp_path):
    from scrubber.spark.job import assemble_acks
    from scrubber.spark.pieces import Piece

    acks = tmp_path / "out" / "acks"
    parts = acks / ".parts"
    parts.mkdir(parents=True)
    (acks / "old.x12.ta1.x12").write_text("ISA*an earlier run's TA1~")
    pieces = [Piece(0, 0, str(tmp_path / "d1" / "a.x12"), 0),
              Piece(1, 0, str(tmp_path / "d1" / "a.x12"), 1),
              Piece(2, 1, str(tmp_path / "d2" / "a.x12"), 0)]
    for piece in pieces:
        (parts / f"{piece.name}.277ca.x12").write_text(f"part {piece.id}\n")
    written = assemble_acks(pieces, parts, acks)
    assert sorted(p.name for p in acks.iterdir()) == ["d1__a.x12.277ca.x12",
                                                      "d2__a.x12.277ca.x12"]
    assert (acks / "d1__a.x12.277ca.x12").read_text() == "part 0\npart 1\n"
    assert sorted(written) == sorted(str(p) for p in acks.iterdir())


def test_the_batch_install_hint_names_pyspark_not_a_stranger(tmp_path, monkeypatch):
    from scrubber.spark.run import BatchError, run_batch

    monkeypatch.setitem(sys.modules, "pyspark", None)  # not installed
    monkeypatch.setitem(sys.modules, "pyspark.sql", None)
    with pytest.raises(BatchError) as raised:
        run_batch([str(FIXTURE)], tmp_path / "out")
    assert "pip install pyspark" in str(raised.value)
    assert "scrubber[spark]" not in str(raised.value)  # another project on the index
    help_text = CliRunner().invoke(main, ["batch", "--help"]).output
    assert "pip install pyspark" in help_text and "scrubber[spark]" not in help_text


# -- scrub.toml ---------------------------------------------------------------------------

def test_scrub_toml_is_found_upward_up_to_a_repository_top(tmp_path, monkeypatch):
    from scrubber.options import find_config, read_config

    site = tmp_path / "site"
    deep = site / "claims" / "2026-12-01"
    deep.mkdir(parents=True)
    (site / "scrub.toml").write_text('[scrub]\nprofile = "payers/acme.xml"\n')
    assert find_config(deep) == site / "scrub.toml"
    monkeypatch.chdir(deep)
    assert read_config()["scrub"]["profile"] == str(site / "payers" / "acme.xml")
    (site / "claims" / ".git").mkdir()  # a repository inside the site: its top is the end
    assert find_config(deep) is None
    run = CliRunner().invoke(main, ["--config", str(site / "scrub.toml"), "check",
                                    str(FIXTURE), "--no-ledger", "-q"])
    assert run.exit_code == 2 and "acme.xml" in run.output  # the file it names, from its folder


@pytest.mark.parametrize(("toml", "says"), [
    ('[chek]\nworkers = 2\n', "did you mean check?"),
    ('[scrub]\nignroe = ["snip-npi"]\n', "did you mean ignore?"),
    ('[watch]\nack-sendr = "ACME"\n', "did you mean ack-sender?"),
    ('[check]\nignore = "snip-npi"\n', 'give a list'),
    ('[scrub]\nignore = "snip-npi"\n', "give a list of rule ids"),
])
def test_a_misspelt_scrub_toml_says_what_was_meant(tmp_path, monkeypatch, toml, says):
    (tmp_path / "scrub.toml").write_text(toml)
    monkeypatch.chdir(tmp_path)
    run = CliRunner().invoke(main, ["check", str(FIXTURE), "--no-ledger", "-q"])
    assert run.exit_code == 2 and says in run.output, run.output
    assert "iterable" not in run.output


# -- inputs -------------------------------------------------------------------------------

def test_recursive_searches_every_folder_inside(tmp_path):
    top = tmp_path / "claims"
    (top / "2026" / "12").mkdir(parents=True)
    (top / ".hidden").mkdir()
    (top / "top.x12").write_text(interchange(claim_837p("TOP1")))
    (top / "2026" / "12" / "deep.x12").write_text(
        interchange(claim_837p("DEEP1"), control="000000002"))
    (top / ".hidden" / "skip.x12").write_text(interchange(claim_837p("HIDDEN1")))
    (top / "loop").symlink_to(top)  # never followed: no loop
    flat = scrub_run("check", top, "--no-ledger", "--format", "json")
    assert [f["path"] for f in json.loads(flat.stdout)["files"]] == [str(top / "top.x12")]
    assert "2026: a folder inside" in flat.stderr and "--recursive" in flat.stderr
    deep = scrub_run("check", top, "--no-ledger", "--format", "json", "--recursive")
    assert deep.returncode == 0, deep.stderr
    assert [f["path"] for f in json.loads(deep.stdout)["files"]] == [  # files, then folders
        str(top / "top.x12"), str(top / "2026" / "12" / "deep.x12")]
    assert "loop: a folder inside" in deep.stderr and "not followed" in deep.stderr


# -- an 835 is not an 837, as a PDF is not -------------------------------------------------

REMITTANCE = FIXTURE.parent / "broken-835.x12"
MIXED = FIXTURE.parent / "broken-two-interchanges-first-bad.x12"  # an 835, then an 837P


def test_an_835_is_not_an_837_and_not_a_file_to_fix(tmp_path):
    acks = tmp_path / "acks"
    run = scrub_run("check", REMITTANCE, FIXTURE.parent / "837p-single.x12", "--no-ledger",
                    "--format", "json", "--277ca", acks, "--999")
    assert run.returncode == 2, run.stderr  # as for a PDF: an input not read at all
    report = json.loads(run.stdout)
    first = report["files"][0]
    assert first["verdict"] == "not an 837" and first["summary"]["envelope_problems"] == 0
    assert [p["code"] for p in first["problems"]] == ["file-not-837"]
    assert "835 remittance advice" in first["problems"][0]["message"]
    assert report["total"]["envelope_problems"] == 0
    assert report["total"]["verdict"] == "1 file not scrubbed"  # not "fix 1 file"
    assert "not scrubbed" in run.stderr and "835" in run.stderr
    assert sorted(p.name for p in acks.iterdir()) == [  # no 999 answering the 835
        "837p-single.x12.277ca.x12", "837p-single.x12.999.x12"]
    text = scrub_run("check", REMITTANCE, "--no-ledger").stdout
    assert "verdict: not an 837" in text and "fix the envelope" not in text


def test_a_file_with_an_837_beside_an_835_is_still_scrubbed():
    run = scrub_run("check", MIXED, "--no-ledger", "--format", "json")
    file = json.loads(run.stdout)["files"][0]
    assert file["summary"]["claims"] == 1 and file["summary"]["file_problems"] == 0
    assert file["verdict"] != "not an 837"


def test_the_watcher_files_an_835_under_failed_without_a_999(tmp_path):
    root = tmp_path / "root"
    (root / "inbox").mkdir(parents=True)
    (root / "inbox" / "remit.x12").write_bytes(REMITTANCE.read_bytes())
    run = subprocess.run([sys.executable, "-m", "scrubber", "watch", str(root), "--once",
                          "--poll", "--settle", "0", "--workers", "1", "--no-ledger"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert [p.name for p in (root / "failed").iterdir()] == ["remit.x12"]
    assert not list((root / "rejected").iterdir())
    assert not [p for p in (root / "reports").iterdir() if p.name.endswith(".999.x12")]


def test_serve_answers_an_835_as_not_an_837(tmp_path):
    from fastapi.testclient import TestClient
    from servekit import auth, settings

    from scrubber.serve import create_app

    with TestClient(create_app(settings(tmp_path))) as service:
        answer = service.post("/v1/submissions", content=REMITTANCE.read_bytes(),
                              headers=auth())
        assert answer.status_code == 400, answer.text
        body = answer.json()
        assert body["error"] == "not_an_837" and body["verdict"] == "failed"
        assert "835" in body["problems"][0]["message"]
        checked = service.post("/v1/validate", content=REMITTANCE.read_bytes(), headers=auth())
        assert checked.status_code == 400 and checked.json()["error"] == "not_an_837"


# -- the watcher's report names --------------------------------------------------------------

def test_watcher_report_names_are_readable_and_unique(tmp_path):
    import re

    from scrubber.options import ScrubOptions
    from scrubber.watch import Watcher, WatchSettings

    root = tmp_path / "root"
    settings = WatchSettings(root=root, workers=1, settle_seconds=0, use_events=False,
                             options=ScrubOptions(ledger=None), reports=("json",))
    for n in range(3):  # the same name three times: three sets of reports, none overwritten
        (root / "inbox").mkdir(parents=True, exist_ok=True)
        (root / "inbox" / "a.x12").write_text(
            interchange(claim_837p(f"SAME{n}"), control=f"00000000{n + 1}"))
        Watcher(settings).run(once=True)
    assert sorted(p.name for p in (root / "accepted").iterdir()) == [
        "a-2.x12", "a-3.x12", "a.x12"]
    reports = sorted(p.name for p in (root / "reports").iterdir() if p.suffix == ".json")
    assert len(reports) == 3, reports
    pattern = re.compile(r"a\.x12\.\d{8}-\d{6}(-\d+)?\.json")
    assert all(pattern.fullmatch(name) for name in reports), reports  # no nanosecond id
    claims = {json.loads((root / "reports" / name).read_text())["files"][0]["interchanges"][0]
              ["groups"][0]["transactions"][0]["claims"][0]["id"] for name in reports}
    assert claims == {"SAME0", "SAME1", "SAME2"}


# -- GET /v1/submissions ---------------------------------------------------------------------

def test_serve_lists_a_clients_submissions_in_pages_without_phi(tmp_path):
    from fastapi.testclient import TestClient
    from servekit import auth, settings

    from scrubber.serve import create_app

    def body(n: int) -> bytes:  # claims of their own: none a duplicate of another
        return interchange(claim_837p(f"LIST{n}", member=f"MEMBERID{n}"),
                           control=f"00000000{n + 1}").encode()

    with TestClient(create_app(settings(tmp_path))) as service:
        made = []
        for n in range(3):
            answer = service.post("/v1/submissions", headers={**auth(), "Idempotency-Key":
                                                              f"list-{n}"}, content=body(n))
            assert answer.status_code == 201, answer.text
            made.append(answer.json()["id"])
        theirs = service.post("/v1/submissions", headers=auth("beta"),
                              content=body(5)).json()["id"]
        assert service.get("/v1/submissions").status_code == 401
        first = service.get("/v1/submissions?limit=2", headers=auth())
        assert first.status_code == 200, first.text
        page = first.json()
        assert [s["id"] for s in page["submissions"]] == made[::-1][:2]  # newest first
        item = page["submissions"][0]
        assert item["state"] == "done" and item["verdict"] == "accepted"
        assert item["counts"]["claims"] == 1 and item["links"]["self"].endswith(made[2])
        rest = service.get(page["next"], headers=auth()).json()
        assert [s["id"] for s in rest["submissions"]] == [made[0]] and rest["next"] is None
        everything = service.get("/v1/submissions", headers=auth()).text
        assert theirs not in everything  # another client's are not listed
        for phi in ("MEMBERID", "LIST0", "TESTER"):
            assert phi not in everything
        listed_by_beta = service.get("/v1/submissions", headers=auth("beta")).json()
        assert [s["id"] for s in listed_by_beta["submissions"]] == [theirs]
        assert service.get(f"/v1/submissions?before={theirs}", headers=auth()).status_code \
            == 404
        assert service.get("/v1/submissions?limit=0", headers=auth()).status_code == 422
        assert service.get("/v1/submissions?limt=2", headers=auth()).status_code == 422
        assert set(service.put("/v1/submissions", headers=auth()).headers["Allow"].split(", ")) \
            == {"GET", "POST"}


# -- zip and gzip inputs -------------------------------------------------------------------

def test_zip_and_gzip_inputs_are_scrubbed_member_by_member(tmp_path):
    import gzip
    import zipfile

    day = tmp_path / "day.zip"
    with zipfile.ZipFile(day, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("in/a.x12", interchange(claim_837p("ZIPA1")))
        archive.writestr("b.x12", interchange(claim_837p("ZIPB1"), control="000000002"))
        archive.writestr("__MACOSX/._a.x12", "resource fork")  # never an input
        archive.writestr("in/", "")
    packed = tmp_path / "c.x12.gz"
    packed.write_bytes(gzip.compress(interchange(claim_837p("GZC1"),
                                                 control="000000003").encode()))
    acks = tmp_path / "acks"
    run = scrub_run("check", day, packed, "--no-ledger", "--format", "json", "--277ca", acks)
    assert run.returncode == 0, run.stderr
    files = json.loads(run.stdout)["files"]
    assert [f["path"] for f in files] == [f"{day}!in/a.x12", f"{day}!b.x12", str(packed)]
    assert [f["interchanges"][0]["groups"][0]["transactions"][0]["claims"][0]["id"]
            for f in files] == ["ZIPA1", "ZIPB1", "GZC1"]
    assert sorted(p.name for p in acks.iterdir()) == [
        "a.x12.277ca.x12", "b.x12.277ca.x12", "c.x12.gz.277ca.x12"]


def test_a_damaged_member_is_not_scrubbed_and_the_others_are(tmp_path):
    import zipfile

    day = tmp_path / "day.zip"
    good = interchange(claim_837p("GOOD1"))
    with zipfile.ZipFile(day, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("bad.x12", good.replace("GOOD1", "BAD01"))
        archive.writestr("good.x12", good)
    data = bytearray(day.read_bytes())
    at = data.index(b"BAD01")
    data[at:at + 5] = b"EVIL1"  # the stored bytes no longer match their CRC
    day.write_bytes(bytes(data))
    run = scrub_run("check", day, "--no-ledger", "--format", "json")
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
    assert f"not scrubbed: {day}!bad.x12 cannot be read" in run.stderr
    files = {f["path"]: f for f in json.loads(run.stdout)["files"]}
    assert files[f"{day}!good.x12"]["summary"]["accepted"] == 1
    assert files[f"{day}!bad.x12"]["verdict"] == "not an 837"
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    run = scrub_run("check", broken, "--no-ledger", "-q")
    assert run.returncode == 2 and "not a readable zip archive" in run.stderr


def test_a_decompression_bomb_is_refused_in_flat_memory(tmp_path):
    import gzip
    import zipfile

    zeros = b"\0" * (1 << 20)
    bomb_gz = tmp_path / "bomb.x12.gz"
    with gzip.open(bomb_gz, "wb") as out:
        for _ in range(256):  # 256 MiB of nothing from some 250 KiB
            out.write(zeros)
    bomb_zip = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb_zip, "w", zipfile.ZIP_DEFLATED) as archive, \
            archive.open("big.x12", "w", force_zip64=True) as member:
        for _ in range(256):
            member.write(zeros)
    probe = Path(__file__).resolve().parent / "peak_rss.py"
    run = subprocess.run([sys.executable, str(probe), "check", str(bomb_gz), str(bomb_zip),
                          "--no-ledger", "-q"], capture_output=True, text=True, timeout=600)
    assert run.returncode == 2, run.stderr
    assert run.stderr.count("refused as a decompression bomb") == 2, run.stderr
    peak_kib = int(run.stderr.rsplit("maxrss_kib", 1)[1])
    assert peak_kib < 160 << 10, run.stderr  # the 256 MiB were never held


def test_profile_show_o_writes_the_profile_file(tmp_path):
    target = tmp_path / "my-payer.xml"
    run = CliRunner().invoke(main, ["profile", "show", "-o", str(target)])
    assert run.exit_code == 0 and run.output == ""
    assert target.read_text().startswith("<?xml")
    one_line_error(scrub_run("profile", "show", "--output", tmp_path / "no" / "p.xml"),
                   str(tmp_path / "no" / "p.xml"))


def test_a_rerun_into_the_input_folder_does_not_scrub_its_own_outputs(tmp_path):
    claims = tmp_path / "claims"
    claims.mkdir()
    (claims / "a.x12").write_text(interchange(claim_837p("OWN1")))
    args = ["check", claims, "--recursive", "--no-ledger", "-o", claims / "report.json",
            "--277ca", claims / "acks", "--999"]
    for _ in range(2):  # the second run finds the first one's report and acknowledgements
        run = scrub_run(*args)
        assert run.returncode == 0, run.stderr
        report = json.loads((claims / "report.json").read_text())
        assert [f["path"] for f in report["files"]] == [str(claims / "a.x12")]


def test_the_watcher_takes_a_zip_member_by_member(tmp_path):
    import zipfile

    root = tmp_path / "root"
    (root / "inbox").mkdir(parents=True)
    with zipfile.ZipFile(root / "inbox" / "day.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a.x12", interchange(claim_837p("WZA1")))
        archive.writestr("b.x12", interchange(claim_837p("WZB1"), control="000000002"))
    run = subprocess.run([sys.executable, "-m", "scrubber", "watch", str(root), "--once",
                          "--poll", "--settle", "0", "--workers", "1", "--no-ledger",
                          "--report", "json"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert [p.name for p in (root / "accepted").iterdir()] == ["day.zip"]
    names = sorted(p.name for p in (root / "reports").iterdir())
    (report,) = [n for n in names if n.endswith(".json")]
    files = json.loads((root / "reports" / report).read_text())["files"]
    assert [f["path"] for f in files] == ["day.zip!a.x12", "day.zip!b.x12"]
    stem = report.removesuffix(".json")
    assert f"{stem}!a.x12.277ca.x12" in names and f"{stem}!b.x12.277ca.x12" in names
