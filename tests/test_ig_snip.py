"""SNIP 3-5 rules (scrubber.ig.snip): each fails on its defect and passes the clean claim."""

from __future__ import annotations

import pytest

from mutate import build_837
from scrubber.ig import snip
from scrubber.model import ClaimRecord, read
from scrubber.rules.context import ClaimContext
from scrubber.rules.profile import load_profile

PROFILE = load_profile()


def contexts(data: bytes) -> list[ClaimContext]:
    records = [e for e in read(data) if isinstance(e, ClaimRecord)]
    return [ClaimContext(record=r, profile=PROFILE, ordinal=i, submission="test",
                         day=lambda d: ()) for i, r in enumerate(records, 1)]


def hits(check, data: bytes):
    return [h for ctx in contexts(data) for h in check(ctx)]


def _edit(data: bytes, old: bytes, new: bytes) -> bytes:
    assert old in data, old
    return data.replace(old, new, 1)


CLEAN_P = build_837("P", 0, 1)
CLEAN_I = build_837("I", 1, 2)


@pytest.mark.parametrize("rule", snip.RULES, ids=[r.id for r in snip.RULES])
def test_clean_claims_pass_every_rule(rule):
    assert hits(rule.check, CLEAN_P) == [] and hits(rule.check, CLEAN_I) == []


def test_rules_are_documented_with_examples_and_unique():
    ids = [r.id for r in snip.RULES]
    assert len(ids) == len(set(ids)) and all(i.startswith("snip-") for i in ids)
    for r in snip.RULES:
        doc = r.check.__doc__ or ""
        assert "Fails:" in doc and "Passes:" in doc and r.source.startswith("WEDI SNIP Type")


def test_claim_balance():
    total = CLEAN_P.split(b"CLM*M0000C0*")[1].split(b"*")[0]
    bad = _edit(CLEAN_P, b"CLM*M0000C0*" + total, b"CLM*M0000C0*" + str(int(total) + 1).encode())
    (hit,) = hits(snip.claim_balance, bad)
    assert hit.element == "CLM02" and "not the sum" in hit.message


def test_npi_check_digit():
    assert snip.npi_is_valid("1234567893") and not snip.npi_is_valid("1234567890")
    npi = CLEAN_P.split(b"*XX*")[1][:10]
    wrong = npi[:9] + str((int(npi[9:10]) + 1) % 10).encode()
    (hit,) = hits(snip.npi_check_digit, _edit(CLEAN_P, b"*XX*" + npi, b"*XX*" + wrong))
    assert "billing provider" in hit.message


def test_diagnosis_pointer():
    bad = _edit(CLEAN_P, b"*UN*1***1~", b"*UN*1***4~")
    (hit,) = hits(snip.diagnosis_pointers, bad)
    assert hit.element == "SV107" and hit.line is not None


def test_date_range_and_future_dates():
    bad = CLEAN_I.replace(b"DTP*434*RD8*", b"DTP*434*RD8*20261231-")
    found = hits(snip.date_ranges, _fix_range(bad))
    assert found and all("ends before it starts" in h.message for h in found)
    future = _edit(CLEAN_P, b"DTP*472*D8*2026", b"DTP*472*D8*2027")
    (hit,) = hits(snip.future_dates, future)
    assert "after the file was created (20261120)" in hit.message


def _fix_range(data: bytes) -> bytes:
    """DTP*434*RD8*20261231-A-B -> 20261231-A: a range that runs backwards."""
    out = []
    for seg in data.split(b"~\n"):
        if seg.startswith(b"DTP*434*RD8*"):
            start, rest = seg[12:].split(b"-", 1)
            seg = b"DTP*434*RD8*" + start + b"-" + rest.split(b"-")[0]
        out.append(seg)
    return b"~\n".join(out)


def test_implementation_reference():
    bad = _edit(CLEAN_P, b"ST*837*0001*005010X222A1", b"ST*837*0001*005010X223A2")
    (hit,) = hits(snip.implementation_reference, bad)
    assert hit.element == "ST03"


@pytest.mark.parametrize("old, new, element", [
    (b"HI*ABK:", b"HI*ABK:250.", "HI01-2"),
    (b"SV1*HC:", b"SV1*HC:X", "SV101-2"),
])
def test_code_forms(old, new, element):
    found = hits(snip.code_forms, _edit(CLEAN_P, old, new))
    assert [h.element for h in found] == [element]


def test_revenue_code_form():
    found = hits(snip.code_forms, _edit(CLEAN_I, b"SV2*0", b"SV2*9"))
    assert [h.element for h in found] == ["SV201"]


def test_register_adds_the_rules_once(monkeypatch):
    from scrubber.rules import registry

    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    snip.register()
    assert all(registry._REGISTRY[r.id].check is r.check for r in snip.RULES)
    with pytest.raises(ValueError):
        snip.register()
