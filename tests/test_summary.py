"""The three summary formats: the text a biller reads, the JSON contract, the HTML page."""

from __future__ import annotations

import io
import json
from pathlib import Path

import jsonschema
import lxml.html
import pytest
from x12text import claim_837p, interchange

from scrubber.api import check_files
from scrubber.core import Scrubber, feed
from scrubber.emit.html_report import HtmlReport, page_data
from scrubber.emit.summary import TextSummary, split_marked
from scrubber.model import ClaimRecord, read
from scrubber.rules.findings import Finding, ScrubbedClaim, Severity

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
RULES = FIXTURES / "rules"
SCHEMA = json.loads((ROOT / "docs" / "report.schema.json").read_text())
ALL = sorted(FIXTURES.glob("*.x12")) + sorted(RULES.glob("*.x12"))


def render(writer_class, path, **kwargs) -> str:
    out = io.StringIO()
    writer = writer_class(out, **kwargs)
    feed(str(path), Scrubber().events(path), [writer])
    writer.close()
    return out.getvalue()


def test_text_summary_golden():
    text = render(TextSummary, RULES / "96523-units.fail.837p.x12")
    assert text == (
        f"{RULES / '96523-units.fail.837p.x12'}\n"
        "  claim UNIT-A  REJECTED  charge 120  patient R*****, A***  billing NPI 1938475625\n"
        "    REJECT 96523-units (service line 1): 96523 is billed with 2 units; it is "
        "reported with 1 unit a day.\n"
        "      line 24: SV1*HC:96523*120*UN*[2]***1\n"
        "      what to do: Bill 96523 with 1 unit.\n"
        "  1 claim(s): 0 accepted (0.00), 1 rejected (120.00), 0 with warnings; "
        "0 envelope problem(s)\n"
        "  verdict: fix 1 claim\n")


def test_colour_only_on_request_and_phi_only_when_asked():
    path = RULES / "96523-units.fail.837p.x12"
    assert "\x1b[" not in render(TextSummary, path)
    assert "\x1b[31;1mREJECTED" in render(TextSummary, path, color=True)
    assert "RIVERA" in render(TextSummary, path, show_phi=True)


def test_the_marked_element_is_reverse_video_or_brackets_never_both():
    path = RULES / "96523-units.fail.837p.x12"
    assert "SV1*HC:96523*120*UN*[2]***1" in render(TextSummary, path)
    coloured = render(TextSummary, path, color=True)
    assert "SV1*HC:96523*120*UN*\x1b[7m2\x1b[0m***1" in coloured
    assert "[2]" not in coloured


def test_a_batch_gets_a_verdict_per_file_and_a_total_naming_what_was_not_scrubbed(tmp_path):
    junk = tmp_path / "claims.txt"
    junk.write_text("these are not claims")
    paths = [str(RULES / "96523-units.fail.837p.x12"), str(FIXTURES / "837p-multi.x12"),
             str(junk)]
    out = io.StringIO()
    outcome = check_files(paths, out, conformance=False)
    text = out.getvalue()
    verdicts = [line.strip() for line in text.splitlines() if line.startswith("  verdict:")]
    assert verdicts == ["verdict: fix 1 claim", "verdict: ready to send",
                        "verdict: not an 837", "verdict: 1 file not scrubbed; fix 1 file "
                        "(1 claim rejected)"]
    total = text[text.index("total: 3 files"):]
    assert "4 claim(s): 3 accepted (428.50), 1 rejected (120.00)" in total
    assert f"not scrubbed: {junk}: no ISA header" in total
    assert outcome.not_scrubbed == [(str(junk), outcome.not_scrubbed[0][1])]
    one = io.StringIO()
    check_files(paths[:1], one, conformance=False)
    assert "total:" not in one.getvalue()  # one file is its own total


def test_envelope_problems_come_in_line_order():
    text = render(TextSummary, FIXTURES / "broken-truncated.x12")
    lines = [int(line.split(" line ")[1].split(":")[0]) for line in text.splitlines()
             if line.startswith("  ENVELOPE")]
    assert len(lines) >= 2 and lines == sorted(lines)


