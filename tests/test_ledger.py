"""The claim-history ledger on both stores: identity, replacement/void, keys, migrations."""

from __future__ import annotations

import importlib.util
import json
import os
import sqlite3
import stat
import time
from datetime import date, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from scrubbing import scrub_source

from scrubber.api import scrub
from scrubber.cli import main
from scrubber.core import Scrubber
from scrubber.ledger import SCHEMA_VERSION, LedgerError, open_store
from scrubber.ledger.keys import ENV_KEY, ENV_KEY_FILE
from scrubber.model import ClaimRecord, read
from scrubber.model.keys import patient_identity
from scrubber.options import ScrubOptions
from scrubber.rules.context import claim_key
from scrubber.rules.findings import Finding, ScrubbedClaim, Severity
from scrubber.rules.profile import load_profile

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("rules_fixture_build",
                                               ROOT / "fixtures" / "rules" / "build.py")
assert _spec is not None and _spec.loader is not None
build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build)
DAY = date(2026, 11, 2)
VISIT = build.line("99213", charge="100")


def records(*claims, control="000009652") -> list[ClaimRecord]:
    data = build.interchange("837p", [list(claims)], control=control).encode()
    return [e for e in read(data) if isinstance(e, ClaimRecord)]


def accepted(*claims, control="000009652") -> list[ScrubbedClaim]:
    return [ScrubbedClaim(r, ()) for r in records(*claims, control=control)]


def rejected(record: ClaimRecord) -> ScrubbedClaim:
    finding = Finding("96523-units", Severity.REJECT, "two units", "bill one", record.claim.id,
                      None, record.claim.location, "CLM")
    return ScrubbedClaim(record, (finding,))


def check(ledger: str, *args: str):
    return CliRunner().invoke(main, ["check", *args, "--ledger", ledger])


def identity():
    return patient_identity(records(build.claim("X", [VISIT]))[0])


def test_round_trip_on_both_stores(ledger_target):
    with open_store(ledger_target) as ledger:
        stats = ledger.record("SUB:1", accepted(build.claim("EM-1", [VISIT])))
        assert (stats.recorded_claims, stats.recorded_lines) == (1, 1)
        (line,) = ledger.lines_for(identity(), DAY)
        assert (line.claim_id, line.procedure, line.submission, line.service_date,
                line.payer) == ("EM-1", "99213", "SUB:1", DAY, "96523")
        assert ledger.lines_for(identity(), DAY, exclude_submission="SUB:1") == []
        assert ledger.lines_for(identity(), DAY + timedelta(days=1)) == []
        (record,) = records(build.claim("EM-1", [VISIT]))
        sent = ledger.sent_claim(claim_key(record))
        assert sent is not None and (sent.claim_id, sent.submission, sent.frequency) == \
            ("EM-1", "SUB:1", "1")
    with open_store(ledger_target) as again:  # reopened: nothing lost, key accepted
        assert len(again.lines_for(identity(), DAY)) == 1


