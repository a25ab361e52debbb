"""SNIP 3-5 rules: each fires on its one defect, on its element, and stays quiet on clean claims.

The bases are the mutation generator's valid 837P/837I files (tests/mutate.py);
each test edits one thing. The fixtures in fixtures/rules/ cover the same rules
end to end (tests/test_rules_fixtures.py).
"""

from __future__ import annotations

import re

import pytest
from mutate import build_837
from scrubbing import scrub_source

from scrubber.rules.findings import ScrubbedClaim
from scrubber.rules.packs import snip
from scrubber.rules.profile import load_profile
from scrubber.rules.registry import all_rules

PROFILE = load_profile()
SNIP_IDS = [r.id for r in all_rules() if r.id.startswith("snip-")]
CLEAN_P = build_837("P", 0, 2)
CLEAN_I = build_837("I", 1, 2)


def findings(data: bytes, rule_id: str):
    claims = [e for e in scrub_source(data, profile=PROFILE)
              if isinstance(e, ScrubbedClaim)]
    assert claims
    return [f for c in claims for f in c.findings if f.rule == rule_id]


def edit(data: bytes, old: bytes, new: bytes) -> bytes:
    assert old in data, old
    return data.replace(old, new, 1)


def test_every_snip_rule_is_registered_documented_and_has_its_277ca_code():
    expected = {"snip-claim-balance": "A7:400", "snip-npi-check-digit": "A7:562",
                "snip-date-valid": "A7:187", "snip-future-date": "A7:510",
                "snip-statement-period": "A7:187", "snip-diagnosis-code": "A7:255",
                "snip-diagnosis-pointer": "A7:477", "snip-procedure-code": "A7:454",
                "snip-modifier": "A7:453", "snip-units": "A7:476",
                "snip-duplicate-claim": "A7:21", "snip-implementation-reference": "A7:21"}
    rules = {r.id: r for r in all_rules() if r.id.startswith("snip-")}
    assert {k: ":".join(r.status) for k, r in rules.items()} == expected
    for r in rules.values():
        assert "Fails:" in r.doc and "Passes:" in r.doc and r.source.startswith("WEDI SNIP")


@pytest.mark.parametrize("rule_id", SNIP_IDS)
def test_clean_claims_pass(rule_id):
    assert findings(CLEAN_P, rule_id) == [] and findings(CLEAN_I, rule_id) == []


def test_claim_balance():
    total = CLEAN_P.split(b"CLM*M0000C0*")[1].split(b"*")[0]
    bad = edit(CLEAN_P, b"CLM*M0000C0*" + total, b"CLM*M0000C0*" + str(int(total) + 1).encode())
    (hit,) = findings(bad, "snip-claim-balance")
    assert hit.element == "CLM02" and "not the sum" in hit.message and hit.claim_id == "M0000C0"


def test_npi_check_digit():
    assert snip.npi_is_valid("1234567893") and not snip.npi_is_valid("1234567890")
    npi = CLEAN_P.split(b"*XX*")[1][:10]
    wrong = npi[:9] + str((int(npi[9:10]) + 1) % 10).encode()
    hits = findings(edit(CLEAN_P, b"*XX*" + npi, b"*XX*" + wrong), "snip-npi-check-digit")
    assert hits and all("billing provider" in h.message for h in hits)
    assert hits[0].segment_text.startswith("NM1*85*")


def test_diagnosis_pointer():
    bad = edit(CLEAN_P, b"*UN*1***1~", b"*UN*1***4~")
    (hit,) = findings(bad, "snip-diagnosis-pointer")
    assert hit.element == "SV107" and hit.line_number == 1


def test_dates_are_calendar_dates():
    bad = re.sub(rb"DTP\*472\*D8\*\d{8}", b"DTP*472*D8*20261131", CLEAN_P, count=1)
    (hit,) = findings(bad, "snip-date-valid")
    assert "20261131 is not a real calendar date" in hit.message and hit.line_number == 1


