"""The day index reads its rows without building claims: exactly the rows the built claims give.

``DayIndex.add`` takes each line's (index, date, number, procedure, modifiers,
units as sent, SV1/SV2 location) from ``ClaimSource.line_keys``, which splits
only the segments that say them. These tests hold those rows, and every line
key, against the built body (``claim.lines`` with ``service_date``) on every
fixture, on generated 837P and 837I files, on single-defect mutants, on hand
made edge cases (no SV1, bad and ranged dates, sub-loop dates, 2320 dates,
837I statement periods) and on the shared corpus when it is present.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
from mutate import mutants
from x12text import interchange, npi

from scrubber.model import ClaimRecord, read
from scrubber.rules.context import service_date
from scrubber.rules.engine import line_rows

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
CORPUS = ROOT.parent / "shared" / "corpus"
sys.path.insert(0, str(ROOT / "bench"))
from gen837 import generate  # noqa: E402


def light_rows(record: ClaimRecord) -> list[tuple]:
    return [(index, day, line.number, line.procedure, line.modifiers, line.units_text,
             line.location) for index, day, line in line_rows(record)]


def built_rows(record: ClaimRecord) -> list[tuple]:
    """The rows as the index read them from the built claim before it had line keys."""
    out = []
    for index, line in enumerate(record.claim.lines):
        day = service_date(record, line)
        if day is not None:
            out.append((index, day, line.number, line.procedure, line.modifiers,
                        line.units_text, line.service_location or line.location))
    return out


def assert_same_rows(source) -> int:
    """Compare every claim of ``source``; the number of claims compared."""
    claims = 0
    for event in read(source):
        if not isinstance(event, ClaimRecord):
            continue
        claim = event.claim
        assert claim._body is None  # the light path is read before anything built the body
        light = light_rows(event)
        statement, keys = claim.source.line_keys()
        assert claim._body is None, "line_keys built the claim's body"
        assert light == built_rows(event), claim.id
        assert statement == claim.date("434"), claim.id
        assert len(keys) == len(claim.lines), claim.id
        for key, line in zip(keys, claim.lines, strict=True):
            assert key.dated == any(value.qualifier == "472" for value in line.dates)
            assert key.day == line.date_of_service, claim.id
        claims += 1
    return claims


FIXTURE_FILES = sorted(p for p in FIXTURES.rglob("*") if p.is_file() and p.suffix != ".py")


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=[str(p.relative_to(FIXTURES))
                                                     for p in FIXTURE_FILES])
def test_fixture_rows_are_the_built_rows(path):
    assert_same_rows(path)


def test_the_fixtures_hold_claims_to_compare():
    assert sum(assert_same_rows(p) for p in FIXTURE_FILES) > 100


@pytest.mark.parametrize("kind", ["P", "I"])
@pytest.mark.parametrize("newline", [True, False])
def test_generated_rows_are_the_built_rows(kind, newline):
    out = io.BytesIO()
    generate(out, 400, kind, seed=7, claims_per_transaction=150, newline=newline)
    assert assert_same_rows(out.getvalue()) == 400


def test_mutant_rows_are_the_built_rows():
    """Single-defect files: dropped, repeated, blanked segments and elements, bad dates."""
    for mutant in mutants(300, seed=11):
        assert_same_rows(mutant.data)


def _claim_file(kind: str, claim: list[str]) -> bytes:
    """One claim (CLM onwards) in a minimal 837P or 837I envelope."""
    version = "005010X222A1" if kind == "P" else "005010X223A2"
    st = [f"ST*837*0001*{version}", "BHT*0019*00*B1*20261103*1200*CH",
          "NM1*41*2*FICTIONAL BILLING*****46*SUB", "NM1*40*2*FICTIONAL PAYER*****46*PAY",
          "HL*1**20*1", f"NM1*85*2*EXAMPLE CLINIC*****XX*{npi('123456789')}",
          "HL*2*1*22*0", "SBR*P*18*******CI", "NM1*IL*1*TESTER*ALEX****MI*M1",
          "DMG*D8*19800101*F", "NM1*PR*2*FICTIONAL PAYER*****PI*PAY", *claim]
    st.append(f"SE*{len(st) + 1}*0001")
    body = [f"GS*HC*S*R*20261103*1200*1*X*{version}", *st, "GE*1*1"]
    return interchange(body).encode()


EDGE_CLAIMS = {
    "no-sv1": ("P", ["CLM*A*1***11:B:1*Y*A*Y*Y", "LX*1", "DTP*472*D8*20261102",
                     "LX*2", "SV1*HC:99213:25::59*1*UN*1", "DTP*472*D8*20261102"]),
    "two-sv1": ("P", ["CLM*A*1***11:B:1*Y*A*Y*Y", "LX*1", "SV1*HC:99213*1*UN*2",
                      "SV1*HC:36415*1*UN*3", "DTP*472*D8*20261102"]),
    "bad-and-ranged-dates": ("P", [
        "CLM*A*1***11:B:1*Y*A*Y*Y", "DTP*472*D8*20261101",
        "LX*1", "SV1*HC:99213*1*UN*1", "DTP*472*D8*20261399",
        "LX*2", "SV1*HC:99213*1*UN*1", "DTP*472*RD8*20261101-20261101",
        "LX*3", "SV1*HC:99213*1*UN*1", "DTP*472*RD8*20261101-20261103",
        "LX*4", "SV1*HC:99213*1*UN*1", "DTP*472*RD8*20261101",
        "LX*5", "SV1*HC:99213*1*UN*1", "DTP*472*DT*202611021200",
        "LX*6", "SV1*HC:99213*1*UN*1", "DTP*472*D8*261102", "DTP*472*D8*20261104",
        "LX*X", "SV1*HC*1*UN*abc", "DTP*472", "DTP*472*D8*20261105",
        "LX", "SV1", "DTP"]),
    "sub-loop-dates": ("P", [
        "CLM*A*1***11:B:1*Y*A*Y*Y", "LX*1", "SV1*HC:99213*1*UN*1",
        "NM1*82*1*DOC*ANN****XX*1234567893", "PRV*PE*PXC*207Q00000X", "DTP*472*D8*20261102",
        "LX*2", "SV1*HC:J1642*1*UN*1", "LIN**N4*00000000000", "DTP*472*D8*20261102",
        "LX*3", "SV1*HC:99213*1*UN*1", "DTP*472*D8*20261103", "SVD*P*1*HC:99213**1",
        "DTP*472*D8*20261104", "LQ*HE*X", "DTP*472*D8*20261105"]),
    "837i-statement-one-day": ("I", [
        "CLM*A*1***13:A:1**A*Y*Y", "DTP*434*RD8*20261102-20261102", "CL1*1*1*01",
        "LX*1", "SV2*0300*HC:85025*1*UN*1", "LX*2", "SV2*0300*HC:85025*1*UN*1",
        "DTP*472*D8*20261103", "LX*3", "SV2*0300*HC:85025*1*UN*1", "DTP*472*D8*2026"]),
    "837i-statement-days": ("I", [
        "CLM*A*1***13:A:1**A*Y*Y", "DTP*434*RD8*20261101-20261102",
        "DTP*434*D8*20261105", "LX*1", "SV2*0300*HC:85025*1*UN*1"]),
    "837i-statement-second": ("I", [
        "CLM*A*1***13:A:1**A*Y*Y", "DTP*435*D8*20261101", "DTP*434*D8*20261105",
        "DTP*434*D8*20261106", "LX*1", "SV2*0300*HC:85025*1*UN*1"]),
    "837i-statement-in-2320": ("I", [
        "CLM*A*1***13:A:1**A*Y*Y", "SBR*S*18*******CI", "DTP*434*D8*20261105",
        "LX*1", "SV2*0300*HC:85025*1*UN*1"]),
    "837i-statement-after-lines": ("I", [
        "CLM*A*1***13:A:1**A*Y*Y", "LX*1", "SV2*0300*HC:85025*1*UN*1",
        "DTP*434*D8*20261105"]),
    "837i-bad-statement": ("I", [
        "CLM*A*1***13:A:1**A*Y*Y", "DTP*434*D8*20261131", "LX*1", "SV2*0300*HC:85025*1*UN*1"]),
    "837p-statement-ignored": ("P", [
        "CLM*A*1***11:B:1*Y*A*Y*Y", "DTP*434*D8*20261105", "LX*1", "SV1*HC:99213*1*UN*1"]),
    "no-lines": ("P", ["CLM*A*1***11:B:1*Y*A*Y*Y", "DTP*472*D8*20261105"]),
}


@pytest.mark.parametrize("name", list(EDGE_CLAIMS))
def test_edge_case_rows_are_the_built_rows(name):
    kind, claim = EDGE_CLAIMS[name]
    assert assert_same_rows(_claim_file(kind, claim)) == 1


def test_the_edge_cases_say_what_they_are_for():
    """A few rows spelled out, so that a wrong reference cannot make both sides agree."""
    (record,) = [e for e in read(_claim_file(*EDGE_CLAIMS["sub-loop-dates"]))
                 if isinstance(e, ClaimRecord)]
    assert [(row[0], row[1].isoformat()) for row in light_rows(record)] == [(2, "2026-11-03")]
    (record,) = [e for e in read(_claim_file(*EDGE_CLAIMS["837i-statement-one-day"]))
                 if isinstance(e, ClaimRecord)]
    assert [(row[0], row[1].isoformat()) for row in light_rows(record)] == [
        (0, "2026-11-02"), (1, "2026-11-03")]


CORPUS_FILES = sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.suffix != ".tsv") \
    if CORPUS.is_dir() else []


@pytest.mark.skipif(not CORPUS_FILES, reason="shared corpus not present")
def test_corpus_rows_are_the_built_rows():
    """Files from other projects, many of them broken: the rows still agree."""
    assert sum(assert_same_rows(path) for path in CORPUS_FILES) > 0
