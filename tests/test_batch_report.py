"""One report for a batch: every input scrubbed or named as not scrubbed, with a total."""

from __future__ import annotations

import io
import json
from pathlib import Path

import lxml.html
from click.testing import CliRunner
from x12text import claim_837p, interchange

from scrubber.api import check_files
from scrubber.cli import main
from scrubber.core import feed
from scrubber.emit.html_report import HtmlReport, page_data
from scrubber.model import ClaimRecord, read
from scrubber.rules.findings import Finding, ScrubbedClaim, Severity

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"


def test_a_valid_batch_beside_junk_is_not_a_pass(tmp_path):
    """The issue's case: batch.txt (valid) and claims.txt (junk) in one folder exited 0."""
    (tmp_path / "batch.txt").write_bytes((FIXTURES / "837p-multi.x12").read_bytes())
    (tmp_path / "claims.txt").write_text("Claim list for Tuesday\n")
    report = tmp_path / "report.txt"
    result = CliRunner().invoke(main, ["check", str(tmp_path), "--no-ledger",
                                       "--output", str(report)])
    assert result.exit_code == 2
    text = report.read_text()
    assert f"not scrubbed: {tmp_path / 'claims.txt'}: no ISA header" in text
    assert "verdict: 1 file not scrubbed" in text
    assert report.stat().st_mode & 0o777 == 0o600


def test_every_format_writes_one_report_for_every_input_to_output(tmp_path):
    inputs = [str(FIXTURES / "837p-multi.x12"), str(FIXTURES / "rules" /
                                                   "96523-units.fail.837p.x12")]
    for fmt in ("text", "json", "html", "csv"):
        target = tmp_path / f"report.{fmt}"
        result = CliRunner().invoke(main, ["check", *inputs, "--no-ledger", "--format", fmt,
                                           "--output", str(target)])
        assert result.exit_code == 1, (fmt, result.output)
        assert result.stdout == ""
        body = target.read_text()
        for name in inputs[1:] if fmt == "csv" else inputs:  # CSV: files with findings
            assert name in body, fmt
        if fmt == "json":
            assert json.loads(body)["total"]["files"] == 2


def report(paths: list[str], fmt: str) -> str:
    out = io.StringIO()
    check_files(paths, out, fmt=fmt, conformance=False)
    return out.getvalue()


def test_one_html_page_for_a_batch_with_sections_chart_and_breakdowns(tmp_path):
    junk = tmp_path / "claims.txt"
    junk.write_text("not claims")
    paths = [str(p) for p in sorted((FIXTURES / "rules").glob("96523-*.fail*.x12"))[:6]]
    paths += [str(FIXTURES / "837i-multi.x12"), str(junk)]
    page = report(paths, "html")
    assert page.count("<html") == 1
    doc = lxml.html.document_fromstring(page)
    sections = doc.xpath("//section[@class='file']/h2")
    assert [h.text_content() for h in sections] == paths
    assert str(junk) in doc.get_element_by_id("not-scrubbed").text_content()
    total = json.loads(report(paths, "json"))["total"]
    bars = {r.get("data-rule"): (int(r.get("data-claims")), r.get("data-at-risk"))
            for r in doc.xpath("//svg[@id='chart']/rect[@class='bar']")}
    assert bars == {r["rule"]: (r["rejected"], r["at_risk"]) for r in total["by_rule"]
                    if r["rejected"]}
    assert bars  # the sample has rejections to chart
    payers = [row.xpath("td")[0].text_content()
              for row in doc.get_element_by_id("by-payer").xpath("tbody/tr")]
    assert payers == [f"{p['name']} ({p['id']})" for p in total["by_payer"]]
    rows = page_data(page)["claims"]
    assert len(rows) == total["claims"]  # every claim, clean ones too
    assert sum(r[2] == "rejected" for r in rows) == total["rejected"]
    verdicts = [row.xpath("td")[-1].text_content()
                for row in doc.get_element_by_id("by-file").xpath("tbody/tr")]
    assert verdicts == [f["verdict"] for f in json.loads(report(paths, "json"))["files"]]