def test_nothing_identifying_in_clear_and_owner_only(tmp_path):
    path = tmp_path / "ledger.sqlite"
    with open_store(path) as ledger:
        ledger.record("SUB:1", accepted(build.claim("EM-1", [VISIT])))
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    last, first, dob, member = build.ALEX
    for secret in (last, first, member, dob):
        assert secret.encode() not in raw
    for name in ("ledger.sqlite", "ledger.sqlite.key"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600


def test_same_claim_again_takes_the_place_of_its_earlier_copy(ledger_target):
    with open_store(ledger_target) as ledger:
        ledger.record("SUB:1", accepted(build.claim("EM-1", [VISIT])))
        ledger.record("SUB:1", accepted(build.claim("EM-1", [VISIT])))  # a rerun
        ledger.record("SUB:2", accepted(build.claim("EM-1", [VISIT]), control="000000002"))
        (line,) = ledger.lines_for(identity(), DAY)
        assert line.submission == "SUB:2"
        assert ledger.stats()["claims"] == 1


def test_replacement_and_void(ledger_target):
    with open_store(ledger_target) as ledger:
        ledger.record("SUB:1", accepted(build.claim("EM-1", [VISIT, build.line("36415")])))
        assert [x.procedure for x in ledger.lines_for(identity(), DAY)] == ["99213", "36415"]
        (entry,) = ledger.claims("EM-1")
        assert [(x.line_number, x.procedure) for x in entry.lines] == [(1, "99213"),
                                                                      (2, "36415")]
        stats = ledger.record("SUB:2", accepted(build.claim("EM-1", [VISIT], freq="7"),
                                                control="000000002"))
        assert stats.removed_claims == 1
        assert [(x.claim_id, x.submission) for x in ledger.lines_for(identity(), DAY)] == \
            [("EM-1", "SUB:2")]
        ledger.record("SUB:3", accepted(build.claim("EM-1", [VISIT], freq="8"),
                                        control="000000003"))
        assert ledger.lines_for(identity(), DAY) == []
        assert ledger.stats()["claims"] == 0


def test_rejected_claims_are_not_recorded(ledger_target):
    with open_store(ledger_target) as ledger:
        (record,) = records(build.claim("EM-1", [VISIT]))
        stats = ledger.record("SUB:1", [rejected(record)])
        assert stats.skipped_rejected == 1 and ledger.lines_for(identity(), DAY) == []


def test_not_a_ledger_is_a_clear_error(tmp_path):
    bogus = tmp_path / "notes.sqlite"
    bogus.write_text("this is not a database\n" * 100)
    with pytest.raises(LedgerError, match="not a usable ledger"):
        open_store(bogus)


def test_unknown_url_and_unreachable_server_are_clear_errors(monkeypatch):
    with pytest.raises(LedgerError, match="unknown ledger URL scheme"):
        open_store("mysql://host/db")
    monkeypatch.setenv(ENV_KEY, "ab" * 32)
    with pytest.raises(LedgerError, match="cannot be reached") as caught:
        open_store("postgresql://someone:hunter2@127.0.0.1:1/nowhere")
    assert "hunter2" not in str(caught.value)  # the password never reaches a message


def test_a_password_holding_an_at_sign_is_hidden_whole():
    from scrubber.ledger.postgres import safe_url

    assert safe_url("postgresql://billing:p@ss@db.example:5433/claims") == \
        "postgresql://billing@db.example:5433/claims"
    assert safe_url("postgresql://billing@db.example/claims") == \
        "postgresql://billing@db.example/claims"
    assert safe_url("postgresql://:secret@db.example/claims") == "postgresql://db.example/claims"


# -- the key -------------------------------------------------------------------------------

def test_missing_key_file_of_an_existing_ledger_is_an_error_not_a_new_key(tmp_path):
    path = tmp_path / "ledger.sqlite"
    with open_store(path) as ledger:
        ledger.record("SUB:1", accepted(build.claim("EM-1", [VISIT])))
    (tmp_path / "ledger.sqlite.key").unlink()
    with pytest.raises(LedgerError, match="cannot be read"):
        open_store(path)
    assert not (tmp_path / "ledger.sqlite.key").exists()


def test_wrong_key_is_refused_on_both_stores(ledger_target, monkeypatch, tmp_path):
    open_store(ledger_target).close()  # made with its key (file beside, or the env key)
    monkeypatch.setenv(ENV_KEY, "11" * 32)
    with pytest.raises(LedgerError, match="does not match"):
        open_store(ledger_target)


def test_key_from_file_and_environment(tmp_path, monkeypatch):
    key_file = tmp_path / "site.key"
    key_file.write_text("ab" * 32 + "\n")
    key_file.chmod(0o600)
    with open_store(tmp_path / "a.sqlite", key=key_file) as ledger:
        ledger.record("SUB:1", accepted(build.claim("EM-1", [VISIT])))
    assert not (tmp_path / "a.sqlite.key").exists()  # a given key is never copied beside
    monkeypatch.setenv(ENV_KEY_FILE, str(key_file))
    with open_store(tmp_path / "a.sqlite") as ledger:
        assert len(ledger.lines_for(identity(), DAY)) == 1
    monkeypatch.delenv(ENV_KEY_FILE)
    monkeypatch.setenv(ENV_KEY, "ab" * 32)
    with open_store(tmp_path / "a.sqlite") as ledger:
        assert len(ledger.lines_for(identity(), DAY)) == 1
    key_file.chmod(0o644)
    monkeypatch.delenv(ENV_KEY)
    with pytest.raises(LedgerError, match="readable by others"):
        open_store(tmp_path / "a.sqlite", key=key_file)


def test_postgres_without_a_key_is_a_clear_error(pg_schema, monkeypatch):
    monkeypatch.delenv(ENV_KEY, raising=False)
    monkeypatch.delenv(ENV_KEY_FILE, raising=False)
    with pytest.raises(LedgerError, match="no ledger key"):
        open_store(pg_schema)


# -- migrations ----------------------------------------------------------------------------

def test_first_ledger_schema_is_migrated_with_its_entries(tmp_path):
    """A version-1 ledger (one lines table) keeps its entries under schema 2."""
    path = tmp_path / "old.sqlite"
    key = os.urandom(32)
    fd = os.open(tmp_path / "old.sqlite.key", os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, key)
    os.close(fd)
    import hashlib
    import hmac

    patient = hmac.new(key, "\x1f".join(identity()).encode(), hashlib.sha256).digest()
    with sqlite3.connect(path) as db:
        db.executescript(
            "CREATE TABLE lines (patient BLOB NOT NULL, npi TEXT NOT NULL, service_date TEXT "
            "NOT NULL, procedure TEXT NOT NULL, modifiers TEXT NOT NULL, units TEXT NOT NULL, "
            "claim_id TEXT NOT NULL, line_number INTEGER, submission TEXT NOT NULL, "
            "recorded_at TEXT NOT NULL); CREATE INDEX lines_day ON lines (patient, "
            "service_date); PRAGMA user_version = 1;")
        db.execute("INSERT INTO lines VALUES (?, ?, ?, ?, '', '1', 'OLD-1', 1, 'SUB:0', "
                   "'2026-11-01T00:00:00+00:00')", (patient, identity()[0], DAY.isoformat(),
                                                    "96523"))
    path.chmod(0o600)
    with open_store(path) as ledger:
        (line,) = ledger.lines_for(identity(), DAY)
        assert (line.claim_id, line.procedure, line.payer) == ("OLD-1", "96523", "")
        assert ledger.stats()["schema_version"] == SCHEMA_VERSION
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    # its claim resent now (the payer known) does not conflict with its first-ledger copy
    profile = load_profile()
    data = build.interchange("837p", [[build.claim("OLD-1", [build.CLEAN])]],
                             control="000000005").encode()
    with open_store(path) as ledger:
        (claim,) = [e for e in scrub_source(data, profile=profile, ledger=ledger)
                    if isinstance(e, ScrubbedClaim)]
    assert claim.findings == ()


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "new.sqlite"
    open_store(path).close()
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(LedgerError, match="schema version 99"):
        open_store(path)


def test_workers_starting_together_migrate_once(pg_schema):
    """Several stores opened at once on a new database: one schema, one key check."""
    import threading

    errors: list[BaseException] = []

    def opener() -> None:
        try:
            open_store(pg_schema, key=b"\x5c" * 32).close()
        except BaseException as exc:  # noted for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=opener) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with open_store(pg_schema, key=b"\x5c" * 32) as ledger:
        assert ledger.stats()["schema_version"] == SCHEMA_VERSION


# -- through the command line --------------------------------------------------------------

def test_two_submissions_through_the_cli(tmp_path):
    """Office visit accepted this morning; a 96523 for that patient and day this afternoon."""
    morning, afternoon = tmp_path / "morning.x12", tmp_path / "afternoon.x12"
    morning.write_text(build.interchange("837p", [[build.claim("EM-1", [VISIT])]],
                                         control="000000001"))
    afternoon.write_text(build.interchange("837p", [[build.claim("PF-1", [build.CLEAN])]],
                                           control="000000002"))
    ledger = str(tmp_path / "ledger.sqlite")
    assert check(ledger, str(morning)).exit_code == 0  # checked, not sent: nothing recorded
    assert check(ledger, str(afternoon)).exit_code == 0
    assert check(ledger, str(morning), "--record").exit_code == 0  # sent
    result = check(ledger, str(afternoon))
    assert result.exit_code == 1
    assert "96523-sole-service" in result.output and "EM-1" in result.output
    # rerunning the morning file does not conflict with itself, nor duplicate it
    assert check(ledger, str(morning), "--record").exit_code == 0
    with open_store(ledger) as opened:
        assert [x.claim_id for x in opened.lines_for(identity(), DAY)] == ["EM-1"]
    # checked on its own, the afternoon file is clean
    alone = CliRunner().invoke(main, ["check", str(afternoon), "--no-ledger"])
    assert alone.exit_code == 0, alone.output


def test_service_after_a_sent_96523_is_warned_through_the_cli(tmp_path):
    """The issue's own scenario: 96523 sent this morning, an office visit this afternoon."""
    morning, afternoon = tmp_path / "morning.x12", tmp_path / "afternoon.x12"
    morning.write_text(build.interchange("837p", [[build.claim("PF-1", [build.CLEAN])]],
                                         control="000000001"))
    afternoon.write_text(build.interchange("837p", [[build.claim("EM-2", [VISIT])]],
                                           control="000000002"))
    ledger = str(tmp_path / "ledger.sqlite")
    assert check(ledger, str(morning), "--record").exit_code == 0
    result = check(ledger, str(afternoon), "--format", "json")
    (claim,) = [c for ic in json.loads(result.output)["files"][0]["interchanges"]
                for g in ic["groups"] for t in g["transactions"] for c in t["claims"]]
    (finding,) = claim["findings"]
    assert finding["rule"] == "96523-sole-service" and finding["severity"] == "warn"
    assert "PF-1" in finding["message"] and "000000001" in finding["message"]
    assert result.exit_code == 0  # accepted, with the warning
    assert check(ledger, str(afternoon), "--fail-on", "warn").exit_code == 1


# -- the check, fix, check again ----------------------------------------------------

MULTI = ROOT / "fixtures" / "837p-multi.x12"


def test_the_same_batch_with_a_new_isa13_never_conflicts_with_itself(tmp_path):
    """scrub check 837p-multi.x12, then the same batch under ISA13 000000199."""
    again = tmp_path / "batch-v2.x12"
    again.write_text(MULTI.read_text().replace("000000102", "000000199"))
    ledger = str(tmp_path / "ledger.sqlite")
    assert check(ledger, str(MULTI)).exit_code == 0  # checked only: nothing to conflict with
    unsent = check(ledger, str(again), "--format", "json")
    assert unsent.exit_code == 0 and '"findings": [{' not in unsent.stdout
    first = check(ledger, str(MULTI), "--record")
    assert first.exit_code == 0, first.output
    second = check(ledger, str(again), "--format", "json")
    claims = [c for ic in json.loads(second.output)["files"][0]["interchanges"]
              for g in ic["groups"] for t in g["transactions"] for c in t["claims"]]
    assert [c["status"] for c in claims] == ["rejected"] * 3
    rules = {f["rule"] for c in claims for f in c["findings"]}
    assert not any(rule.startswith("96523") for rule in rules)
    # the first batch was sent, so the unchanged resend is what a payer denies as an exact
    # duplicate: rejected, and the exit code and the verdict say so
    assert second.exit_code == 1
    for claim in claims:
        (finding,) = claim["findings"]
        assert finding["rule"] == "duplicate-claim" and finding["severity"] == "reject"
        assert "SCRUBTESTSUBM:000000102" in finding["message"]
        assert "exact duplicate" in finding["message"] and "Do not send" in finding["fix"]
    # one claim changed (its diagnoses) and sent again as an original: a warning to send it
    # as a replacement; the two unchanged ones are still exact duplicates
    changed = tmp_path / "batch-v3.x12"
    changed.write_text(again.read_text().replace("000000199", "000000200").replace(
        "HI*ABK:E119*ABF:I10~", "HI*ABK:E119*ABF:I119~"))
    third = check(ledger, str(changed), "--format", "json")
    claims = [c for ic in json.loads(third.output)["files"][0]["interchanges"]
              for g in ic["groups"] for t in g["transactions"] for c in t["claims"]]
    assert [(c["id"], c["status"], [f["severity"] for f in c["findings"]]) for c in claims] == [
        ("MLT-0001", "accepted", ["warn"]), ("MLT-0002", "rejected", ["reject"]),
        ("MLT-0003", "rejected", ["reject"])]
    assert "changed since" in claims[0]["findings"][0]["message"]
    assert "replacement" in claims[0]["findings"][0]["fix"]
    assert {f["status_code"] for c in claims for f in c["findings"]} == {"A3:78"}


def test_the_same_claim_in_two_files_of_one_run_never_conflicts(tmp_path):
    """Another file of the same run holding MLT-0003 again is the same claim, not a second."""
    copy = tmp_path / "copy.x12"
    copy.write_text(MULTI.read_text().replace("000000102", "000000103"))
    result = check(str(tmp_path / "ledger.sqlite"), str(MULTI), str(copy))
    assert "REJECT" not in result.output and "96523-units" not in result.output
    assert result.exit_code == 0, result.output


def _scrub(store, data: bytes, *, record: bool) -> list[ScrubbedClaim]:
    return [e for e in scrub_source(data, profile=load_profile(), ledger=store,
                                    record=record) if isinstance(e, ScrubbedClaim)]


def test_checking_reads_the_ledger_but_records_only_when_asked(ledger_target):
    data = MULTI.read_bytes()
    with open_store(ledger_target) as store:
        assert all(not c.rejected for c in _scrub(store, data, record=False))
        assert store.stats()["claims"] == 0
        _scrub(store, data, record=True)
        assert store.stats()["claims"] == 3
        # a rerun of the same submission is not a resend: no duplicate, no conflict
        assert all(c.findings == () for c in _scrub(store, data, record=True))
        assert store.stats()["claims"] == 3
        resent = data.replace(b"000000102", b"000000199")
        assert {f.rule for c in _scrub(store, resent, record=False) for f in c.findings} == \
            {"duplicate-claim"}
        replaced = resent.replace(b"*11:B:1*", b"*11:B:7*")
        assert all(c.findings == () for c in _scrub(store, replaced, record=True))
        assert {s.submission for s in store.submissions()} == {"SCRUBTESTSUBM:000000199"}


def test_a_check_reads_the_ledger_a_block_of_claims_at_a_time(ledger_target, monkeypatch):
    """Without recording, a block's ledger days and copies come from a few batched queries
    (``reader``), not one or more per claim: over a network the round trips are the cost.
    The findings are those of reading claim by claim."""
    claims = [build.claim(f"BL-{n}", [VISIT], patient=build.SAM if n % 2 else build.ALEX)
              for n in range(40)]
    data = build.interchange("837p", [claims], control="000000301").encode()
    with open_store(ledger_target) as store:
        _scrub(store, data, record=True)
        queries = []
        run = store._run

        def counted(sql, *args):
            queries.append(sql)
            return run(sql, *args)
        monkeypatch.setattr(store, "_run", counted)
        resent = data.replace(b"000000301", b"000000302")
        found = [[f.rule for f in c.findings] for c in _scrub(store, resent, record=False)]
        assert found == [["duplicate-claim"]] * 40
        assert 0 < len(queries) <= 4, queries  # 40 claims: their days, then their copies
        monkeypatch.setattr("scrubber.rules.engine.LedgerBatchReader", type(None))
        assert [[f.rule for f in c.findings]
                for c in _scrub(store, resent, record=False)] == found  # claim by claim
        assert len(queries) > 80  # a day and a copy per claim


def test_duplicate_claim_can_be_made_a_reject_by_the_profile(tmp_path):
    profile = tmp_path / "strict.xml"
    profile.write_text('<?xml version="1.0" encoding="UTF-8"?>\n<profile name="strict">'
                       '<rules><rule id="duplicate-claim" severity="reject"/></rules>'
                       '</profile>\n')
    data = MULTI.read_bytes()
    with open_store(tmp_path / "ledger.sqlite") as store:
        _scrub(store, data, record=True)
        resent = data.replace(b"000000102", b"000000199")
        claims = [e for e in scrub_source(resent, ledger=store,
                                          profile=load_profile(str(profile)))
                  if isinstance(e, ScrubbedClaim)]
    assert [c.status for c in claims] == ["rejected"] * 3


def test_a_resend_later_in_the_same_run_is_a_duplicate(ledger_target):
    """Recorded and read back inside one locked block: the later copy sees the earlier."""
    data = "".join(build.interchange("837p", [[build.claim("RS-1", [VISIT]),
                                               build.claim(f"RS-{n}", [VISIT],
                                                           patient=build.SAM)]],
                                     control=f"00000000{n}") for n in (2, 3)).encode()
    with open_store(ledger_target) as store:
        claims = _scrub(store, data, record=True)
        assert [(c.claim.id, [f.rule for f in c.findings]) for c in claims] == [
            ("RS-1", []), ("RS-2", []), ("RS-1", ["duplicate-claim"]), ("RS-3", [])]
        # the resent copy is rejected (an exact duplicate), so the first stays the one sent
        assert claims[2].rejected
        assert [(s.submission, s.claims) for s in store.submissions()] == [
            ("EXAMPLESUBM:000000002", 2), ("EXAMPLESUBM:000000003", 1)]


def test_a_lost_server_is_a_clear_error(pg_schema):
    import psycopg
    from conftest import PG_URL

    store = open_store(pg_schema, key=b"\x5c" * 32)
    with psycopg.connect(PG_URL, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (store._db.info.backend_pid,))
    with pytest.raises(LedgerError, match="failed"):
        store.stats()
    store.close()


def test_default_target_is_the_per_user_sqlite_ledger():
    with open_store(None) as store:
        assert store.location == str(Path(os.environ["XDG_STATE_HOME"]) / "scrubber" /
                                     "ledger.sqlite")
        assert store.stats()["store"] == "sqlite"


def test_under_ci_a_missing_postgresql_server_fails_instead_of_skipping(tmp_path):
    """CI must run the PostgreSQL half of the store tests, never skip it quietly."""
    import subprocess
    import sys

    env = {**os.environ, "CI": "true",
           "SCRUBBER_TEST_PG_URL": "postgresql://nobody@127.0.0.1:1/none"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k",
         "round_trip_on_both_stores", str(Path(__file__))],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert result.returncode == 1, result.stdout
    assert "1 passed" in result.stdout and "1 error" in result.stdout
    assert "not reachable" in result.stdout
    env.pop("CI")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k",
         "round_trip_on_both_stores", str(Path(__file__))],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert result.returncode == 0 and "1 passed, 1 skipped" in result.stdout, result.stdout


