"""The two-pass pipeline: day index, ledger context, pass-through, and the text matching."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from scrubbing import scrub_source, scrub_stream

from scrubber.model import ClaimRecord, Problem, read
from scrubber.model.keys import patient_identity
from scrubber.rules.engine import DayIndex
from scrubber.rules.findings import ScrubbedClaim
from scrubber.rules.packs import cpt_96523
from scrubber.rules.profile import load_profile

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("rules_fixture_build",
                                               ROOT / "fixtures" / "rules" / "build.py")
assert _spec is not None and _spec.loader is not None
build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build)
PROFILE = load_profile()
DAY = date(2026, 11, 2)
THIS = "EXAMPLESUBM:000009652"  # sender id : ISA13 of the builder's interchanges


@dataclass(frozen=True)
class FakeLine:
    claim_id: str
    line_number: int | None
    procedure: str
    modifiers: tuple[str, ...]
    units: Decimal | None
    service_date: date
    submission: str
    payer: str = "96523"  # NM109 of the builder's NM1*PR


class FakeLedger:
    """In-memory stand-in for scrubber.ledger.Ledger.lines_for."""

    def __init__(self, identity, lines):
        self.identity, self.lines, self.calls = identity, lines, []

    def lines_for(self, identity, service_date, *, exclude_submission=None):
        self.calls.append((identity, service_date, exclude_submission))
        if identity != self.identity:
            return []
        return [x for x in self.lines
                if x.service_date == service_date and x.submission != exclude_submission]

    def sent_claim(self, key):
        return None


def text(*claims, kind="837p"):
    return build.interchange(kind, [list(claims)]).encode()


def scrubbed(data: bytes, ledger=None, profile=PROFILE):
    return [e for e in scrub_source(data, profile=profile, ledger=ledger)
            if isinstance(e, ScrubbedClaim)]


def alex_identity():
    record = next(e for e in read(text(build.claim("X", [build.CLEAN])))
                  if isinstance(e, ClaimRecord))
    return patient_identity(record)


def ledger_with(*lines):
    return FakeLedger(alex_identity(), [FakeLine(*line) for line in lines])


def test_ledger_service_conflicts_and_names_its_submission():
    ledger = ledger_with(("EM-1", 1, "99213", (), Decimal(1), DAY, "OTHER:000000001"))
    (claim,) = scrubbed(text(build.claim("P-1", [build.CLEAN])), ledger)
    assert claim.rejected
    (finding,) = claim.findings
    assert finding.rule == "96523-sole-service"
    assert finding.related == ("EM-1 (submission OTHER:000000001)",)
    assert "OTHER:000000001, already accepted" in finding.message
    assert ledger.calls == [(alex_identity(), DAY, THIS)]


def test_rerun_of_the_same_submission_never_conflicts_with_itself():
    ledger = ledger_with(("P-1", 1, "96523", (), Decimal(1), DAY, THIS))
    (claim,) = scrubbed(text(build.claim("P-1", [build.CLEAN])), ledger)
    assert claim.findings == ()


@pytest.mark.parametrize("frequency", ["1", "7"])
def test_the_same_claim_never_conflicts_with_its_earlier_copy(frequency):
    """A resend (1) or a replacement (7) takes the place of its own earlier lines."""
    ledger = ledger_with(("P-1", 1, "96523", (), Decimal(1), DAY, "EXAMPLESUBM:000000001"))
    (claim,) = scrubbed(text(build.claim("P-1", [build.CLEAN], freq=frequency)), ledger)
    assert claim.findings == ()
    # the same CLM01 under another payer is another claim: its 96523 counts
    other = ledger_with(("P-1", 1, "96523", (), Decimal(1), DAY, "EXAMPLESUBM:000000001",
                         "OTHERPAYER"))
    (claim,) = scrubbed(text(build.claim("P-1", [build.CLEAN], freq=frequency)), other)
    assert [f.rule for f in claim.findings] == ["96523-units"]


def test_void_in_the_submission_removes_the_ledger_service():
    ledger = ledger_with(("EM-1", 1, "99213", (), Decimal(1), DAY, "OTHER:000000001"))
    data = text(build.claim("EM-1", [build.line("99213", charge="100")], freq="8"),
                build.claim("P-1", [build.CLEAN]))
    claims = scrubbed(data, ledger)
    assert [c.findings for c in claims] == [(), ()]


def test_void_claim_draws_no_96523_findings_and_adds_no_services():
    data = text(build.claim("P-0", [build.line("96523", units="3")], notes=(), freq="8"),
                build.claim("P-1", [build.CLEAN]))
    assert [c.findings for c in scrubbed(data)] == [(), ()]


def test_other_patient_or_other_day_does_not_conflict():
    data = text(build.claim("P-1", [build.CLEAN]),
                build.claim("P-2", [build.line("99213", charge="100")], patient=build.SAM),
                build.claim("P-3", [build.line("99213", charge="100", day="20261103")]))
    assert [c.rejected for c in scrubbed(data)] == [False, False, False]


def test_conflict_with_a_later_claim_of_the_submission_is_found_in_pass_one():
    data = text(build.claim("P-1", [build.CLEAN]),
                build.claim("P-2", [build.line("93000", charge="40")]))
    first, second = scrubbed(data)
    assert [f.rule for f in first.findings] == ["96523-sole-service"]
    assert "P-2" in first.findings[0].message and not second.rejected


def test_events_pass_through_in_order():
    path = ROOT / "fixtures" / "broken-se-count.x12"
    if not path.exists():
        pytest.skip("base fixtures absent")
    out = scrub_source(path, profile=PROFILE)
    plain = list(read(path))
    assert len(out) == len(plain)
    for got, want in zip(out, plain, strict=True):
        if isinstance(want, ClaimRecord):
            assert isinstance(got, ScrubbedClaim) and got.record == want
        else:
            assert got == want
    assert any(isinstance(e, Problem) for e in out)


@pytest.mark.parametrize("note, found", [
    ("10ML NS", True), ("10 mL saline", True), ("5cc", True), ("100 U heparin", True),
    ("HEPARIN U", False), ("10.5 ml", True), ("ML 10X", False), ("10 mlx", False),
])
def test_amount_needs_a_number_before_its_unit(note, found):
    pattern = cpt_96523._amount_pattern(PROFILE.list("amount-units").terms)
    assert bool(pattern.search(note)) is found


@pytest.mark.parametrize("note, term, found", [
    ("FLUSHED WITH NS", "NS", True), ("INSTRUCTIONS GIVEN", "NS", False),
    ("TRANSPORT", "port", False), ("port,flushed", "port", True),
    ("PORTACATH", "port-a-cath", True), ("Port A Cath", "port-a-cath", True),
    ("mediport", "port", False), ("HICKMAN", "Hickman", True),
])
def test_words_match_whole_ignoring_case_and_punctuation(note, term, found):
    assert bool(cpt_96523.find_terms(note, (term,))) is found


def test_documentation_may_be_split_between_claim_and_line_notes():
    split = build.claim("P-1", [build.line("96523", notes=("10 ML NS",))], notes=("HICKMAN",))
    (claim,) = scrubbed(text(split))
    assert claim.findings == ()
    only_line = build.claim("P-2", [build.line("96523", notes=("10 ML NS",))], notes=())
    (claim,) = scrubbed(text(only_line))
    assert [f.rule for f in claim.findings] == ["96523-device"]


def test_day_index_holds_no_patient_names():
    index = DayIndex()
    try:
        data = text(build.claim("P-1", [build.CLEAN]))
        for n, event in enumerate(e for e in read(data) if isinstance(e, ClaimRecord)):
            index.add(event, n + 1, THIS)
        index.finish()
        dump = "\n".join(index.db.iterdump())
        assert "RIVERA" not in dump and "FAKE0000101" not in dump
        assert index.lines == 1
    finally:
        index.close()


@pytest.mark.slow
def test_many_claims_keep_memory_flat():
    """The day index lives in SQLite: scrubbing costs no more memory per claim than reading."""
    import tracemalloc

    def many(n):
        claims = [build.claim(f"M-{i}", [build.CLEAN, build.line("99213", charge="100",
                                                                  day="20261103")],
                              patient=("P", f"N{i}", "19700101", f"M{i:07d}"))
                  for i in range(n)]
        return build.interchange("837p", [claims[i:i + 100] for i in range(0, n, 100)]).encode()

    def peak(run):
        tracemalloc.start()
        result = run()
        value = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return value, result

    extra = []
    for n in (200, 2000):
        data = many(n)
        read_peak, _ = peak(lambda data=data: sum(1 for _ in read(data)))
        scrub_peak, accepted = peak(lambda data=data: sum(
            1 for e in scrub_stream(data, profile=PROFILE)
            if isinstance(e, ScrubbedClaim) and not e.rejected))
        assert accepted == n
        extra.append(scrub_peak - read_peak)
    assert extra[1] < 2 * extra[0] + 512 * 1024, extra  # ten times the claims


@pytest.mark.parametrize("held", [100_000, 0])
def test_twins_asks_sqlite_only_about_repeated_claim_keys(monkeypatch, held):
    """A file and then its first claim again, in one submission: the copy has the first as
    its twin, no other claim has one, whether ``repeated`` is held (a query for each claim
    of a repeated key only) or too big to hold (a query per claim, as before)."""
    from scrubber.rules import engine
    from scrubber.rules.context import submission_id

    monkeypatch.setattr(engine, "_REPEATED_HELD", held)
    path = Path(__file__).parent.parent / "fixtures" / "837p-multi.x12"
    records = [e for e in read(path) if isinstance(e, ClaimRecord)]
    n = len(records)
    assert n > 2 and len({r.claim.id for r in records}) == n
    records.append(records[0])
    index = DayIndex()
    try:
        for ordinal, record in enumerate(records, 1):
            index.add(record, ordinal, submission_id(record))
        index.finish()
        queries: list[str] = []
        index.db.set_trace_callback(lambda sql: queries.append(sql) if "ordinal <" in sql
                                    else None)
        twins = [index.twins(r, submission_id(r), o) for o, r in enumerate(records, 1)]
        assert twins == [()] * n + [(1,)]
        assert len(queries) == (n + 1 if held == 0 else 2)
    finally:
        index.close()
