"""`scrub ledger list/show/forget/prune/stats/export/import/new-key`, on both stores."""

from __future__ import annotations

import importlib.util
import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from scrubber.cli import main
from scrubber.ledger import SCHEMA_VERSION, open_store
from scrubber.model import ClaimRecord, read
from scrubber.rules.findings import ScrubbedClaim

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("rules_fixture_build",
                                               ROOT / "fixtures" / "rules" / "build.py")
build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build)
VISIT = build.line("99213", charge="100")


def after_today() -> str:
    """A UTC date after every claim recorded so far, even across midnight."""
    return (datetime.now(UTC) + timedelta(days=2)).date().isoformat()


def accepted(*claims, control: str) -> list[ScrubbedClaim]:
    data = build.interchange("837p", [list(claims)], control=control).encode()
    return [ScrubbedClaim(e, ()) for e in read(data) if isinstance(e, ClaimRecord)]


@pytest.fixture
def filled(ledger_target):
    """A ledger with two submissions: EM-1 and PF-1 (Alex), then EM-2 (Sam)."""
    with open_store(ledger_target) as store:
        store.record("EXAMPLESUBM:000000001", accepted(
            build.claim("EM-1", [VISIT]), build.claim("PF-1", [build.CLEAN]),
            control="000000001"))
        store.record("EXAMPLESUBM:000000002", accepted(
            build.claim("EM-2", [VISIT], patient=build.SAM), control="000000002"))
    return ledger_target