def test_held_claims_reserve_their_day_and_become_sent_on_release(ledger_target):
    """An intake that forwards before its claims count as sent: hold, forward, release."""
    data = MULTI.read_bytes()
    with open_store(ledger_target) as store:
        result = scrub(data, ledger=store, hold=True, conformance=False)
        assert all(not c.rejected for c in result.claims)
        (info,) = store.submissions()
        assert (info.claims, info.held) == (3, 3) and store.stats()["held_claims"] == 3
        assert info.state.startswith("held (open recording")
        # held, not sent: a resend under a new ISA13 is told the claims are being sent
        resent = data.replace(b"000000102", b"000000199")
        said = [f.message for c in _scrub(store, resent, record=False) for f in c.findings]
        assert len(said) == 3 and all("is being sent" in m for m in said)
        assert result.release() == 3
        assert store.recordings() == [] and store.stats()["held_claims"] == 0
        said = [f.message for c in _scrub(store, resent, record=False) for f in c.findings]
        assert len(said) == 3 and all("was already sent" in m for m in said)


def test_a_held_96523_rejects_a_second_one_for_its_day(ledger_target):
    """Held claims count in the day context at once: concurrent workers see them."""
    first = build.interchange("837p", [[build.claim("PF-1", [build.CLEAN])]],
                              control="000000001").encode()
    second = build.interchange("837p", [[build.claim("PF-2", [build.CLEAN])]],
                               control="000000002").encode()
    with open_store(ledger_target) as store:
        held = scrub(first, ledger=store, hold=True, conformance=False)
        assert not held.claims[0].rejected
        (later,) = _scrub(store, second, record=True)
        assert later.rejected and [f.rule for f in later.findings] == ["96523-units"]
        assert "PF-1" in later.findings[0].message
        assert held.discard() == 1  # never forwarded
        (again,) = _scrub(store, second, record=False)
        assert not again.rejected


