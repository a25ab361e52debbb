"""Every value an acknowledgement carries from the input fits its element, or is a stand-in.

A 999, TA1 or 277CA echoes the 837's control numbers, ids, codes and values;
copied as sent, a 400 KB ST02 or a lettered ISA13 makes the acknowledgement
itself invalid, and a receiver refuses it. Each case here writes the
acknowledgement of a hostile 837 and has pyx12 (our reference) validate it;
then it checks the stand-in docs/conformance.md promises. And every input that
is rejected gets the acknowledgement a payer would send (a TA1 for an
interchange the check rejects: one extra GE).
"""

from __future__ import annotations

import io
import itertools
from dataclasses import replace
from datetime import datetime
from decimal import Decimal

import pytest
from click.testing import CliRunner
from ig_reference import run_pyx12
from x12text import claim_837p, interchange

from scrubber import scrub
from scrubber.cli import main
from scrubber.emit import ack277, ack999
from scrubber.emit.ack277 import Ack277Writer
from scrubber.emit.ack999 import write_999
from scrubber.emit.values import fit_amount, fit_code, fit_number, fit_text, isa_qualifier
from scrubber.ig import check

CLOCK = lambda: datetime(2026, 11, 28, 12, 0)  # noqa: E731


def _writer() -> Ack277Writer:
    return Ack277Writer(clock=CLOCK, control_numbers=itertools.count(7))


def segments(ack: bytes, sid: str) -> list[list[str]]:
    return [line.rstrip("~").split("*") for line in ack.decode("ascii").splitlines()
            if line.startswith(sid + "*")]


def valid(ack: bytes) -> None:
    assert ack, "an acknowledgement is written"
    ok, tree, _ = run_pyx12(ack)
    assert ok, tree


def one_claim(*, body=None, **replace: str) -> bytes:
    """A one-claim 837P with (old -> new) text replacements applied once each."""
    text = interchange(body or claim_837p("PCN1"))
    for old, new in replace.items():
        old = old.replace("_", "*")
        assert old in text, old
        text = text.replace(old, new, 1)
    return text.encode("latin-1")


# -- the fitting functions -----------------------------------------------------------------

def test_fit_text_carries_refuses_or_cuts():
    assert fit_text("ABC  ", 1, 9) == "ABC"  # no trailing spaces (pyx12 flags them)
    assert fit_text("A~B", 1, 9) == "A B"
    assert fit_text("X" * 400, 4, 9, cut=False) == ""  # an id cut short names another
    assert fit_text("X" * 400, 1, 9) == "X" * 9  # free text is cut
    assert fit_text("1", 4, 9, cut=False) == "" and fit_text("   ", 1, 9) == ""


def test_fit_number_keeps_the_number_or_gives_nothing():
    assert fit_number("306", 9, 9) == "000000306"
    assert fit_number("0000000000012", 1, 9) == "12"  # the number it was
    assert [fit_number(v, 1, 9) for v in ("1 IEA 1", "-1", "", "\u0661", "1234567890")] == \
        [""] * 5
    assert fit_number(7, 1, 2) == "7" and fit_number(150, 1, 2) == ""


def test_fit_code_amount_and_qualifier():
    assert fit_code("HC", ack999.AK101) == "HC" and fit_code("H?", ack999.AK101) == ""
    assert fit_amount(Decimal("100.00")) == "100.00"
    assert fit_amount(Decimal("1E+999999999")) == "" and fit_amount(Decimal("NaN")) == ""
    assert fit_amount(Decimal("-0.00")) == "0.00"
    assert len(fit_amount(Decimal("1E-999999"))) <= 19  # 18 digits and the point
    assert fit_amount(Decimal("12345678901234567.89")) == "12345678901234567.9"
    assert isa_qualifier("zz") == "ZZ" and isa_qualifier("01") == "01"
    assert isa_qualifier("12") == isa_qualifier("00") == "ZZ"  # not in the HIPAA list


# -- the 999 -------------------------------------------------------------------------------

@pytest.mark.parametrize("change, segment, index, expected", [
    ({"ST_837_0001": "ST*837*" + "7" * 400_000}, "AK2", 2, "0000"),  # ST02 of 400 KB
    ({"SE_": "SE*99*", "ST_837_0001": "ST*837*1"}, "AK2", 2, "0000"),  # ST02 too short
    ({"ST_837_0001": "ST*8?7*0001"}, "AK2", 1, "837"),  # ST01 not a set a 999 names
    ({"ST_837_0001_005010X222A1": "ST*837*0001*" + "V" * 40}, "AK2", 3, None),  # AK203 left out
    ({"GS_HC_": "GS*H?*"}, "AK1", 1, "HC"),
    ({"_1200_1_X_": "*1200*ABC*X*", "GE_1_1": "GE*1*ABC"}, "AK1", 2, "0"),  # GS06 lettered
    ({"X_005010X222A1": "X*005010X222A1" + "Z" * 20}, "AK1", 3, "005010"),  # GS08 too long
    ({"GE_1_1": "GE*" + "9" * 20 + "*1"}, "AK9", 2, "1"),  # GE01 too big: the sets received
    ({"SBR_P_18": "S\x01R*P*18"}, "IK3", 1, "ZZZ"),  # an id that is no id once carried
])
def test_999_values_fit_the_999_guide(change, segment, index, expected):
    result = scrub(one_claim(**change), ack=_writer())
    valid(result.ack_999)
    (found, *_) = segments(result.ack_999, segment)
    if expected is None:
        assert len(found) <= index
    else:
        assert found[index] == expected, found


