"""Companion guides (x12_maps/ig-overrides.xml): a payer's tighter rules, only when asked for."""

from __future__ import annotations

import pytest
from mutate import build_837

from scrubber.ig import OverrideError, check, load_companions, load_guides
from scrubber.ig.overrides import apply

COMPANION = "example-commercial"


def _codes(report):
    return [(e.segment_id, e.segment_code, e.element, e.element_code)
            for st in report.transactions for e in st.errors]


def _dependent_claim() -> bytes:
    data = build_837("P", 4, 2)  # a dependent's claims: the subscriber has no DMG
    assert b"HL*3*2*23*0" in data
    return data


def test_the_shipped_companion_file_is_valid():
    companions = load_companions()
    assert COMPANION in companions
    assert all(change.why for change in companions[COMPANION].changes)


def test_nothing_applies_unless_asked_for():
    data = _dependent_claim()
    assert check(data).accepted
    report = check(data, companion=COMPANION)
    assert not report.accepted
    assert _codes(report) == [("DMG", "3", 0, "")]


def test_element_lengths_and_codes_tighten():
    data = _dependent_claim().replace(b"CLM*M0004C0*", b"CLM*M0004C0-ABCDEFGHIJKLMNOP*")
    data = data.replace(b"******CI~", b"******MC~")  # Medicaid: in the guide, not for this payer
    codes = _codes(check(data, companion=COMPANION))
    assert ("CLM", "8", 1, "5") in codes and ("SBR", "8", 9, "7") in codes
    assert [c for c in _codes(check(data)) if c[0] in ("CLM", "SBR")] == []


def test_loop_repeats_tighten():
    text = build_837("P", 0, 1).decode()
    lx, se = text.index("LX*1~"), text.index("SE*")
    end = text.find("LX*2~")
    line = text[lx:end if end > 0 else se]
    lines = "".join(line.replace("LX*1~", f"LX*{i}~", 1) for i in range(1, 27))
    text = text[:lx] + lines + text[se:]
    count = text.count("~\n", text.index("ST*"), text.index("SE*")) + 1
    text = text[:text.index("SE*")] + f"SE*{count}*0001~\n" + text[text.index("GE*"):]
    assert check(text.encode()).accepted
    assert [c[:2] for c in _codes(check(text.encode(), companion=COMPANION))] == [("LX", "4")]


def test_the_base_guides_stay_untouched():
    guides = load_guides()
    before = guides.guides["837.5010.X222.A1.xml"]
    changed = apply(guides, COMPANION)
    assert guides.guides["837.5010.X222.A1.xml"] is before
    assert changed.fingerprint != guides.fingerprint
    loops = [n for n in changed.guides["837.5010.X222.A1.xml"].nodes if n.xid == "2400"]
    assert loops and all(n.max_repeat == 25 for n in loops)


@pytest.mark.parametrize("body, message", [
    ('<element loop="2300" segment="CLM" ref="CLM01" max_len="20"/>', "why"),
    ('<element loop="2399" segment="CLM" ref="CLM01" max_len="20" why="x"/>',
     "no segment CLM in loop 2399"),
    ('<element loop="2300" segment="CLM" ref="CLM99" max_len="20" why="x"/>', "no element CLM99"),
    ('<loop id="9999" repeat="2" why="x"/>', "no loop 9999"),
    ('<segment loop="2010BA" segment="DMG" usage="Q" why="x"/>', "usage"),
])
def test_bad_companion_files_are_refused_with_the_line(tmp_path, body, message):
    path = tmp_path / "ig-overrides.xml"
    path.write_text('<ig-overrides>\n<companion name="bad" map="837.5010.X222.A1.xml">\n'
                    f'<description>bad</description>\n{body}\n</companion>\n</ig-overrides>\n')
    with pytest.raises(OverrideError, match=message) as info:
        apply(load_guides(), "bad", path)
    assert "line 4" in str(info.value)


def test_an_unknown_companion_is_refused():
    with pytest.raises(OverrideError, match="no companion guide named 'nope'"):
        check(build_837("P", 0, 1), companion="nope")
