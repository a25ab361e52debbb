"""The scrub core's seams: options, sinks and their registry, resources, and the CLI over them."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from scrubber.api import check_files, scrub
from scrubber.cli import main
from scrubber.core import RunOutcome, Scrubber, ScrubOptions
from scrubber.emit.sinks import (
    REPORT_FORMATS,
    AckMemory,
    FileEnd,
    ReportFormat,
    ReportStyle,
    Sink,
    ack_sinks,
    register_format,
    report_sink,
)
from scrubber.ledger import open_store
from scrubber.rules import ScrubbedClaim
from scrubber.rules.resources import ResourceError, Resources, load_resources, resource_kinds

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
MULTI = FIXTURES / "837p-multi.x12"


class CountingSink(Sink):
    """A format written as the recipe in docs/extending.md says: one line per claim status."""

    def __init__(self, out, style: ReportStyle):
        self.out = out
        self.counts: dict[str, int] = {}

    def begin_file(self, name: str) -> None:
        self.counts = {}

    def event(self, event) -> None:
        if isinstance(event, ScrubbedClaim):
            self.counts[event.status] = self.counts.get(event.status, 0) + 1

    def end_file(self, end: FileEnd) -> None:
        self.out.write(f"{end.name}: accepted {self.counts.get('accepted', 0)}, "
                       f"rejected {self.counts.get('rejected', 0)}\n")

    def close(self) -> None:
        self.out.write("end\n")


@pytest.fixture
def counting_format():
    fmt = register_format(ReportFormat("counts", "claims by status", "counts.txt",
                                       CountingSink))
    yield fmt
    del REPORT_FORMATS["counts"]


def test_a_format_registered_from_outside_serves_the_api_and_the_cli(counting_format):
    failing = FIXTURES / "rules" / "96523-units.fail.837p.x12"
    out = io.StringIO()
    outcome = check_files([str(MULTI), str(failing)], out, fmt="counts")
    lines = []
    for path in (MULTI, failing):
        summary = scrub(path).summary
        lines.append(f"{path}: accepted {summary['accepted']}, rejected {summary['rejected']}")
    assert out.getvalue() == "\n".join(lines) + "\nend\n"
    assert isinstance(outcome, RunOutcome) and outcome.files == 2 and outcome.rejected
    result = CliRunner().invoke(main, ["check", str(MULTI), str(failing), "--format", "counts",
                                       "--no-ledger"])
    assert result.output == out.getvalue() and result.exit_code == 1
    assert "counts" in CliRunner().invoke(main, ["check", "--help"]).output


def test_a_format_name_is_registered_once():
    with pytest.raises(ValueError, match="registered twice"):
        register_format(ReportFormat("json", "again", "json", CountingSink))
    with pytest.raises(KeyError, match="known: text, json, html"):
        report_sink("nope", io.StringIO())


def test_every_sink_of_one_run_sees_the_same_stream():
    """One pass feeds the report and the acknowledgements: same claims, one 277CA."""
    memory = AckMemory()
    out = io.StringIO()
    with Scrubber() as scrubber:
        outcome = scrubber.run([(MULTI, "multi")], [report_sink("json", out),
                                                    *ack_sinks(memory, scrubber.acks)])
    report = json.loads(out.getvalue())
    claims = [c for ic in report["files"][0]["interchanges"] for g in ic["groups"]
              for t in g["transactions"] for c in t["claims"]]
    assert len(claims) == report["files"][0]["summary"]["claims"] == 3
    text = memory.data["277ca"].decode()
    assert text.count("ISA*") == 1 and all(f"TRN*2*{c['id']}~" in text for c in claims)
    assert "999" in memory.data and "ta1" not in memory.data  # a sound envelope: no TA1
    assert not outcome.unreadable and outcome.files == 1


def test_options_are_frozen_and_travel_to_worker_processes():
    import pickle

    options = ScrubOptions(companion=None, record=True, ledger="/tmp/x.sqlite")
    assert pickle.loads(pickle.dumps(options)) == options
    with pytest.raises(AttributeError):
        options.record = False  # type: ignore[misc]
    with pytest.raises(ValueError, match="fail_on"):
        ScrubOptions(fail_on="never")


def test_resources_come_from_the_packs_registry():
    names = {option.name for kind in resource_kinds() for option in kind.options}
    assert {"ncci-ptp", "mue", "ncci-ptp-837i", "mue-837i"} <= names
    assert load_resources({}) == Resources()
    with pytest.raises(ResourceError, match="NCCI tables"):
        load_resources({"ncci-ptp": ["/nonexistent/ptp.zip"]})
    result = CliRunner().invoke(main, ["check", str(MULTI), "--ncci-ptp", "/nonexistent/p.zip"])
    assert result.exit_code == 2 and "NCCI tables" in result.output


def _claims_recorded(path: Path) -> list[str]:
    with open_store(path) as ledger:
        return _claim_ids(ledger)


def _claim_ids(ledger) -> list[str]:
    return sorted(item["claim_id"] for item in list(ledger.export())[1:])


def test_the_command_line_wins_over_scrub_toml(tmp_path, monkeypatch):
    """ledger = ... in the file, --no-ledger on the command line: no conflict, no ledger."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    configured = tmp_path / "site.sqlite"
    (tmp_path / "scrub.toml").write_text(f'[check]\nledger = "{configured}"\nrecord = true\n')
    result = CliRunner().invoke(main, ["check", str(MULTI), "--no-ledger", "--no-record"])
    assert result.exit_code == 0, result.output
    assert not configured.exists() and not (tmp_path / "state").exists()
    # the file's ledger and record setting apply when the command line says nothing
    assert CliRunner().invoke(main, ["check", str(MULTI)]).exit_code == 0
    assert sorted(_claims_recorded(configured)) == ["MLT-0001", "MLT-0002", "MLT-0003"]
    (tmp_path / "scrub.toml").write_text("[check]\nno-ledger = true\n")
    chosen = tmp_path / "chosen.sqlite"
    result = CliRunner().invoke(main, ["check", str(MULTI), "--ledger", str(chosen), "--record"])
    assert result.exit_code == 0, result.output
    assert len(_claims_recorded(chosen)) == 3


