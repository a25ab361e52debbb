"""Acknowledgements never carry a sender's delimiters: every 277CA, 999 and TA1 is one interchange.

The inputs here use ``|`` ``}`` ``{`` ``'`` as delimiters, so their data may
hold our ``*`` ``:`` ``^`` ``~``; each hostile value tries to end our
interchange and start one of its own.
"""

from __future__ import annotations

import itertools
import sys
from datetime import datetime
from pathlib import Path

import pytest
from ig_reference import run_pyx12
from x12text import claim_837p, interchange

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from fuzz import ack_interchanges as interchanges  # noqa: E402

from scrubber import scrub
from scrubber.emit.ack277 import Ack277Writer
from scrubber.emit.values import altered, carry, isa_value

CLOCK = lambda: datetime(2026, 11, 28, 12, 0)  # noqa: E731
INJECTED = "~IEA*1*1~ISA*"


def _writer() -> Ack277Writer:
    return Ack277Writer(clock=CLOCK, control_numbers=itertools.count(7))


def hostile_837(*, claim_id: str = "A~IEA*1*1~X", sender: str = "Z~IEA*1*1~ISA*Q",
                control: str = "000000001", st_control: str = "0001",
                iea_control: str | None = None, extra: list[str] = ()) -> bytes:
    """A one-claim 837P delimited by | } { ' whose values hold our delimiters."""
    body = claim_837p("@CLAIM@", control="@ST@", notes=list(extra))
    text = interchange(body, control=control, element="|", component="}", repetition="{",
                       terminator="'")
    text = text.replace("SENDERID       ", sender[:15].ljust(15), 1)
    text = text.replace("@CLAIM@", claim_id).replace("@ST@", st_control)
    text = text.replace("@INJECTED@", INJECTED)
    text = text.replace("|SENDER|", f"|{sender}|", 1)  # GS02
    if iea_control is not None:
        head, _, _ = text.rstrip("\n").rpartition("IEA|")
        text = head + f"IEA|1|{iea_control}'\n"
    return text.encode("latin-1")


def test_carry_removes_our_delimiters_and_foreign_characters():
    assert carry("A~IEA*1*1~ISA*:^") == "A IEA 1 1 ISA   "
    assert carry("CAF\u00c9\x1b[2J") == "CAF? [2J"
    assert carry("PLAIN VALUE-1.2") == "PLAIN VALUE-1.2"
    assert not altered("PLAIN VALUE-1.2") and altered("A*B") and altered("\u00e9")
    assert isa_value("Z~IEA*1*1~ISA*QQQ", 15) == "Z IEA 1 1 ISA Q"
    assert isa_value("", 15, "UNKNOWN") == "UNKNOWN        "


def test_values_holding_our_delimiters_stay_inside_every_ack():
    data = hostile_837(st_control="0~IEA*1", extra=["NOTE@INJECTED@"])
    result = scrub(data, ack=_writer())
    assert result.claims, "the hostile claim is still read"
    for ack in (result.ack_277ca, result.ack_999):
        assert ack, "both acknowledgements are written"
        (one,) = interchanges(ack)
        isa = one[0]
        assert len(isa.elements[8]) == 15 and "~" not in isa.elements[8]
    segments = interchanges(result.ack_277ca)[0]
    trn = [s for s in segments if s.id == "TRN" and s.get(1) == "2"]
    assert trn[-1].get(2) == "A IEA 1 1 X"  # the claim id, carried without its delimiters
    stc = segments[segments.index(trn[-1]) + 1]
    assert stc.id == "STC" and "TRN02 has them replaced" in stc.get(12)  # and says so
    ak2 = [s for s in interchanges(result.ack_999)[0] if s.id == "AK2"]
    assert ak2[0].get(2) == "0 IEA 1"


def test_ta1_of_a_hostile_interchange_is_one_interchange():
    data = hostile_837(control="1~IEA*1*1", iea_control="000000009")
    result = scrub(data, ack=_writer())
    assert result.ack_ta1
    (one,) = interchanges(result.ack_ta1)
    assert [s.id for s in one] == ["ISA", "TA1", "IEA"]
    assert one[1].get(1) == "000000000"  # TA101 is N0 9: ISA13 cannot be carried, a stand-in
    ok, tree, _ = run_pyx12(result.ack_ta1)
    assert ok, tree


def test_a_non_ascii_segment_id_gives_a_999_not_an_exception():
    body = claim_837p("PCN9")
    body.insert(body.index("HI*ABK:Z452"), "NT\u00c9*ADD*X")
    data = interchange(body).encode("latin-1")
    result = scrub(data, ack=_writer())
    assert result.ack_999
    (one,) = interchanges(result.ack_999)
    ik3 = [s for s in one if s.id == "IK3"]
    assert ik3 and ik3[0].get(1) == "NT?"  # still says which segment, in X12 characters
    ok, tree, _ = run_pyx12(result.ack_999)
    assert ok, tree


@pytest.mark.parametrize("claim_id", ["\x1b]0;TITLE\x07\x1b[2J", "A\x00B", "~", "*:^"])
def test_control_and_delimiter_claim_ids_never_break_the_acks(claim_id):
    checked = scrub(hostile_837(claim_id=claim_id), ack=_writer())
    (one,) = interchanges(checked.ack_999)
    assert [s.id for s in one].count("AK2") == 1
    unchecked = scrub(hostile_837(claim_id=claim_id), ack=_writer(), conformance=False)
    (one,) = interchanges(unchecked.ack_277ca)  # unchecked, the claim gets a 277CA
    assert [s.id for s in one].count("TRN") == 4  # source, submitter, provider, claim
    ok, tree, _ = run_pyx12(unchecked.ack_277ca)  # STC12 saying so is X214-valid
    assert ok, tree
