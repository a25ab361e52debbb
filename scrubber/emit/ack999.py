"""The 999 implementation acknowledgement (005010X231A1), as a payer's front end sends it.

One 999 interchange answers each checked 837 interchange, with one 999
transaction set per functional group: AK1 names the group, AK2/IK5 each
transaction set (accepted or rejected), IK3 each segment in error (with
CTX*CLM01 when the segment belongs to a claim) and IK4 each element in error,
and AK9 the group's verdict (A, P for partly accepted, or R). GS08 and ST03
say 005010X231A1 (pyx12's own 999 leaves off the A1). Clock and control
numbers are injected so output is reproducible.

Every value taken from the 837 (GS01/GS06/GS08 into AK1, ST01-ST03 into AK2,
the segment id, position and loop into IK3, element positions and the bad
value into IK4, GE01 into AK9) is fitted to its element's type and length in
the 999 guide; one that cannot be is written as a stand-in (``STAND_INS``,
docs/conformance.md), so a receiver that validates the 999 never refuses it.

The 999 copies bad values (IK404) back to the sender; a caller writing it to
a file should create that file with mode 0600, like any file that can carry PHI.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import BinaryIO

from scrubber.emit.control import control_numbers as fresh_control_numbers
from scrubber.emit.values import COMPONENT as _COMPONENT
from scrubber.emit.values import ELEMENT as _ELEMENT
from scrubber.emit.values import REPETITION as _REPETITION
from scrubber.emit.values import TERMINATOR as _TERMINATOR
from scrubber.emit.values import (
    Element,
    carry,
    fit_code,
    fit_number,
    fit_text,
    isa_qualifier,
    isa_value,
    join,
)
from scrubber.ig.report import (
    GroupVerdict,
    IgError,
    IgReport,
    InterchangeResult,
    TransactionVerdict,
)

VERSION = "005010X231A1"
# code lists of the 999 guide (as in pyx12's 999.5010X231.A1.xml)
AK101 = frozenset(("BE", "HB", "HC", "HI", "HN", "HP", "HR", "HS", "RA"))
AK201 = frozenset(("270", "271", "276", "277", "278", "820", "834", "835", "837"))
_IK304 = frozenset(("1", "2", "3", "4", "5", "6", "7", "8", "I4", "I6", "I7", "I8", "I9"))
IK403 = frozenset(("1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "12", "13", "I10", "I11",
                   "I12", "I13", "I6", "I9"))
IK502 = frozenset(("1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "15",
                   "16", "17", "18", "19", "23", "24", "25", "26", "27", "I5", "I6"))
AK905 = frozenset(("1", "2", "3", "4", "5", "6", "10", "11", "12", "13", "14", "15", "16", "17",
                   "18", "19", "23", "24", "25", "26"))
#: what the 999 writes where the 837's value cannot be fitted to the 999 element
STAND_INS = {
    "GS03": "UNKNOWN",  # the 837's GS02 (AN 2-15)
    "AK101": "HC",  # GS01 not a functional identifier code: the group is answered as claims
    "AK102": "0",  # GS06 not a number of 1-9 digits
    "AK103": "005010",  # GS08 empty or over 12 characters: the X12 release alone
    "AK201": "837",  # ST01 not a transaction set the 999 can name
    "AK202": "0000",  # ST02 not 4-9 characters
    "IK301": "ZZZ",  # a segment id that is not 2-3 characters (no space) once carried
    "IK401": "99",  # an element (or component) position over 99
    "IK403": "I12",  # an error code the guide does not list (implementation pattern failure)
}
_SEGMENT_ID = re.compile(r"[^ ]{2,3}")  # once carried: X12 characters, no delimiter


def _segment(*elements: Element) -> str:
    return join(elements) + _TERMINATOR


def _isa_field(isa: tuple, index: int, default: str = "") -> str:
    return isa[index].strip() if len(isa) > index else default


def write_999(report: IgReport, out: BinaryIO, *, sender_id: str = "SCRUBBER",
              sender_qualifier: str = "ZZ", clock: Callable[[], datetime] = datetime.now,
              control_numbers: Iterator[int] | None = None) -> int:
    """Write one 999 interchange per accepted interchange that has groups; return how many.

    An interchange with envelope errors is answered by a TA1 alone, as a
    payer's front end that rejects it never opens its groups.
    """
    numbers = control_numbers or fresh_control_numbers()
    written = 0
    for interchange in report.interchanges:
        if not interchange.groups or not interchange.accepted:
            continue  # nothing to acknowledge, or a rejected interchange: the TA1's business
        lines = _interchange(interchange, sender_id, sender_qualifier, clock(), next(numbers))
        out.write(("\n".join(lines) + "\n").encode("ascii"))
        written += 1
    return written


def _interchange(source: InterchangeResult, sender_id: str, sender_qualifier: str,
                 now: datetime, control: int) -> list[str]:
    isa = source.isa
    lines = [_ELEMENT.join([
        "ISA", "00", " " * 10, "00", " " * 10, isa_qualifier(sender_qualifier),
        isa_value(sender_id, 15, "SCRUBBER"), isa_qualifier(_isa_field(isa, 5)),
        isa_value(_isa_field(isa, 6), 15, "UNKNOWN"),
        now.strftime("%y%m%d"), now.strftime("%H%M"), _REPETITION, "00501", f"{control:09d}", "0",
        _usage(_isa_field(isa, 15)), _COMPONENT]) + _TERMINATOR]
    lines.append(_segment("GS", "FA", fit_text(sender_id, 2, 15, cut=False) or "SCRUBBER",
                          fit_text(source.groups[0].sender, 2, 15, cut=False) or
                          STAND_INS["GS03"], now.strftime("%Y%m%d"),
                          now.strftime("%H%M"), str(control), "X", VERSION))
    for number, group in enumerate(source.groups, 1):
        lines += _transaction_set(group, f"{number:04d}")
    lines.append(_segment("GE", str(len(source.groups)), str(control)))
    lines.append(_segment("IEA", "1", f"{control:09d}"))
    return lines


def _transaction_set(group: GroupVerdict, control: str) -> list[str]:
    body = [_segment("ST", "999", control, VERSION),
            _segment("AK1", fit_code(group.functional_id, AK101) or STAND_INS["AK101"],
                     fit_number(group.control, 1, 9) or STAND_INS["AK102"],
                     fit_text(group.version, 1, 12, cut=False) or STAND_INS["AK103"])]
    for st in group.transactions:
        body += _response(st)
    received = _count(group.received)
    declared = fit_number(group.declared, 1, 6) if group.declared > 0 else ""
    body.append(_segment("AK9", group.ack_code, declared or received, received,
                         _count(group.accepted),
                         *[c for c in group.syntax_codes if c in AK905][:5]))
    body.append(_segment("SE", str(len(body) + 1), control))
    return body


def _response(st: TransactionVerdict) -> list[str]:
    out = [_segment("AK2", fit_code(st.transaction_set_id, AK201) or STAND_INS["AK201"],
                    fit_text(st.transaction_control, 4, 9, cut=False) or STAND_INS["AK202"],
                    fit_text(st.implementation, 1, 35, cut=False))]
    for head, elements in _by_segment(st.errors):
        segment_id = carry(head.segment_id)  # NT\u00c9 is NT?: it still says which segment
        if not _SEGMENT_ID.fullmatch(segment_id):
            segment_id = STAND_INS["IK301"]
        out.append(_segment("IK3", segment_id, fit_number(max(head.position, 0), 1, 10),
                            fit_text(head.loop_id, 1, 4),
                            head.segment_code if head.segment_code in _IK304 else "8"))
        claim = fit_text(head.claim_id, 1, 35) if head.claim_id else ""
        if claim:
            out.append(_segment("CTX", ("CLM01", claim)))
        for e in elements:
            position = _position(e.element)
            where: Element = (position, _position(e.component)) if e.component else position
            value = fit_text(e.value, 1, 99) if e.value else ""
            out.append(_segment("IK4", where, fit_number(e.data_element, 1, 4),
                                fit_code(e.element_code, IK403) or STAND_INS["IK403"], value))
    out.append(_segment("IK5", st.ack_code, *[c for c in st.syntax_codes if c in IK502][:5]))
    return out


def _position(number: int) -> str:
    """IK401-1 or IK401-2 (N0 1-2): the position, or 99 for a position past 99."""
    return fit_number(max(number, 1), 1, 2) or STAND_INS["IK401"]


def _count(number: int) -> str:
    """An AK9 count (N0 1-6), held at 999999."""
    return str(min(max(number, 0), 999999))


def _usage(code: str) -> str:
    """ISA15 of the answer: the input's test/production flag when it is one."""
    return code if code in ("P", "T", "I") else "P"


def _by_segment(errors: tuple[IgError, ...]) -> list[tuple[IgError, list[IgError]]]:
    """One IK3 per segment and code, in segment order; element errors under their IK3 (code 8)."""
    groups: dict[tuple, tuple[IgError, list[IgError]]] = {}
    for e in errors:
        key = (e.position, e.segment_id, e.segment_code)
        if key not in groups:
            groups[key] = (e, [])
        if e.element_code and e.element:
            groups[key][1].append(e)
    return [groups[k] for k in sorted(groups, key=lambda k: (k[0], k[1], k[2]))]
