"""The claim-history ledger: hashed patients, replacement/void/rerun, concurrent writers."""

from __future__ import annotations

import importlib.util
import json
import multiprocessing
import sqlite3
import stat
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from scrubber.cli import main
from scrubber.ledger import Ledger, LedgerError
from scrubber.model import ClaimRecord, read
from scrubber.model.keys import patient_identity
from scrubber.rules.findings import Finding, ScrubbedClaim, Severity

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("rules_fixture_build",
                                               ROOT / "fixtures" / "rules" / "build.py")
assert _spec is not None and _spec.loader is not None
build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build)
DAY = date(2026, 11, 2)


def records(*claims, control="000009652") -> list[ClaimRecord]:
    data = build.interchange("837p", [list(claims)], control=control).encode()
    return [e for e in read(data) if isinstance(e, ClaimRecord)]


def accepted(*claims, control="000009652") -> list[ScrubbedClaim]:
    return [ScrubbedClaim(r, ()) for r in records(*claims, control=control)]


def rejected(record: ClaimRecord) -> ScrubbedClaim:
    finding = Finding("96523-units", Severity.REJECT, "two units", "bill one", record.claim.id,
                      None, record.claim.location, "CLM")
    return ScrubbedClaim(record, (finding,))


VISIT = build.line("99213", charge="100")
IDENTITY = None


def identity():
    return patient_identity(records(build.claim("X", [VISIT]))[0])


def test_round_trip_and_nothing_identifying_in_clear(tmp_path):
    path = tmp_path / "ledger.sqlite"
    with Ledger.open(path) as ledger:
        stats = ledger.record("SUB:1", accepted(build.claim("EM-1", [VISIT])))
        assert (stats.recorded_claims, stats.recorded_lines) == (1, 1)
        (line,) = ledger.lines_for(identity(), DAY)
        assert (line.claim_id, line.procedure, line.submission, line.service_date) == \
            ("EM-1", "99213", "SUB:1", DAY)
        assert ledger.lines_for(identity(), DAY, exclude_submission="SUB:1") == []
        assert ledger.lines_for(identity(), date(2026, 11, 3)) == []
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    last, first, dob, member = build.ALEX
    for secret in (last, first, member, dob):
        assert secret.encode() not in raw
    for name in ("ledger.sqlite", "ledger.sqlite.key"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600


def test_rerun_replaces_its_own_entries(tmp_path):
    with Ledger.open(tmp_path / "l.sqlite") as ledger:
        ledger.record("SUB:1", accepted(build.claim("EM-1", [VISIT])))
        ledger.record("SUB:1", accepted(build.claim("EM-1", [VISIT])))
        assert len(ledger.lines_for(identity(), DAY)) == 1


def test_replacement_and_void(tmp_path):
    with Ledger.open(tmp_path / "l.sqlite") as ledger:
        ledger.record("SUB:1", accepted(build.claim("EM-1", [VISIT, build.line("36415")])))
        assert len(ledger.lines_for(identity(), DAY)) == 2
        stats = ledger.record("SUB:2", accepted(build.claim("EM-1", [VISIT], freq="7"),
                                                control="000000002"))
        assert stats.removed_claims == 1
        assert [(ln.claim_id, ln.submission) for ln in ledger.lines_for(identity(), DAY)] == \
            [("EM-1", "SUB:2")]
        ledger.record("SUB:3", accepted(build.claim("EM-1", [VISIT], freq="8"),
                                        control="000000003"))
        assert ledger.lines_for(identity(), DAY) == []


def test_rejected_claims_are_not_recorded(tmp_path):
    with Ledger.open(tmp_path / "l.sqlite") as ledger:
        (record,) = records(build.claim("EM-1", [VISIT]))
        stats = ledger.record("SUB:1", [rejected(record)])
        assert stats.skipped_rejected == 1 and ledger.lines_for(identity(), DAY) == []


def test_not_a_ledger_is_a_clear_error(tmp_path):
    bogus = tmp_path / "notes.sqlite"
    bogus.write_text("this is not a database\n" * 100)
    with pytest.raises(LedgerError, match="not a usable ledger"):
        Ledger.open(bogus)


def _writer(args):
    path, worker = args
    with Ledger.open(path) as ledger:
        for n in range(20):
            claim = build.claim(f"W{worker}-{n}", [VISIT])
            ledger.record(f"SUB:{worker}-{n}", accepted(claim))
        # two workers also rerun one shared submission
        ledger.record("SUB:shared", accepted(build.claim("SHARED", [VISIT])))


def test_concurrent_writers_in_processes_lose_and_duplicate_nothing(tmp_path):
    path = str(tmp_path / "l.sqlite")
    Ledger.open(path).close()
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        pool.map(_writer, [(path, w) for w in range(4)])
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = db.execute("SELECT claim_id, submission FROM lines").fetchall()
    assert len(rows) == len(set(rows)) == 4 * 20 + 1
    assert ("SHARED", "SUB:shared") in rows


def test_two_submissions_through_the_cli(tmp_path):
    """Office visit accepted this morning; a 96523 for that patient and day this afternoon."""
    morning, afternoon = tmp_path / "morning.x12", tmp_path / "afternoon.x12"
    morning.write_text(build.interchange("837p", [[build.claim("EM-1", [VISIT])]],
                                         control="000000001"))
    afternoon.write_text(build.interchange("837p", [[build.claim("PF-1", [build.CLEAN])]],
                                           control="000000002"))
    ledger = str(tmp_path / "ledger.sqlite")
    run = lambda *a: CliRunner().invoke(main, ["check", *a, "--ledger", ledger])  # noqa: E731
    assert run(str(morning)).exit_code == 0
    result = run(str(afternoon))
    assert result.exit_code == 1
    assert "96523-sole-service" in result.output and "EM-1" in result.output
    # rerunning the morning file does not conflict with itself, nor duplicate it
    assert run(str(morning)).exit_code == 0
    with Ledger.open(ledger) as opened:
        assert [ln.claim_id for ln in opened.lines_for(identity(), DAY)] == ["EM-1"]
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
    run = lambda *a: CliRunner().invoke(main, ["check", *a, "--ledger", ledger])  # noqa: E731
    assert run(str(morning)).exit_code == 0
    result = run(str(afternoon), "--format", "json")
    (claim,) = [c for ic in json.loads(result.output)["files"][0]["interchanges"]
                for g in ic["groups"] for t in g["transactions"] for c in t["claims"]]
    (finding,) = claim["findings"]
    assert finding["rule"] == "96523-sole-service" and finding["severity"] == "warn"
    assert "PF-1" in finding["message"] and "000000001" in finding["message"]
    assert result.exit_code == 0  # accepted, with the warning
    assert run(str(afternoon), "--fail-on", "warn").exit_code == 1
