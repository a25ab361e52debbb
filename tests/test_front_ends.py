"""The three front ends give the same verdicts; site settings; folders as input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import scrubber
from scrubber.cli import main

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = [ROOT / "fixtures" / "837p-multi.x12", ROOT / "fixtures" / "837i-single.x12",
           *sorted((ROOT / "fixtures" / "rules").glob("96523-*.fail.837p.x12"))[:4],
           *sorted((ROOT / "fixtures" / "rules").glob("96523-*.pass.837p.x12"))[:2]]


def cli_verdicts(path: Path) -> dict[str, str]:
    result = CliRunner().invoke(main, ["check", str(path), "--format", "json", "--no-ledger"])
    report = json.loads(result.output)
    return {c["id"]: c["status"] for ic in report["files"][0]["interchanges"]
            for g in ic["groups"] for t in g["transactions"] for c in t["claims"]}


def test_cli_api_and_watcher_agree(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    expected = {}
    for path in SAMPLES:
        api = {c.claim.id: c.status for c in scrubber.scrub(path).claims}
        assert cli_verdicts(path) == api, path.name
        assert {c.claim.id: c.status for c in scrubber.iter_claims(path)} == api
        expected[path.name] = "rejected" if "rejected" in api.values() else "accepted"
        (inbox / path.name).write_bytes(path.read_bytes())
    subprocess.run([sys.executable, "-m", "scrubber", "watch", str(tmp_path), "--once",
                    "--poll", "--settle", "0.1", "--no-ledger"], check=True,
                   capture_output=True, timeout=120)
    for name, verdict in expected.items():
        assert (tmp_path / verdict / name).is_file(), (name, verdict)


def test_a_folder_is_scanned_and_nothing_in_it_is_skipped_in_silence(tmp_path):
    (tmp_path / "a.x12").write_bytes(SAMPLES[0].read_bytes())
    (tmp_path / "notes.txt").write_text("not a claim file")
    (tmp_path / "b.edi").write_bytes(b"\xef\xbb\xbf\n" + SAMPLES[1].read_bytes())
    (tmp_path / "sub").mkdir()
    (tmp_path / ".hidden").write_text("editor state")
    result = CliRunner().invoke(main, ["check", str(tmp_path), "--format", "json",
                                       "--no-ledger"])
    files = json.loads(result.stdout)["files"]
    assert [Path(f["path"]).name for f in files] == ["a.x12", "b.edi", "notes.txt"]
    assert [f["summary"]["file_problems"] for f in files] == [0, 0, 1]
    assert result.exit_code == 2  # an input that is not an 837 is never a pass
    assert f"not scrubbed: {tmp_path / 'notes.txt'}: no ISA header" in result.stderr
    assert f"{tmp_path / 'sub'}: a folder inside" in result.stderr
    (tmp_path / "notes.txt").unlink()
    read_all = CliRunner().invoke(main, ["check", str(tmp_path), "--no-ledger"])
    assert read_all.exit_code in (0, 1) and "not scrubbed" not in read_all.stderr
    empty = CliRunner().invoke(main, ["check", str(tmp_path / "nothing")])
    assert empty.exit_code == 2


def test_site_settings_from_scrub_toml(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "scrub.toml").write_text(
        '[check]\nformat = "json"\nno-ledger = true\nfail-on = "warn"\n')
    warned = ROOT / "fixtures" / "rules" / "96523-sole-service.fail.837i.x12"
    result = CliRunner().invoke(main, ["check", str(warned)])
    assert result.output.startswith('{"files"')
    assert result.exit_code == 1  # a warning fails with fail-on = warn
    overridden = CliRunner().invoke(main, ["check", str(warned), "--format", "text",
                                           "--fail-on", "reject"])
    assert overridden.exit_code == 0 and overridden.output.startswith(str(warned))


@pytest.mark.parametrize("body, words", [
    ("[check]\nbogus = 1\n", "bogus is not an option"),
    ("[nonsense]\nx = 1\n", "is not a command table"),
    ('[check]\nformat = "pdf"\n', "format"),
    ("[check\n", "site.toml"),
])
def test_bad_settings_are_a_usage_error_naming_file_and_key(tmp_path, body, words):
    config = tmp_path / "site.toml"
    config.write_text(body)
    result = CliRunner().invoke(main, ["--config", str(config), "rules"])
    assert result.exit_code == 2 and words in result.output
    assert "Traceback" not in result.output


def test_missing_config_file_is_an_error(tmp_path):
    result = CliRunner().invoke(main, ["--config", str(tmp_path / "none.toml"), "rules"])
    assert result.exit_code == 2 and "no such configuration file" in result.output


def _stderr_on_a_terminal(args: list[str], env: dict) -> str:
    import os
    import pty

    leader, follower = pty.openpty()
    proc = subprocess.run([sys.executable, "-m", "scrubber", *args], stdout=subprocess.DEVNULL,
                          stderr=follower, env=env, timeout=120)
    os.close(follower)
    out = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    os.close(leader)
    assert proc.returncode == 0
    # a run that takes over a second on a loaded machine shows its status line, redrawn
    # with carriage returns and cleared at the end: what stays is the lines said for good
    lines = out.decode().replace("\r\n", "\n").split("\n")
    return "".join(line.rpartition("\r")[2] + "\n" for line in lines
                   if line.rpartition("\r")[2].strip())


def test_a_person_at_a_terminal_is_told_where_accepted_claims_were_recorded(tmp_path):
    import os

    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path)}
    fixture = str(Path(__file__).resolve().parent.parent / "fixtures" / "837p-single.x12")
    said = _stderr_on_a_terminal(["check", fixture, "--record"], env)
    assert "recorded in the claim ledger" in said and str(tmp_path) in said
    assert _stderr_on_a_terminal(["check", fixture], env) == ""  # a check records nothing
    assert _stderr_on_a_terminal(["check", fixture, "--no-ledger"], env) == ""