def scrub(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        result.exception
    return result.exit_code, result.output


def ledger(target: str, *args: str) -> tuple[int, str]:
    return scrub("ledger", *args, "--ledger", target)


def no_patient_in(text: str) -> bool:
    return not any(part in text for person in (build.ALEX, build.SAM) for part in person)


def test_list_in_text_and_json(filled):
    code, out = ledger(filled, "list", "--format", "json")
    assert code == 0
    rows = json.loads(out)["submissions"]
    assert [(r["submission"], r["sender"], r["claims"], r["lines"]) for r in rows] == [
        ("EXAMPLESUBM:000000001", "EXAMPLESUBM", 2, 2),
        ("EXAMPLESUBM:000000002", "EXAMPLESUBM", 1, 1)]
    code, text = ledger(filled, "list")
    assert code == 0 and "EXAMPLESUBM:000000002" in text and no_patient_in(text + out)


def test_show_a_claim(filled):
    code, out = ledger(filled, "show", "PF-1", "--format", "json")
    assert code == 0
    (claim,) = json.loads(out)["claims"]
    assert (claim["claim_id"], claim["payer"], claim["frequency"], claim["submission"]) == \
        ("PF-1", "96523", "1", "EXAMPLESUBM:000000001")
    assert [(x["procedure"], x["units"], x["service_date"]) for x in claim["lines"]] == \
        [("96523", "1", "2026-11-02")]
    code, text = ledger(filled, "show", "PF-1")
    assert code == 0 and "96523" in text and no_patient_in(text)
    code, text = ledger(filled, "show", "NOPE-9")
    assert code == 1 and "no claim NOPE-9" in text


def test_forget_a_submission_and_a_claim(filled):
    code, out = ledger(filled, "forget", "EXAMPLESUBM:000000002", "--dry-run", "--format",
                       "json")
    assert code == 0 and json.loads(out) == {"forgotten_claims": 1, "dry_run": True}
    code, out = ledger(filled, "forget", "--claim", "PF-1", "--dry-run")
    assert code == 0 and "would forget 1 claim(s) of claim PF-1" in out and "dry run" in out
    with open_store(filled) as store:  # a dry run removes nothing
        assert store.stats()["claims"] == 3 and store.claims("PF-1") != []
    code, out = ledger(filled, "forget", "EXAMPLESUBM:000000002", "--format", "json")
    assert code == 0 and json.loads(out) == {"forgotten_claims": 1, "dry_run": False}
    code, out = ledger(filled, "forget", "--claim", "PF-1", "--npi", "0000000000")
    assert code == 0 and "forgot 0 claim(s)" in out  # another provider's PF-1: none
    code, out = ledger(filled, "forget", "--claim", "PF-1")
    assert code == 0 and "forgot 1 claim(s) of claim PF-1" in out
    with open_store(filled) as store:
        assert [c.sent.claim_id for c in store.claims("EM-1")] == ["EM-1"]
        assert store.claims("PF-1") == [] and store.claims("EM-2") == []
    assert ledger(filled, "forget")[0] == 2
    assert ledger(filled, "forget", "X:1", "--claim", "PF-1")[0] == 2


def test_release_held_claims(ledger_target):
    """By hand, whoever holds them: the hold of a ledger older than recordings, say."""
    with open_store(ledger_target) as store:
        recording = store.begin_recording()
        with store.deciding((), recording=recording) as decision:
            for claim in accepted(build.claim("EM-1", [VISIT]), control="000000001"):
                decision.record("EXAMPLESUBM:000000001", claim)
        code, out = ledger(ledger_target, "list", "--format", "json")
        listed = json.loads(out)
        assert listed["submissions"][0]["held"] == 1
        assert [(r["id"], r["state"], r["held"]) for r in listed["recordings"]] == [
            (recording, "open", 1)]
        code, out = ledger(ledger_target, "release", "EXAMPLESUBM:000000001", "--format",
                           "json")
        assert code == 0 and json.loads(out) == {"released_claims": 1}
        code, out = ledger(ledger_target, "release", "EXAMPLESUBM:000000001")
        assert code == 0 and "released 0 held claim(s)" in out
    code, out = ledger(ledger_target, "show", "EM-1", "--format", "json")
    assert json.loads(out)["claims"][0]["submission"] == "EXAMPLESUBM:000000001"
    code, out = ledger(ledger_target, "list", "--format", "json")
    assert json.loads(out)["recordings"] == []


def test_prune_and_stats(filled):
    code, out = ledger(filled, "stats", "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert (data["claims"], data["lines"], data["submissions"], data["schema_version"]) == \
        (3, 3, 2, SCHEMA_VERSION)
    code, out = ledger(filled, "prune", "--before", "2000-01-01")
    assert code == 0 and "pruned 0 claim(s)" in out
    code, out = ledger(filled, "prune", "--before", after_today(), "--dry-run")
    assert code == 0 and "would prune 3 claim(s)" in out
    code, out = ledger(filled, "stats")
    assert code == 0 and "claims: 3" in out  # the dry run removed nothing
    code, out = ledger(filled, "prune", "--before", after_today(), "--format", "json")
    assert code == 0 and json.loads(out)["pruned_claims"] == 3
    code, out = ledger(filled, "stats")
    assert code == 0 and "claims: 0" in out
    assert ledger(filled, "prune", "--before", "last week")[0] == 2


def test_export_import_round_trip_and_key_check(filled, tmp_path, monkeypatch):
    dump = tmp_path / "ledger.jsonl"
    code, out = ledger(filled, "export", "-o", str(dump), "--format", "json")
    assert code == 0 and json.loads(out)["exported_claims"] == 3
    assert stat.S_IMODE(dump.stat().st_mode) == 0o600
    header, *claims = [json.loads(x) for x in dump.read_text().splitlines()]
    assert header["scrubber_ledger"] == SCHEMA_VERSION and len(claims) == 3
    assert no_patient_in(dump.read_text())
    # into a fresh SQLite ledger under the same key
    if filled.endswith(".sqlite"):
        monkeypatch.setenv("SCRUBBER_LEDGER_KEY_FILE", filled + ".key")
    copy = str(tmp_path / "copy.sqlite")
    code, out = ledger(copy, "import", str(dump))
    assert code == 0 and "imported 3 claim(s)" in out, out
    code, again = ledger(copy, "export")
    assert [json.loads(x) for x in again.splitlines()] == [header, *claims]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(dump.read_text().splitlines()[0] + "\n{not json\n")
    code, out = ledger(copy, "import", str(bad))
    assert code == 2 and "line 2 is not JSON" in out
    # under another key the hashed patients would match no one: refused
    monkeypatch.delenv("SCRUBBER_LEDGER_KEY_FILE", raising=False)
    monkeypatch.setenv("SCRUBBER_LEDGER_KEY", "77" * 32)
    code, out = ledger(str(tmp_path / "other.sqlite"), "import", str(dump))
    assert code == 2 and "another ledger key" in out


def test_sqlite_to_postgresql(tmp_path, pg_schema, monkeypatch):
    """The move docs/ledger.md describes: export the SQLite ledger, import it with its key."""
    sqlite_path = str(tmp_path / "ledger.sqlite")
    with open_store(sqlite_path) as store:
        store.record("EXAMPLESUBM:000000001", accepted(build.claim("EM-1", [VISIT]),
                                                       control="000000001"))
    dump = tmp_path / "ledger.jsonl"
    assert ledger(sqlite_path, "export", "-o", str(dump))[0] == 0
    monkeypatch.setenv("SCRUBBER_LEDGER_KEY_FILE", sqlite_path + ".key")
    code, out = ledger(pg_schema, "import", str(dump))
    assert code == 0 and "imported 1 claim(s)" in out
    code, out = ledger(pg_schema, "show", "EM-1", "--format", "json")
    assert json.loads(out)["claims"][0]["lines"][0]["procedure"] == "99213"


def test_unusable_ledger_is_one_line_and_exit_2(tmp_path):
    bogus = tmp_path / "notes.sqlite"
    bogus.write_text("not a database\n" * 100)
    code, out = ledger(str(bogus), "stats")
    assert code == 2 and "not a usable ledger" in out and "Traceback" not in out


def test_new_key(tmp_path):
    path = tmp_path / "site.key"
    code, out = scrub("ledger", "new-key", str(path))
    assert code == 0 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(path.read_bytes()) == 32
    assert scrub("ledger", "new-key", str(path))[0] == 2  # never overwritten


def test_every_ledger_command_has_help_with_an_example():
    from scrubber.ledger.commands import ledger_group

    for name in (None, *ledger_group.commands):
        code, out = scrub("ledger", *([name] if name else []), "--help")
        assert code == 0 and "Example" in out, name