def test_a_check_records_nothing_unless_asked(tmp_path):
    path = tmp_path / "l.sqlite"
    run = lambda *a: CliRunner().invoke(main, ["check", str(MULTI), "--ledger", str(path), *a])  # noqa: E731
    assert run().exit_code == 0 and _claims_recorded(path) == []
    assert run("--record").exit_code == 0 and len(_claims_recorded(path)) == 3
    with open_store(tmp_path / "api.sqlite") as ledger:
        result = scrub(MULTI, ledger=ledger)
        assert _claim_ids(ledger) == []
        result.record(ledger)  # the intake step records once it has sent the claims
        assert _claim_ids(ledger) == ["MLT-0001", "MLT-0002", "MLT-0003"]
    with open_store(tmp_path / "held.sqlite") as ledger:
        result = scrub(MULTI, ledger=ledger, hold=True)  # counted at once, not yet sent
        assert {c["status"] for c in list(ledger.export())[1:]} == {"held"}
        result.release()  # forwarded
        assert {c["status"] for c in list(ledger.export())[1:]} == {"sent"}


def test_output_writes_the_report_owner_only(tmp_path):
    target = tmp_path / "report.json"
    result = CliRunner().invoke(main, ["check", str(MULTI), "--no-ledger", "--format", "json",
                                       "--output", str(target)])
    assert result.exit_code == 0 and result.output == ""
    assert json.loads(target.read_text())["files"][0]["summary"]["claims"] == 3
    assert target.stat().st_mode & 0o777 == 0o600


