"""The walker and model: claims, lines and parties read right; bad envelopes located."""

from __future__ import annotations

import io
import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from x12text import claim_837p, interchange, npi

from scrubber.model import (
    ClaimRecord,
    EnvelopeEnd,
    Interchange,
    Problem,
    Transaction,
    read,
)
from scrubber.model.keys import patient_identity

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
MANIFEST = json.loads((FIXTURES / "MANIFEST.json").read_text())
CORPUS = ROOT.parent / "shared" / "corpus"


def events(source) -> list:
    return list(read(source))


def claims_of(source) -> list[ClaimRecord]:
    return [e for e in read(source) if isinstance(e, ClaimRecord)]


def codes(source) -> list[str]:
    return [e.code for e in read(source) if isinstance(e, Problem)]


VALID = [m for m in MANIFEST if m["kind"] != "broken"]


@pytest.mark.parametrize("entry", VALID, ids=[m["file"] for m in VALID])
def test_valid_fixtures_read_exactly_as_the_manifest_says(entry):
    evs = events(FIXTURES / entry["file"])
    assert [e for e in evs if isinstance(e, Problem)] == []
    claims = [e for e in evs if isinstance(e, ClaimRecord)]
    assert sum(isinstance(e, Interchange) for e in evs) == entry["interchanges"]
    assert sum(isinstance(e, Transaction) for e in evs) == entry["transactions"]
    assert [c.claim.id for c in claims] == [m["id"] for m in entry["claims"]]
    for record, want in zip(claims, entry["claims"], strict=True):
        claim = record.claim
        assert record.kind == entry["kind"]
        assert claim.charge_text == want["charge"]
        assert claim.charge == Decimal(want["charge"])
        assert [line.charge_text for line in claim.lines] == want["line_charges"]
        assert len(claim.lines) == want["lines"]
        assert record.patient.last_name == want["patient_last"]
        assert record.billing_provider.npi == want["billing_npi"]
        assert [line.number for line in claim.lines] == list(range(1, len(claim.lines) + 1))
    ends = [e for e in evs if isinstance(e, EnvelopeEnd)]
    assert all(e.closed for e in ends)


def test_same_content_whatever_the_layout():
    """One segment per line, all on one line, other delimiters: the same claims."""
    def summary(name):
        return [(c.claim.charge, [(ln.procedure, ln.modifiers, ln.charge, ln.units,
                                   ln.date_from, ln.diagnosis_pointers)
                                  for ln in c.claim.lines])
                for c in claims_of(FIXTURES / name)]
    single = summary("837p-single.x12")
    assert summary("837p-oneline.x12") == single
    bom = summary("837p-bom.x12")
    assert bom and bom[0][1]


def test_dependent_patient_belongs_to_its_subscriber_by_hl_parent():
    records = claims_of(FIXTURES / "837p-dependent.x12")
    assert len(records) >= 2
    for record in records:
        assert not record.patient.is_subscriber
        assert record.patient.member_id == record.subscriber.member_id
        assert record.patient.hl_id != record.subscriber.hl_id
    assert len({r.patient.first_name for r in records}) == len(records)


def test_institutional_claim_fields():
    (record,) = claims_of(FIXTURES / "837i-single.x12")
    claim = record.claim
    assert record.kind == "837I"
    assert claim.facility_code == "13" and claim.facility_qualifier == "A"
    assert claim.institutional is not None
    period = claim.date("434")
    assert period.format == "RD8" and period.start <= period.end
    assert all(line.revenue_code for line in claim.lines)
    assert any(p.role == "71" and p.npi for p in claim.providers)
    assert claim.diagnoses[0].qualifier == "ABK"