def test_a_range_that_runs_backwards():
    bad = re.sub(rb"DTP\*434\*RD8\*[0-9-]+", b"DTP*434*RD8*20261105-20261101", CLEAN_I,
                 count=1)
    (hit,) = findings(bad, "snip-date-valid")
    assert "ends before it starts" in hit.message and hit.element == "DTP03"


def test_future_dates():
    future = edit(CLEAN_P, b"DTP*472*D8*2026", b"DTP*472*D8*2027")
    (hit,) = findings(future, "snip-future-date")
    assert "after the day the file was created (20261120)" in hit.message
    assert hit.status == ("A7", "510")


def test_837i_line_dates_inside_the_statement_period():
    line_date = CLEAN_I.split(b"DTP*472*D8*")[1][:8]
    bad = edit(CLEAN_I, b"DTP*472*D8*" + line_date, b"DTP*472*D8*20200101")
    (hit,) = findings(bad, "snip-statement-period")
    assert "outside the statement period" in hit.message and hit.element == "DTP03"


@pytest.mark.parametrize("old, new, element, words", [
    (b"HI*ABK:", b"HI*ABK:250.", "HI01-2", "not an ICD-10-CM code"),
    (b"HI*ABK:", b"HI*BK:4", "HI01-2", "ICD-10-CM applies from 2015-10-01"),
])
def test_diagnosis_codes(old, new, element, words):
    (hit,) = findings(edit(CLEAN_P, old, new), "snip-diagnosis-code")
    assert hit.element == element and words in hit.message


def test_icd10_before_its_start_is_flagged():
    old = CLEAN_P.replace(b"DTP*472*D8*2026", b"DTP*472*D8*2014")
    hits = findings(old, "snip-diagnosis-code")
    assert hits and "before ICD-10 took effect" in hits[0].message


def test_procedure_and_revenue_code_forms():
    (hit,) = findings(edit(CLEAN_P, b"SV1*HC:", b"SV1*HC:X"), "snip-procedure-code")
    assert hit.element == "SV101-2"
    (hit,) = findings(edit(CLEAN_I, b"SV2*0", b"SV2*9"), "snip-procedure-code")
    assert hit.element == "SV201"


def test_modifier_form():
    code = CLEAN_P.split(b"SV1*HC:")[1].split(b"*")[0].split(b":")[0]
    (hit,) = findings(edit(CLEAN_P, b"SV1*HC:" + code + b"*", b"SV1*HC:" + code + b":5-*"),
                      "snip-modifier")
    assert hit.element == "SV101-3" and "'5-'" in hit.message


def test_units_and_their_basis():
    (hit,) = findings(edit(CLEAN_P, b"*UN*1***", b"*UN*0***"), "snip-units")
    assert hit.element == "SV104" and "above zero" in hit.message
    (hit,) = findings(edit(CLEAN_P, b"*UN*1***", b"*MJ*15***"), "snip-units")
    assert hit.element == "SV103" and "anesthesia" in hit.message


def test_duplicate_claim_ids_of_one_provider():
    second = CLEAN_P.split(b"CLM*")[2].split(b"*")[0]
    dup = edit(CLEAN_P, b"CLM*" + second + b"*", b"CLM*M0000C0*")
    (hit,) = findings(dup, "snip-duplicate-claim")
    assert hit.claim_id == "M0000C0" and "claim #1" in hit.message
    # a replacement of the same id is no duplicate
    composite = dup.split(b"CLM*M0000C0*")[2].split(b"*")[3]
    replaced = dup.replace(b"*" + composite + b"*", b"*" + composite[:-1] + b"7*")
    assert findings(replaced, "snip-duplicate-claim") == []


def test_implementation_reference():
    bad = edit(CLEAN_P, b"ST*837*0001*005010X222A1", b"ST*837*0001*005010X222A2")
    hits = findings(bad, "snip-implementation-reference")
    assert hits and hits[0].element == "ST03"


def test_npi_messages_name_the_provider_role():
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "fixtures" / "rules" / \
        "snip-npi-check-digit.fail.837p.x12"
    (hit,) = findings(path.read_bytes(), "snip-npi-check-digit")
    assert "referring provider (NM1*DN) NPI 1234567890" in hit.message
    assert hit.segment_text.startswith("NM1*DN*")