def test_a_run_that_fails_midway_sends_nothing_and_a_dead_one_is_discarded(ledger_target):
    """Claims are sent only when their run ends well; a killed run's holds go at next open."""
    data = MULTI.read_bytes()
    with open_store(ledger_target) as store:
        with pytest.raises(RuntimeError), Scrubber(ScrubOptions(record=True, conformance=False),
                                                   ledger=store) as scrubber:
            for event in scrubber.events(data):
                if isinstance(event, ScrubbedClaim):
                    raise RuntimeError("the run fails after its first claim")
        assert store.stats()["claims"] == 0 and store.recordings() == []
        # a run whose process goes away: its recording is left open with what it held
        orphan = open_store(ledger_target)
        recording = orphan.begin_recording()
        with orphan.deciding(set(), recording=recording) as decision:
            for claim in (c for c in scrub(data, ledger=store).claims):
                decision.record("DEAD:1", claim)
        assert store.stats()["held_claims"] == 3
        assert store.sweep() == 0  # its owner still holds the lease
        orphan._mine.clear()  # as a killed process would: nothing discards on the way out
        orphan.close()
        swept = 0
        for _ in range(200):  # the server ends a closed session's locks soon, not at once
            swept = store.sweep()
            if swept:
                break
            time.sleep(0.05)
        assert swept == 1
        assert store.stats()["claims"] == 0 and store.recordings() == []


def test_a_run_killed_mid_statement_frees_its_recording_on_postgres(pg_schema, tmp_path):
    # the run holds a recording's lease (a session lock) and is killed while the server
    # runs a long statement for it: the server notices the dead client within a second
    # (client_connection_check_interval), not when the statement would have ended (60 s)
    import signal
    import subprocess
    import sys
    import time

    key = "5c" * 32
    script = (
        "import sys\n"
        "from scrubber.ledger import open_store\n"
        f"store = open_store({pg_schema!r}, key=bytes.fromhex({key!r}))\n"
        "print(store.begin_recording(), flush=True)\n"
        "store._run('SELECT pg_sleep(60)')\n")
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                             text=True)
    try:
        recording = child.stdout.readline().strip()
        assert recording
        time.sleep(1.0)  # in pg_sleep by now
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    started = time.monotonic()
    left = None
    while time.monotonic() - started < 30:  # well under the 60 s the statement would take
        with open_store(pg_schema, key=bytes.fromhex(key)) as store:
            left = [r.id for r in store.recordings()]
        if recording not in left:
            break
        time.sleep(0.2)
    assert recording not in left, "the killed run's recording is still leased"
