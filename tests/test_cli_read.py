"""`scrub check` as a user runs it: JSON contract, text listing, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from scrubber.cli import main

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def run(*args: str, input: bytes | None = None):
    return CliRunner().invoke(main, list(args), input=input)


def test_json_contract_on_a_fixture():
    result = run("check", str(FIXTURES / "837p-multi.x12"), "--format", "json")
    assert result.exit_code in (0, 1), result.output
    report = json.loads(result.output)
    (file,) = report["files"]
    assert file["path"].endswith("837p-multi.x12") and file["problems"] == []
    claims = [c for ic in file["interchanges"] for g in ic["groups"]
              for t in g["transactions"] for c in t["claims"]]
    assert len(claims) == 3
    for claim in claims:
        assert {"id", "charge", "frequency", "patient", "billing_provider_npi", "lines",
                "location"} <= set(claim)
        assert {"segment", "line"} <= set(claim["location"])
        for line in claim["lines"]:
            assert {"number", "procedure", "modifiers", "revenue_code", "charge", "units",
                    "date_from", "date_to", "control_number"} <= set(line)
            assert isinstance(line["charge"], str)


def test_standard_input_reads_like_a_file():
    data = (FIXTURES / "837p-single.x12").read_bytes()
    piped = json.loads(run("check", "-", "--format", "json", input=data).output)
    direct = json.loads(run("check", str(FIXTURES / "837p-single.x12"), "--format", "json").output)
    strip = lambda r: r["files"][0]["interchanges"]  # noqa: E731
    assert strip(piped) == strip(direct)


def test_unreadable_inputs_exit_2_with_a_clear_message(tmp_path):
    for target in (FIXTURES / "broken-binary.bin", FIXTURES / "broken-empty.x12",
                   tmp_path / "missing.x12"):
        result = run("check", str(target))
        assert result.exit_code == 2, (target, result.output)
        assert "Traceback" not in result.output
        assert any(w in result.output for w in ("binary", "empty", "does not exist"))


def test_broken_envelope_exits_1_and_says_where():
    result = run("check", str(FIXTURES / "broken-se-count.x12"))
    assert result.exit_code == 1
    assert "env-se-count" in result.output and "line" in result.output


def test_text_summary_masks_names_by_default():
    target = str(FIXTURES / "rules" / "96523-units.fail.837p.x12")
    result = run("check", target)
    assert result.exit_code == 1 and "UNIT-A" in result.output
    assert "RIVERA" not in result.output and "R*****" in result.output
    assert "RIVERA" in run("check", target, "--show-phi").output


def test_quiet_and_verbose():
    target = str(FIXTURES / "837p-multi.x12")
    quiet = run("check", target, "-q")
    assert quiet.exit_code == 0 and quiet.output == ""
    verbose = run("check", target, "-v").output
    assert verbose.count("accepted  charge") == 3
    assert "accepted  charge" not in run("check", target).output


def test_progress_reports_offsets_of_claims():
    import io

    from scrubber.api import check_files

    seen, stages = [], []

    class Progress:
        def stage(self, label: str) -> None:
            stages.append(label)

        def advance(self, name: str, offset: int) -> None:
            seen.append(offset)

    path = str(FIXTURES / "837p-multi.x12")
    check_files([path], io.StringIO(), progress=Progress())
    assert len(seen) == 3 and seen == sorted(seen) and seen[0] > 0
    # one reading checks the file and indexes its day context, the next scrubs it
    assert stages == [f"checking {path} and indexing its day context", f"scrubbing {path}"]


def test_every_command_has_help_with_an_example():
    for name in main.commands:
        result = run(name, "--help")
        assert result.exit_code == 0 and "Example" in result.output, name
    assert run("version").output.startswith("scrub ")


def test_a_long_run_shows_a_status_line_and_clears_it():
    import io
    import time

    from scrubber.cli import StatusLine

    def shown(text: str) -> None:
        """Wait until the status thread has drawn ``text`` (the deadline only bounds a hang:
        a loaded machine may run the thread late, never wrongly)."""
        deadline = time.monotonic() + 60
        while text not in stream.getvalue() and time.monotonic() < deadline:
            time.sleep(0.01)

    stream = io.StringIO()
    status = StatusLine({"a.x12": 1000, "b.x12": 3000}, stream, delay=0.05, period=0.01)
    status.stage("loading the implementation guides")
    shown("\rscrub: loading the implementation guides")
    status.stage("scrubbing b.x12")
    status.advance("a.x12", 900)
    status.advance("b.x12", 1000)  # a.x12 is through: 1000 + 1000 of 4000 bytes
    shown("scrub: scrubbing b.x12  50% of 0.0 MB")
    status.close()
    text = stream.getvalue()
    assert "\rscrub: loading the implementation guides" in text
    assert "scrub: scrubbing b.x12  50% of 0.0 MB" in text
    assert text.endswith("\r" + " " * status.width + "\r")


def test_a_quick_run_shows_no_status_line():
    import io

    from scrubber.cli import StatusLine

    stream = io.StringIO()
    status = StatusLine({}, stream, delay=5)
    status.stage("scrubbing a.x12")
    status.close()
    assert stream.getvalue() == ""