def test_999_copies_of_bad_values_and_claim_ids_are_cut_to_their_elements():
    body = claim_837p("C" * 38)  # CTX01-2 is AN 1-35
    data = one_claim(body=body, **{"DTP_472_D8_20261102": "DTP*472*D8*" + "1" * 500})
    result = scrub(data, ack=_writer())
    valid(result.ack_999)
    (ik4, *_) = segments(result.ack_999, "IK4")
    assert ik4[4] == "1" * 99  # IK404: the copy of the bad value, cut to AN 99
    (ctx,) = segments(result.ack_999, "CTX")
    assert ctx[1] == "CLM01:" + "C" * 35


def test_element_positions_past_99_are_99():
    report = check(one_claim(**{"DTP_472_D8_20261102": "DTP*472*D8*2026"}))
    (st,) = report.transactions
    error = next(e for e in st.errors if e.element)
    far = replace(st, errors=(replace(error, element=150, component=120, data_element="I12"),))
    group = replace(report.interchanges[0].groups[0], transactions=(far,))
    report = replace(report, interchanges=(replace(report.interchanges[0], groups=(group,)),))
    out = io.BytesIO()
    write_999(report, out, clock=CLOCK, control_numbers=itertools.count(3))
    valid(out.getvalue())
    (ik4,) = segments(out.getvalue(), "IK4")
    assert ik4[1:3] == ["99:99", ""]  # IK401 N0 1-2; IK402 N0 1-4 is left out, never I12


# -- the TA1 -------------------------------------------------------------------------------

def test_ta1_values_fit_or_stand_in():
    text = interchange(claim_837p("PCN1"))
    head = text[:106].replace("*261101*1200*", "*26?101*99X9*").replace("*000000001*",
                                                                          "*00000ABC1*")
    result = scrub((head + text[106:]).encode("ascii"), ack=_writer())
    valid(result.ack_ta1)
    (ta1,) = segments(result.ack_ta1, "TA1")
    # ISA13, ISA09, ISA10 cannot be carried: 000000000 and the TA1's own date and time
    assert ta1[1:4] == ["000000000", "261128", "1200"]
    assert ta1[4] == "R"


def test_an_interchange_the_check_rejects_is_answered_by_a_ta1(tmp_path):
    """One extra GE: the claims are held; before, no TA1, 999 or 277CA said so."""
    text = interchange(claim_837p("PCN1"))
    text = text.replace("GE*1*1~\n", "GE*1*1~\nGE*1*1~\n")
    path = tmp_path / "extra-ge.x12"
    path.write_text(text)
    result = CliRunner().invoke(main, ["check", str(path), "--no-ledger", "--277ca",
                                       str(tmp_path / "acks"), "--999"])
    assert result.exit_code == 1
    written = sorted(p.name for p in (tmp_path / "acks").iterdir())
    assert written == ["extra-ge.x12.ta1.x12"]  # no 999: the groups are never opened
    ack = (tmp_path / "acks" / written[0]).read_bytes()
    valid(ack)
    (ta1,) = segments(ack, "TA1")
    assert ta1[1] == "000000001" and ta1[4:] == ["R", "024"]  # invalid interchange content
    assert "rejected (TA1 R, note 024)" in result.output


def test_the_api_answers_every_rejected_interchange():
    good = interchange(claim_837p("PCN1"), control="000000001")
    bad = interchange(claim_837p("PCN2"), control="000000002").replace(
        "GE*1*1~\n", "GE*1*1~\nGE*1*1~\n")
    result = scrub((good + bad).encode("ascii"), ack=_writer())
    valid(result.ack_ta1)
    assert [t[1] for t in segments(result.ack_ta1, "TA1")] == ["000000002"]
    assert result.ack_999 and result.ack_277ca  # the sound interchange is answered as before


# -- the 277CA (without the implementation-guide check, the claims reach it) ---------------

def test_277ca_values_fit_the_277ca_guide():
    long_id = "L" * 60
    body = claim_837p(long_id, lines=[("99213", "100", "1", "20261102")])
    data = one_claim(body=body, **{
        "SV1_HC:99213": "SV1*HC:99213:A:LONG:25",  # modifiers of 1 and 4 characters
        "*UN*1*": "*UN*1.2.3*",  # units that are not a number
        "ZZ*SENDERID       ": "12*SENDERID       ",  # a qualifier the 277CA does not list
        "MI*MBR123456": "MI*M",  # a member id of one character
    })
    result = scrub(data, ack=_writer(), conformance=False)
    valid(result.ack_277ca)
    trn = [t for t in segments(result.ack_277ca, "TRN") if t[1] == "2"]
    assert trn[-1][2] == ack277.STAND_INS["TRN02"]
    stc = segments(result.ack_277ca, "STC")
    assert ack277.REPLACED in stc[-1][-1] or ack277.REPLACED in stc[-2][-1]
    (isa,) = segments(result.ack_277ca, "ISA")
    assert isa[7] == "ZZ"
    qc = [n for n in segments(result.ack_277ca, "NM1") if n[1] == "QC"]
    assert qc[0][9] == ack277.STAND_INS["NM109"]


def test_277ca_amounts_too_big_for_their_element_are_zero():
    data = one_claim(**{"SV1_HC:99213_100": "SV1*HC:99213*" + "9" * 30,
                        "CLM_PCN1_100": "CLM*PCN1*" + "9" * 30})
    result = scrub(data, ack=_writer(), conformance=False)
    valid(result.ack_277ca)
    amounts = [s[4] for s in segments(result.ack_277ca, "STC") if len(s) > 4]
    assert amounts and all(len(a.replace(".", "")) <= 18 for a in amounts)
    assert "0" in amounts