def test_envelope_problems_are_explained_in_words():
    text = render(TextSummary, FIXTURES / "broken-missing-iea.x12")
    assert "env-missing-iea" in text and "TA1, note 023" in text


def test_marking_the_offending_element():
    assert split_marked("SV1*HC:96523*60*UN*2***1", "*", "SV104") == \
        ("SV1*HC:96523*60*UN*", "2", "***1")
    assert split_marked("SV1*HC:96523", "*", "SV107") == ("SV1*HC:96523", "", "")
    assert split_marked("CLM*A*1", "*", None) == ("CLM*A*1", "", "")


@pytest.mark.parametrize("path", ALL, ids=[p.name for p in ALL])
def test_json_report_validates_against_its_schema(path):
    out = io.StringIO()
    check_files([str(path)], out, fmt="json")
    report = json.loads(out.getvalue())
    jsonschema.validate(report, SCHEMA)
    claims = [c for ic in report["files"][0]["interchanges"] for g in ic["groups"]
              for t in g["transactions"] for c in t["claims"]]
    summary = report["files"][0]["summary"]
    assert summary["claims"] == len(claims)
    assert summary["rejected"] == sum(c["status"] == "rejected" for c in claims)


def test_json_claims_name_their_payer_and_the_report_has_a_total(tmp_path):
    junk = tmp_path / "empty.x12"
    junk.write_bytes(b"")
    paths = [str(RULES / "96523-units.fail.837p.x12"), str(FIXTURES / "837i-multi.x12"),
             str(junk)]
    out = io.StringIO()
    check_files(paths, out, fmt="json", conformance=False)
    report = json.loads(out.getvalue())
    jsonschema.validate(report, SCHEMA)
    claims = [c for f in report["files"] for ic in f["interchanges"] for g in ic["groups"]
              for t in g["transactions"] for c in t["claims"]]
    text = "\n".join(p.read_text() for p in map(Path, paths[:2]))
    for claim in claims:  # the payer is the NM1*PR of the file, name and id
        assert f"NM1*PR*2*{claim['payer']['name']}*****PI*{claim['payer']['id']}~" in text
    total = report["total"]
    assert total["files"] == 3 and total["files_not_scrubbed"] == 1
    assert total["claims"] == len(claims)
    assert total["rejected"] == sum(c["status"] == "rejected" for c in claims)
    assert [f["verdict"] for f in report["files"]][2] == "not an 837"
    assert total["not_scrubbed"] == [{"path": str(junk), "reason": total["not_scrubbed"][0]
                                      ["reason"]}]
    by_payer = {(p["name"], p["id"]): p["claims"] for p in total["by_payer"]}
    assert sum(by_payer.values()) == len(claims)
    for (name, ident), n in by_payer.items():
        assert n == sum(c["payer"] == {"name": name, "id": ident} for c in claims)
    units = next(r for r in total["by_rule"] if r["rule"] == "96523-units")
    assert (units["rejected"], units["at_risk"]) == (1, "120.00")


def test_schema_rejects_a_broken_report():
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"files": [{"path": "x", "interchanges": [], "problems": []}]},
                            SCHEMA)


@pytest.mark.parametrize("path", sorted(RULES.glob("*.fail*.x12"))[:12],
                         ids=lambda p: p.name)
def test_html_page_parses_and_holds_every_rejected_claim(path):
    page = render(HtmlReport, path)
    doc = lxml.html.document_fromstring(page)
    rejected = [e.record.claim.id for e in Scrubber().events(path)
                if isinstance(e, ScrubbedClaim) and e.rejected]
    rows = page_data(page)["claims"]
    assert [row[1] for row in rows if row[2] == "rejected"] == rejected
    assert not doc.xpath("//link | //img | //*[@src] | //*[@href][not(starts-with(@href, '#'))]")
    assert all(script.text for script in doc.iter("script"))  # inline only: self-contained
    contexts = [group[1] for row in rows for group in row[9] or ()]
    assert contexts or not rejected
    for lines, here, before, marked, after in contexts:  # the segment, its element split out
        assert lines[here][1] == before + marked + after


