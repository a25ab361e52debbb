"""The three summary formats: the text a biller reads, the JSON contract, the HTML page."""

from __future__ import annotations

import io
import json
from pathlib import Path

import jsonschema
import lxml.html
import pytest
from x12text import claim_837p, interchange

from scrubber.api import check_files, scrub_events
from scrubber.emit.summary import HtmlSummary, TextSummary, split_marked
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
    writer.begin_file(str(path))
    for event in scrub_events(path):
        writer.event(event)
    writer.end_file()
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
        "0 envelope problem(s)\n")


def test_colour_only_on_request_and_phi_only_when_asked():
    path = RULES / "96523-units.fail.837p.x12"
    assert "\x1b[" not in render(TextSummary, path)
    assert "\x1b[31;1mREJECTED" in render(TextSummary, path, color=True)
    assert "RIVERA" in render(TextSummary, path, show_phi=True)


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


def test_schema_rejects_a_broken_report():
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"files": [{"path": "x", "interchanges": [], "problems": []}]},
                            SCHEMA)


@pytest.mark.parametrize("path", sorted(RULES.glob("*.fail*.x12"))[:12],
                         ids=lambda p: p.name)
def test_html_page_parses_and_holds_every_rejected_claim(path):
    page = render(HtmlSummary, path)
    doc = lxml.html.document_fromstring(page)
    rejected = [e.record.claim.id for e in scrub_events(path)
                if isinstance(e, ScrubbedClaim) and e.rejected]
    headings = [h.text_content() for h in doc.iter("h3")]
    for claim_id in rejected:
        assert any(claim_id in h for h in headings)
    assert not doc.xpath("//script | //link | //img | //*[@src]")  # self-contained
    if rejected:
        assert doc.xpath("//mark") or doc.xpath("//pre")


def test_html_escapes_everything():
    data = interchange(claim_837p("A&B<1>")).encode()
    (record,) = [e for e in read(data) if isinstance(e, ClaimRecord)]
    finding = Finding("96523-device", Severity.REJECT, "<script>alert(1)</script> & more",
                      "fix <b>this</b>", record.claim.id, None, record.claim.location,
                      "CLM*A&B<1>*100", element="CLM01")
    out = io.StringIO()
    writer = HtmlSummary(out)
    writer.begin_file("<batch>.x12")
    writer.event(record.interchange)
    writer.event(ScrubbedClaim(record, (finding,)))
    writer.end_file()
    page = out.getvalue()
    assert "<script>" not in page and "<b>this" not in page
    assert "&lt;script&gt;" in page and "A&amp;B&lt;1&gt;" in page
    doc = lxml.html.document_fromstring(page)
    assert doc.xpath("//mark")[0].text == "A&B<1>"


@pytest.mark.parametrize("writer_class, name", [(TextSummary, "sample-summary.txt"),
                                                (HtmlSummary, "sample-summary.html")])
def test_docs_samples_are_what_the_scrubber_writes(writer_class, name):
    """docs/ shows a real summary; regenerate it when the format changes."""
    sample = "fixtures/rules/96523-drug-admin.fail.837p.x12"
    import os
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        assert render(writer_class, Path(sample)) == (ROOT / "docs" / name).read_text()
    finally:
        os.chdir(cwd)