def _record() -> ClaimRecord:
    text = interchange(claim_837p("ORDER-1", lines=[("96523", "60", "2", "20261102")]))
    (record,) = [e for e in read(text.encode()) if isinstance(e, ClaimRecord)]
    return record


def _finding(record: ClaimRecord, severity: Severity, rule: str, on: str, fix: str) -> Finding:
    segment = next(s for s in record.claim.segments if s.elements[0] == on)
    where = record.claim.location._replace(segment=segment.ordinal, line=segment.line)
    return Finding(rule, severity, f"{rule} says so", fix, record.claim.id,
                   1 if on == "SV1" else None, where, "*".join(segment.elements))


def test_rejections_come_first_and_each_segment_is_shown_once():
    record = _record()
    findings = (_finding(record, Severity.WARN, "rule-w", "CLM", "Check the claim."),
                _finding(record, Severity.REJECT, "rule-a", "SV1", "Fix the line."),
                _finding(record, Severity.REJECT, "rule-b", "SV1", "Fix the line."))
    out = io.StringIO()
    writer = HtmlReport(out)
    feed("one.x12", [ScrubbedClaim(record, findings)], [writer])
    writer.close()
    (row,) = page_data(out.getvalue())["claims"]
    said = [[(f[0], f[1], f[3]) for f in findings] for findings, _, _ in row[9]]
    assert said == [[("reject", "rule-a", 1), ("reject", "rule-b", 1)],  # SV1 once
                    [("warn", "rule-w", None)]]  # CLM once
    assert [fixes for _, _, fixes in row[9]] == [["Fix the line."], ["Check the claim."]]
    assert [context[0][context[1]][1].split("*")[0] for _, context, _ in row[9]] == \
        ["SV1", "CLM"]
    assert row[2] == "rejected"


def test_a_claim_a_finding_names_is_a_link_that_lands_on_it():
    path = str(FIXTURES / "rules" / "96523-drug-admin.fail.837p.x12")
    data = page_data(report([path], "html"))
    rows = {row[1]: row for row in data["claims"]}
    ((findings, _, _),) = rows["ADMIN-A"][9]
    (reference,) = findings[0][5]  # the page links it to the claim of that id and submission
    assert reference == f"ADMIN-B (submission {data['submissions'][rows['ADMIN-A'][8]]})"
    assert rows["ADMIN-B"][2:4] == ["accepted", "300"]  # a clean claim has its row too


def test_csv_has_a_row_per_finding_and_problem_masked_as_the_text(tmp_path):
    import csv

    empty = tmp_path / "empty.x12"
    empty.write_bytes(b"")
    paths = [str(p) for p in sorted((FIXTURES / "rules").glob("*.fail*.837p.x12"))[:8]]
    paths += [str(FIXTURES / "rules" / "96523-units.fail.837p.x12"),
              str(FIXTURES / "broken-missing-iea.x12"), str(empty)]
    rows = list(csv.DictReader(io.StringIO(report(paths, "csv"))))
    assert list(rows[0]) == ["file", "claim", "line", "rule", "severity", "status_code",
                             "line_charge", "at_risk", "message", "fix", "patient", "payer",
                             "file_line"]
    files = json.loads(report(paths, "json"))["files"]
    want = []
    for f in files:
        want += [(f["path"], "", p["code"]) for p in f["problems"]]
        for ic in f["interchanges"]:
            want += [(f["path"], "", p["code"]) for p in ic["problems"]]
            for g in ic["groups"]:
                want += [(f["path"], "", p["code"]) for p in g["problems"]]
                for t in g["transactions"]:
                    want += [(f["path"], "", p["code"]) for p in t["problems"]]
                    want += [(f["path"], c["id"], x["rule"]) for c in t["claims"]
                             for x in c["findings"]]
    assert sorted((r["file"], r["claim"], r["rule"]) for r in rows) == sorted(want)
    assert {r["file"] for r in rows} == set(paths)  # every file, scrubbed or not
    assert next(r for r in rows if r["file"] == str(empty))["severity"] == "not scrubbed"
    units = next(r for r in rows if r["rule"] == "96523-units"
                 and r["file"].endswith("96523-units.fail.837p.x12"))
    assert (units["line"], units["status_code"], units["patient"]) == \
        ("1", "A7:476", "R*****, A***")
    first = next(r for r in rows if r["claim"] == units["claim"] and r["file"] == units["file"])
    assert (first["line_charge"], first["at_risk"]) == ("120", "120.00")  # once, first row
    shown = CliRunner().invoke(main, ["check", *paths, "--format", "csv", "--no-ledger",
                                      "--show-phi"])
    assert "RIVERA" in shown.stdout and "RIVERA" not in report(paths, "csv")