def test_line_details_from_a_built_claim():
    body = claim_837p("PCN9", lines=[("96523", "60", "1", "20261102"),
                                     ("36591", "25.50", "2", "20261102")],
                      notes=["PORT-A-CATH FLUSHED 10ML NS"])
    body = [s.replace("SV1*HC:96523*60", "SV1*HC:96523:59:XU*60") for s in body]
    (record,) = claims_of(interchange(body).encode())
    claim = record.claim
    assert claim.notes[0].qualifier == "ADD" and "10ML" in claim.notes[0].text
    first, second = claim.lines
    assert first.procedure == "96523" and first.modifiers == ("59", "XU")
    assert first.date_of_service == date(2026, 11, 2)
    assert second.charge == Decimal("25.50") and second.units == Decimal(2)
    assert first.service_location.line == first.location.line + 1
    assert claim.segments[0].id == "CLM" and claim.segments[-1].id == "DTP"
    assert patient_identity(record) == (npi("123456789"), "MBR123456", "TESTER", "ALEX",
                                        "1980-01-01")


def test_rd8_and_bad_dates():
    body = claim_837p(lines=[("99213", "100", "1", "20261102")])
    body = [s.replace("DTP*472*D8*20261102", "DTP*472*RD8*20261102-20261104") for s in body]
    (line,) = claims_of(interchange(body).encode())[0].claim.lines
    assert (line.date_from, line.date_to) == (date(2026, 11, 2), date(2026, 11, 4))
    assert line.date_of_service is None
    body = [s.replace("RD8*20261102-20261104", "D8*20261399") for s in body]
    (line,) = claims_of(interchange(body).encode())[0].claim.lines
    assert line.date_from is None and line.dates[0].text == "20261399"


def test_hl_parent_decides_not_position():
    """A patient HL whose parent is the first subscriber belongs to that subscriber."""
    body = claim_837p("C1")
    # a second subscriber, then a dependent pointing back at the first subscriber (HL 2)
    se = body.index(next(s for s in body if s.startswith("SE*")))
    extra = [
        "HL*3*1*22*0", "SBR*P*18*******CI", "NM1*IL*1*OTHER*PAT****MI*MBR999",
        "DMG*D8*19700101*M", "NM1*PR*2*FICTIONAL PAYER*****PI*PAYER01",
        "CLM*C2*50***11:B:1*Y*A*Y*Y", "HI*ABK:Z452", "LX*1", "SV1*HC:99212*50*UN*1***1",
        "DTP*472*D8*20261102",
        "HL*4*2*23*0", "PAT*19", "NM1*QC*1*TESTER*KID", "DMG*D8*20150101*F",
        "CLM*C3*70***11:B:1*Y*A*Y*Y", "HI*ABK:Z452", "LX*1", "SV1*HC:99212*70*UN*1***1",
        "DTP*472*D8*20261102",
    ]
    body = body[:se] + extra + [f"SE*{se + len(extra)}*0001"] + body[se + 1:]
    body = [s.replace("HL*2*1*22*0", "HL*2*1*22*1") for s in body]
    records = claims_of(interchange(body).encode())
    assert [r.claim.id for r in records] == ["C1", "C2", "C3"]
    assert records[2].subscriber.member_id == "MBR123456"
    assert records[2].patient.member_id == "MBR123456"
    assert codes(interchange(body).encode()) == []


# -- broken inputs ------------------------------------------------------------

@pytest.mark.parametrize("name, expected, fatal", [
    ("broken-empty.x12", "syntax-empty", True),
    ("broken-no-isa.x12", "syntax-no-isa", True),
    ("broken-binary.bin", "syntax-binary", True),
    ("broken-isa-short.x12", "syntax-isa-length", False),
    ("broken-truncated.x12", "env-missing-se", False),
    ("broken-missing-se.x12", "env-missing-se", False),
    ("broken-missing-ge.x12", "env-missing-ge", False),
    ("broken-missing-iea.x12", "env-missing-iea", False),
    ("broken-se-count.x12", "env-se-count", False),
    ("broken-control-mismatch.x12", "env-iea-control", False),
    ("broken-835.x12", "env-unsupported-transaction", False),
    ("broken-4010.x12", "env-unsupported-version", False),
])
def test_broken_fixture_gives_a_located_problem(name, expected, fatal):
    problems = [e for e in read(FIXTURES / name) if isinstance(e, Problem)]
    match = [p for p in problems if p.code == expected]
    assert match, [p.code for p in problems]
    assert match[0].fatal is fatal
    assert match[0].message
    if not fatal:
        assert match[0].location is not None and match[0].location.line >= 1