def test_html_escapes_everything():
    data = interchange(claim_837p("A&B<1>")).encode()
    (record,) = [e for e in read(data) if isinstance(e, ClaimRecord)]
    finding = Finding("96523-device", Severity.REJECT, "<script>alert(1)</script> & more",
                      "fix <b>this</b>", record.claim.id, None, record.claim.location,
                      "CLM*A&B<1>*100", element="CLM01")
    out = io.StringIO()
    writer = HtmlReport(out)
    feed("<batch>.x12", [record.interchange, ScrubbedClaim(record, (finding,))], [writer])
    writer.close()
    page = out.getvalue()
    assert "<script>alert" not in page and "<b>this" not in page and "<batch>" not in page
    assert "&lt;batch&gt;.x12" in page  # markup around the data is escaped by lxml
    doc = lxml.html.document_fromstring(page)
    assert [s.get("id") for s in doc.iter("script")] == ["report-data", "report-details", None]
    # the data travels as text, which the page's script sets as text (the browser test)
    (row,) = page_data(page)["claims"]
    ((said, context, fixes),) = row[9]
    assert (row[1], said[0][4], fixes) == ("A&B<1>", "<script>alert(1)</script> & more",
                                           ["fix <b>this</b>"])
    assert context[3] == "A&B<1>"  # the marked element


SAMPLE_BATCH = [  # docs/sample-summary.* and docs/sample-report.png show this batch
    "fixtures/rules/96523-drug-admin.fail.837p.x12",
    "fixtures/rules/96523-units.fail.837p.x12",
    "fixtures/rules/96523-device.fail.837p.x12",
    "fixtures/rules/96523-device.fail-picc.837p.x12",
    "fixtures/rules/96523-device.fail-transport.837p.x12",
    "fixtures/rules/96523-sole-service.fail.837i.x12",
    "fixtures/rules/snip-claim-balance.fail.837p.x12",
    "fixtures/rules/snip-npi-check-digit.fail.837p.x12",
    "fixtures/837p-multi.x12",
    "fixtures/broken-missing-iea.x12",
    "fixtures/broken-empty.x12",
]


def sample(fmt: str) -> str:
    """What `scrub check <SAMPLE_BATCH> --format fmt --no-ledger` writes, run from the root."""
    import os
    cwd, epoch = os.getcwd(), os.environ.get("SOURCE_DATE_EPOCH")
    os.chdir(ROOT)
    os.environ["SOURCE_DATE_EPOCH"] = "1796083200"  # the run's time in the report: fixed
    try:
        out = io.StringIO()
        check_files(SAMPLE_BATCH, out, fmt=fmt, no_ledger=True)  # as --no-ledger
        return out.getvalue()
    finally:
        os.chdir(cwd)
        if epoch is None:
            del os.environ["SOURCE_DATE_EPOCH"]
        else:
            os.environ["SOURCE_DATE_EPOCH"] = epoch


@pytest.mark.parametrize("fmt, name", [("text", "sample-summary.txt"),
                                       ("html", "sample-summary.html")])
def test_docs_samples_are_what_the_scrubber_writes(fmt, name):
    """docs/ shows a real batch report; regenerate it when the format changes, e.g.
    ``python -c 'import sys; sys.path[:0] = ["tests"]; import test_summary as t;
    print(t.sample("text"), end="")' > docs/sample-summary.txt``.
    """
    assert sample(fmt) == (ROOT / "docs" / name).read_text()


def test_the_text_lists_rejections_before_warnings():
    (record,) = [e for e in read(interchange(claim_837p("MIX-1")).encode())
                 if isinstance(e, ClaimRecord)]
    findings = tuple(Finding(rule, severity, f"{rule} found", "", record.claim.id, None,
                             record.claim.location, "")
                     for rule, severity in (("rule-w", Severity.WARN),
                                            ("rule-i", Severity.INFO),
                                            ("rule-r", Severity.REJECT)))
    out = io.StringIO()
    writer = TextSummary(out)
    feed("mix.x12", [ScrubbedClaim(record, findings)], [writer])
    said = [line.split()[1].rstrip(":") for line in out.getvalue().splitlines()
            if line.startswith("    ") and line.split()[0] in ("REJECT", "WARN", "INFO")]
    assert said == ["rule-r", "rule-w", "rule-i"]
