"""The implementation-guide check in the scrub: rejected sets are held, answered by a 999.

One file, two interchanges: the first holds two transaction sets, and the
second set gets an IG error (an SBR01 code the guide does not list). Its two
claims must be held (no rules, no 277CA), the 999 must say IK5 R for that set
only, and every other claim of the file goes on as before.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

from click.testing import CliRunner
from ig_reference import run_pyx12

import scrubber
from scrubber.api import process_file
from scrubber.cli import main

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "fixtures" / "837p-multi-envelope.x12"
HELD = {"DEP-0001", "DEP-0002"}


def broken(tmp_path: Path) -> Path:
    data = SOURCE.read_bytes()
    assert data.count(b"SBR*P**GRP0001") == 1
    path = tmp_path / "batch.x12"
    path.write_bytes(data.replace(b"SBR*P**GRP0001", b"SBR*Q**GRP0001"))
    return path


def test_claims_of_a_rejected_set_are_held_and_only_they(tmp_path):
    result = scrubber.scrub(broken(tmp_path))
    status = {c.claim.id: (c.held, c.rejected) for c in result.claims}
    assert {k for k, (held, _) in status.items() if held} == HELD
    assert all(rejected for held, rejected in status.values() if held)
    assert not any(rejected for k, (held, rejected) in status.items() if k not in HELD)
    for claim in result.claims:
        if claim.held:
            (finding,) = claim.findings  # no business rule ran on it
            assert finding.rule == "ig-999" and "transaction set 0002" in finding.message
    # the IG errors are located problems of that set
    ig = [p for p in result.problems if p.code.startswith("ig-")]
    assert ig and all(p.control_number == "0002" for p in ig)
    assert any(p.location and p.location.line == 40 for p in ig)  # the SBR as sent


def test_held_claims_get_no_277ca_and_the_999_says_why(tmp_path):
    result = scrubber.scrub(broken(tmp_path))
    ack = result.ack_277ca.decode()
    for claim_id in HELD:
        assert claim_id not in ack
    for claim_id in ("ENV-0001", "MLT-0001", "MLT-0002", "MLT-0003"):
        assert f"TRN*2*{claim_id}~" in ack
    text = result.ack_999.decode()
    ik5 = [seg for seg in text.split("~") if seg.strip().startswith(("AK2", "IK5"))]
    assert [s.strip() for s in ik5][:4] == ["AK2*837*0001*005010X222A1", "IK5*A",
                                            "AK2*837*0002*005010X222A1", "IK5*R*5"]
    assert text.count("ISA*") == 2  # one 999 per interchange
    ok, tree, _ = run_pyx12(result.ack_999)
    assert ok, tree


def test_without_the_ig_check_the_rules_see_every_claim(tmp_path):
    result = scrubber.scrub(broken(tmp_path), conformance=False)
    assert not any(c.held for c in result.claims) and result.ack_999 == b""
    assert not any(c.rejected for c in result.claims)
    assert all(f"TRN*2*{claim_id}~" in result.ack_277ca.decode() for claim_id in HELD)


def test_check_writes_the_999_and_reports_the_hold(tmp_path):
    path, acks = broken(tmp_path), tmp_path / "acks"
    run = CliRunner().invoke(main, ["check", str(path), "--no-ledger", "--format", "json",
                                    "--277ca", str(acks), "--999"])
    assert run.exit_code == 1, run.output
    report = json.loads(run.output)
    claims = {c["id"]: c for i in report["files"][0]["interchanges"] for g in i["groups"]
              for t in g["transactions"] for c in t["claims"]}
    assert {k for k, c in claims.items() if c["status"] == "rejected"} == HELD
    assert all(claims[k]["findings"][0]["rule"] == "ig-999" for k in HELD)
    assert {k for k, c in claims.items() if c["held"]} == HELD
    written = sorted(p.name for p in acks.iterdir())
    assert written == ["batch.x12.277ca.x12", "batch.x12.999.x12"]
    assert stat.S_IMODE((acks / "batch.x12.999.x12").stat().st_mode) == 0o600
    text = CliRunner().invoke(main, ["check", str(path), "--no-ledger"]).output
    assert "999 [ig-unexpected-segment] line 40" in text


def test_check_refuses_a_999_without_a_folder_and_unknown_companions(tmp_path):
    runner = CliRunner()
    run = runner.invoke(main, ["check", str(SOURCE), "--no-ledger", "--999"])
    assert run.exit_code == 2 and "--277ca" in run.output
    run = runner.invoke(main, ["check", str(SOURCE), "--no-ledger", "--companion", "nobody"])
    assert run.exit_code == 2 and "example-commercial" in run.output
    run = runner.invoke(main, ["check", str(SOURCE), "--no-ledger", "--companion",
                               "example-commercial"])  # it wants a DMG for every subscriber
    assert run.exit_code == 1 and "required segment DMG" in run.output, run.output


def test_a_companion_guide_rejects_what_the_plain_guide_accepts(tmp_path):
    # example-commercial allows SBR09 CI/HM/BL only
    path = tmp_path / "mc.x12"
    path.write_bytes(SOURCE.read_bytes().replace(b"GRP0001******CI~", b"GRP0001******MC~", 1))
    assert not any(c.held for c in scrubber.scrub(path).claims)
    result = scrubber.scrub(path, companion="example-commercial")
    assert "ENV-0001" in {c.claim.id for c in result.claims if c.held}
    sbr = [p for p in result.problems if p.location and p.location.line == 14]
    assert [p.code for p in sbr] == ["ig-element"] and "SBR09" in sbr[0].message


def test_the_watcher_unit_of_work_writes_the_999(tmp_path):
    reports = tmp_path / "reports"
    reports.mkdir()
    outcome = process_file(str(broken(tmp_path)), str(reports))
    assert outcome.verdict == "rejected" and outcome.rejected == 2
    assert sorted(Path(p).name for p in outcome.reports) == [
        "batch.x12.277ca.x12", "batch.x12.999.x12", "batch.x12.html", "batch.x12.json",
        "batch.x12.txt"]