def test_a_csv_cell_never_runs_as_a_formula():
    from scrubber.emit.csv_report import cell

    assert [cell(v) for v in ("=SUM(A1)", "+1", "-2", "@x", "PLAIN", None, 3)] == \
        ["'=SUM(A1)", "'+1", "'-2", "'@x", "PLAIN", "", "3"]


def test_a_control_character_in_the_data_is_shown_not_fatal_to_the_page(tmp_path):
    """XML cannot hold \\x07; the page shows it as an escape instead of failing."""
    text = interchange(claim_837p("BELL\x07", lines=[("96523", "60", "2", "20261102")]))
    path = tmp_path / "bell.x12"
    path.write_text(text)
    page = report([str(path)], "html")
    lxml.html.document_fromstring(page)
    (row,) = page_data(page)["claims"]
    assert row[1] == "BELL\\x07"


def test_the_fixtures_folder_gives_one_page_with_the_chart_and_breakdowns(tmp_path):
    """The issue's 'done when': scrub check fixtures/ --format html --output report.html."""
    target = tmp_path / "report.html"
    result = CliRunner().invoke(main, ["check", str(FIXTURES), "--format", "html",
                                       "--output", str(target), "--no-ledger"])
    assert result.exit_code == 2  # the folder holds files that are not 837s
    page = target.read_text()
    assert page.count("<html") == 1
    doc = lxml.html.document_fromstring(page)
    inputs = sorted(str(p) for p in FIXTURES.iterdir()
                    if p.is_file() and not p.name.startswith("."))
    assert sorted(h.text_content() for h in doc.xpath("//section/h2")) == inputs
    assert doc.xpath("//svg[@id='chart']/rect[@class='bar']")
    for table in ("by-rule", "by-payer", "by-provider", "by-file"):
        assert doc.get_element_by_id(table).xpath("tbody/tr"), table
    assert len(page_data(page)["claims"]) == sum(int(row.xpath("td")[1].text_content()) for
                                                 row in doc.get_element_by_id("by-file")
                                                 .xpath("tbody/tr"))
    not_scrubbed = doc.get_element_by_id("not-scrubbed").text_content()
    for name in ("broken-empty.x12", "broken-no-isa.x12", "broken-binary.bin"):
        assert name in not_scrubbed


def test_html_masks_names_unless_asked(tmp_path):
    path = str(FIXTURES / "rules" / "96523-units.fail.837p.x12")
    masked = report([path], "html")
    assert "RIVERA" not in masked and "RIVERA" not in str(page_data(masked))
    assert [row[4] for row in page_data(masked)["claims"]] == ["R*****, A***"]
    shown = tmp_path / "shown.html"
    CliRunner().invoke(main, ["check", path, "--format", "html", "--show-phi", "--no-ledger",
                              "--output", str(shown)])
    assert [row[4] for row in page_data(shown.read_text())["claims"]] == ["RIVERA, ALEX"]