def test_code_set_files_reach_the_rules_from_the_command_line_and_scrub_toml(tmp_path,
                                                                           monkeypatch):
    sets = FIXTURES / "codesets"
    claim = str(sets / "dx-not-in-force.fail.837p.x12")
    years = ["--icd10cm", str(sets / "icd10cm_order_2024.txt"),
             "--icd10cm", str(sets / "icd10cm_order_2025.txt")]
    given = CliRunner().invoke(main, ["check", claim, "--no-ledger", "--format", "json", *years])
    assert given.exit_code == 1
    assert "dx-not-in-force" in given.stdout
    bundled_only = CliRunner().invoke(main, ["check", claim, "--no-ledger"])
    assert bundled_only.exit_code == 0  # the bundled release alone cannot say "not yet"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "scrub.toml").write_text(
        "[check]\nno-ledger = true\nicd10cm = [" + ", ".join(
            f'"{sets / name}"' for name in ("icd10cm_order_2024.txt", "icd10cm_order_2025.txt"))
        + "]\n")
    assert "dx-not-in-force" in CliRunner().invoke(main, ["check", claim]).stdout
    broken = CliRunner().invoke(main, ["check", claim, "--icd10cm", str(tmp_path / "nope.txt")])
    assert broken.exit_code == 2 and "nope.txt" in broken.output


def test_the_day_context_spans_every_file_of_a_run(tmp_path):
    """96523 this morning in one file, an office visit for the same patient and day in
    another: one run sees both, whichever file each is in; each file alone is clean."""
    from rule_fixtures import rules_builder

    build = rules_builder()
    morning, afternoon = tmp_path / "morning.x12", tmp_path / "afternoon.x12"
    morning.write_text(build.interchange("837p", [[build.claim("PF-1", [build.CLEAN])]],
                                         control="000000001"))
    afternoon.write_text(build.interchange(
        "837p", [[build.claim("EM-2", [build.line("99213", charge="100")])]],
        control="000000002"))
    for alone in (morning, afternoon):
        assert CliRunner().invoke(main, ["check", str(alone), "--no-ledger"]).exit_code == 0
    both = CliRunner().invoke(main, ["check", str(morning), str(afternoon), "--no-ledger",
                                     "--format", "json"])
    assert both.exit_code == 1
    claims = {c["id"]: c for f in json.loads(both.stdout)["files"] for ic in f["interchanges"]
              for g in ic["groups"] for t in g["transactions"] for c in t["claims"]}
    assert claims["PF-1"]["status"] == "rejected"
    (finding,) = [f for f in claims["PF-1"]["findings"] if f["rule"] == "96523-sole-service"]
    assert "EM-2" in finding["message"]
    # the same claim in two files of the run is one claim, never its own conflict
    again = tmp_path / "again.x12"
    again.write_text(morning.read_text().replace("000000001", "000000003"))
    twice = CliRunner().invoke(main, ["check", str(morning), str(again), "--no-ledger"])
    assert twice.exit_code == 0, twice.output


def test_a_run_says_each_notice_once_with_the_claims_it_concerns(tmp_path):
    from scrubber.core import RunNotices
    from scrubber.rules.findings import Notice

    claims = [e for e in scrub(MULTI).claims]
    said = Notice("uncovered", "dates no release covers", source="test")
    notices = RunNotices([Notice("no-data-x", "x did not run")])
    for claim in claims:
        notices.add(ScrubbedClaim(claim.record, claim.findings, notices=(said,)))
    out = io.StringIO()
    sink = report_sink("json", out)
    sink.begin_file("f")
    sink.end_file(FileEnd("f", {"claims": 0}))
    notices.deliver([sink])
    sink.close()
    total = json.loads(out.getvalue())["total"]["notices"]
    assert total == [
        {"key": "no-data-x", "message": "x did not run", "source": "", "claims": 0},
        {"key": "uncovered", "message": "dates no release covers", "source": "test",
         "claims": len(claims)}]


def test_a_notice_a_rule_yields_rides_on_its_claim_not_among_its_findings():
    from scrubber.model import read
    from scrubber.rules.engine import Engine
    from scrubber.rules.findings import Notice, Severity
    from scrubber.rules.profile import load_profile
    from scrubber.rules.registry import Rule

    def check(ctx):
        yield Notice("k", "cannot judge this one")

    rule = Rule("test-notice", Severity.REJECT, "s", "src", None, check, "doc")
    engine = Engine(load_profile(), [rule])
    record = next(e for e in read(MULTI) if e.__class__.__name__ == "ClaimRecord")
    scrubbed = engine.scrub(record)
    assert scrubbed.findings == () and not scrubbed.rejected
    assert [n.key for n in scrubbed.notices] == ["k"]
