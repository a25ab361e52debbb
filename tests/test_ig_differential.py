"""Our implementation-guide check against pyx12, the reference, file by file.

For every valid fixture and 200 single-defect mutants (tests/mutate.py, seed
0) the accept/reject verdict of each transaction set and the error locations
(segment position + code, element position + code) must equal pyx12's. Where
pyx12 is wrong or blind, a test below says so and why, and holds our answer.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from ig_reference import our_view, pyx12_view, run_pyx12
from mutate import base_files, build_837, mutants

from scrubber.ig import check

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
MUTANTS = mutants(200, seed=0)


def _manifest() -> list[str]:
    path = FIXTURES / "MANIFEST.json"
    if not path.exists():
        return []
    # 5010 only: 4010 was retired in 2012 and we compile no 4010 guide (pyx12 still has them)
    return [entry["file"] for entry in json.loads(path.read_text())
            if entry.get("valid_pyx12")
            and (FIXTURES / entry["file"]).read_bytes()[84:89] == b"00501"]


def _same(data: bytes, report=None):
    ok, tree, _ = run_pyx12(data)
    report = report or check(data)
    ours = our_view(report)
    theirs = pyx12_view(tree)
    # pyx12 reads the delimiters once per file: a later interchange with other
    # delimiters is invisible to it (and its call still returns True)
    first = report.interchanges[0].element_separator if report.interchanges else None
    unseen = {st.key for isa in report.interchanges if isa.element_separator != first
              for g in isa.groups for st in g.transactions}
    assert not unseen & set(theirs)
    ours = {k: v for k, v in ours.items() if k not in unseen}
    assert ours == theirs, "\n".join(
        f"{key}: pyx12 {theirs.get(key)} / ours {ours.get(key)}"
        for key in sorted(set(ours) | set(theirs)) if ours.get(key) != theirs.get(key))
    return ok, ours


@pytest.mark.parametrize("name", _manifest() or ["(no MANIFEST.json)"])
def test_valid_fixtures_pass_both(name):
    if name.startswith("("):
        pytest.skip("fixtures/MANIFEST.json is not there")
    data = (FIXTURES / name).read_bytes()
    report = check(data)
    ok, ours = _same(data, report)
    assert ok and ours and report.accepted


@pytest.mark.parametrize("name, data", base_files(), ids=[n for n, _ in base_files()])
def test_our_own_base_files_pass_both(name, data):
    ok, ours = _same(data)
    assert ok and all(accepted for accepted, _ in ours.values())


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.name for m in MUTANTS])
def test_mutant_verdicts_and_locations_match_pyx12(mutant):
    _same(mutant.data)


def test_the_mutants_are_worth_comparing():
    """Most mutants break the guide, and every kind of defect is among them."""
    kinds = Counter(m.kind for m in MUTANTS)
    assert len(kinds) >= 12 and min(kinds.values()) >= 5
    rejected = sum(1 for m in MUTANTS if not check(m.data).accepted)
    assert rejected >= 170, rejected
    assert len({m.data for m in MUTANTS}) >= 195  # a few defects may coincide
    assert [m.data for m in mutants(5, seed=0)] == [m.data for m in MUTANTS[:5]]  # deterministic


# -- where pyx12 is wrong or blind: our answer, held ------------------------------------

def _edit(data: bytes, old: bytes, new: bytes) -> bytes:
    assert old in data
    return data.replace(old, new, 1)


def test_an_unknown_st01_rejects_where_pyx12_acknowledges_nothing():
    """pyx12 cannot place ST*836 in the 837 guide, drops its errors and still says True
    (its 999 has no AK2 for it and AK9*A). We reject the set: IK5 code 6."""
    data = _edit(build_837("P", 1, 1), b"ST*837*0001*", b"ST*836*0001*")
    ok, tree, _ = run_pyx12(data)
    assert ok and pyx12_view(tree) == {}
    (st,) = check(data).transactions
    assert (st.ack_code, st.syntax_codes, st.errors) == ("R", ("6",), ())


def test_se_element_errors_reject_although_pyx12_files_them_out_of_sight():
    """pyx12 files ST/SE element errors where neither its JSON nor its 999 look: it says
    False, yet accepts the transaction set. A short SE02 must reject it."""
    data = build_837("P", 1, 1)
    data = _edit(data, b"SE*", b"SE*").replace(b"*0001~\nGE", b"*001~\nGE").replace(
        b"ST*837*0001", b"ST*837*001")
    ok, tree, _ = run_pyx12(data)
    assert not ok and all(accepted for accepted, _ in pyx12_view(tree).values())
    (st,) = check(data).transactions
    assert not st.accepted
    assert {(e.segment_id, e.element, e.element_code) for e in st.errors} == {
        ("ST", 2, "4"), ("SE", 2, "4")}


def test_gs_element_errors_reject_the_group():
    data = _edit(build_837("P", 1, 1), b"*X*005010X222A1", b"*Q*005010X222A1")
    ok, tree, _ = run_pyx12(data)
    assert not ok and tree["interchanges"][0]["groups"][0]["ack_code"] == "A"
    report = check(data)
    group = report.interchanges[0].groups[0]
    assert group.ack_code == "R" and group.errors
    st = report.transactions[0]
    assert not report.is_accepted(*st.key)


def test_non_ascii_is_an_invalid_character_not_a_crash():
    """pyx12 raises UnicodeDecodeError on any non-ASCII byte; a name like JOSÉ is a
    character error in that element."""
    data = build_837("P", 2, 1)
    data = _edit(data, b"*PRETEND CARE CLINIC*", "*PRETEND CARE CLÍNIC*".encode())
    with pytest.raises(UnicodeDecodeError):
        run_pyx12(data)
    (st,) = check(data).transactions
    assert [(e.segment_id, e.element, e.element_code) for e in st.errors] == [("NM1", 3, "6")]


def test_an_empty_segment_rejects_where_pyx12_stops_reading():
    """pyx12 silently stops at "~~" and reports the trailers missing; the real
    defect is the empty segment, in this transaction set."""
    data = _edit(build_837("P", 3, 1), b"~\nHL*1**20*1~", b"~\n~\nHL*1**20*1~")
    (st,) = check(data).transactions
    assert not st.accepted
    assert any("empty segment" in e.message for e in st.envelope_errors)


def test_numbering_errors_stay_on_their_own_segment():
    """pyx12 queues HL/LX numbering errors of a segment it cannot place and files them
    on the next segment it can place; we keep them on the HL that has them."""
    data = _edit(build_837("P", 0, 1), b"HL*2*1*22*", b"HL*3*1*22*")
    (st,) = check(data).transactions
    hl = [e for e in st.errors if e.check == "ig-hl-sequence"]
    assert len(hl) == 1 and hl[0].segment_id == "HL" and hl[0].element == 1
    _same(data)  # and, moved where pyx12 puts them, the rest is identical


def test_too_many_components_are_ik4_13_where_pyx12_crashes():
    """pyx12's segment check indexes one past its component list and raises IndexError."""
    data = build_837("P", 0, 1)
    start = data.index(b"SV1*HC:")
    end = data.index(b"*", start + 4)
    data = data[:end] + b":25:59:XS:76:DESC:Z1:Z2:Z3" + data[end:]
    with pytest.raises(IndexError):
        run_pyx12(data)
    (st,) = check(data).transactions
    assert ("SV1", 1, 0, "13") in {(e.segment_id, e.element, e.component, e.element_code)
                                   for e in st.errors}


def test_an_unterminated_last_segment_is_read_and_flagged():
    """pyx12 silently drops a last segment without its terminator (here SE: it then
    reports the trailer missing). We read it and say the file looks cut short; with
    GE and IEA gone, nothing in it is accepted."""
    data = build_837("P", 0, 1)
    data = data[:data.index(b"GE*")].rstrip(b"\n").rstrip(b"~")
    ok, tree, _ = run_pyx12(data)
    assert not ok and {v[1] for v in pyx12_view(tree).values()} == {frozenset({("ST", "2")})}
    report = check(data)
    (st,) = report.transactions
    assert st.segment_count == int(data.rsplit(b"SE*", 1)[1].split(b"*")[0])
    assert report.problems[0].startswith("syntax-unterminated")
    assert not report.is_accepted(*st.key)