def test_truncated_file_still_yields_the_claims_it_has():
    entry = next(m for m in MANIFEST if m["file"] == "broken-truncated.x12")
    records = claims_of(FIXTURES / "broken-truncated.x12")
    assert [r.claim.id for r in records] == [c["id"] for c in entry["claims"]]
    assert {"env-missing-se", "env-missing-ge", "env-missing-iea"} <= \
        set(codes(FIXTURES / "broken-truncated.x12"))


def test_control_mismatch_names_both_numbers():
    problems = [e for e in read(FIXTURES / "broken-control-mismatch.x12")
                if isinstance(e, Problem)]
    assert {"env-iea-control", "env-ge-control"} <= {p.code for p in problems}
    assert all(p.segment_text for p in problems)


def test_second_interchange_is_read_after_a_bad_first():
    entry = next(m for m in MANIFEST if m["file"] == "broken-two-interchanges-first-bad.x12")
    evs = events(FIXTURES / "broken-two-interchanges-first-bad.x12")
    assert [c.claim.id for c in evs if isinstance(c, ClaimRecord)] == \
        [c["id"] for c in entry["claims"]]
    (problem,) = [e for e in evs if isinstance(e, Problem)]
    assert problem.code == "env-unsupported-transaction" and problem.envelope == "transaction"


def test_missing_paths_and_directories_are_problems_not_exceptions(tmp_path):
    for source in (tmp_path, tmp_path / "nope.x12"):
        (problem,) = events(source)
        assert problem.fatal and problem.code == "file-unreadable"


def test_streams_and_bytes_read_like_paths():
    path = FIXTURES / "837p-multi.x12"
    want = [r.claim for r in claims_of(path)]
    assert [r.claim for r in claims_of(path.read_bytes())] == want
    assert [r.claim for r in claims_of(io.BytesIO(path.read_bytes()))] == want


@pytest.mark.skipif(not CORPUS.is_dir(), reason="shared corpus not present")
def test_corpus_reads_without_exceptions_and_counts_claims():
    """Files written by other projects: every CLM in an 837 5010 set becomes a claim."""
    for path in CORPUS.rglob("*"):
        if not path.is_file() or path.suffix == ".tsv":
            continue
        evs = events(path)
        records = [e for e in evs if isinstance(e, ClaimRecord)]
        read_sets = [e for e in evs if isinstance(e, Transaction) and e.kind]
        if read_sets:
            text = path.read_bytes()
            assert len(records) == text.count(b"CLM" + text[103:104]) or \
                len(records) == text.count(b"CLM*"), path


def test_body_with_other_delimiters_than_the_isa_gives_one_clear_problem():
    text = interchange(claim_837p())
    data = (text[:106] + text[106:].replace("*", "|")).encode()
    problems = [e for e in read(data) if isinstance(e, Problem)]
    assert [p.code for p in problems] == ["env-wrong-delimiter", "env-claim-outside-transaction",
                                          "env-outside-transaction", "env-missing-iea"]
    assert "'PCN001'" in problems[1].message  # each claim named, not only counted
    assert "'|'" in problems[0].message and "'*'" in problems[0].message
    assert problems[0].location.line == 2


@pytest.mark.parametrize("conformance", [True, False])
def test_a_set_sent_without_gs_is_reported_not_a_crash(conformance):
    """ISA, ST..SE, IEA with no GS/GE: the claim has no group (group is None) and the
    file is still scrubbed: the envelope problem is reported, nothing raises."""
    from scrubber import scrub

    data = (FIXTURES / "837p-single.x12").read_bytes()
    kept = [s for s in data.split(b"~") if not s.strip().startswith((b"GS*", b"GE*"))]
    data = b"~".join(kept)
    (record,) = claims_of(data)
    assert record.group is None and record.transaction.control_number
    assert "env-outside-group" in codes(data)
    result = scrub(data, conformance=conformance, record=False)
    assert len(result.claims) == 1
