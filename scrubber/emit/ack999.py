"""The 999 implementation acknowledgement (005010X231A1), as a payer's front end sends it.

One 999 interchange answers each checked 837 interchange, with one 999
transaction set per functional group: AK1 names the group, AK2/IK5 each
transaction set (accepted or rejected), IK3 each segment in error (with
CTX*CLM01 when the segment belongs to a claim) and IK4 each element in error,
and AK9 the group's verdict (A, P for partly accepted, or R). GS08 and ST03
say 005010X231A1 (pyx12's own 999 leaves off the A1). Clock and control
numbers are injected so output is reproducible.

The 999 copies bad values (IK404) back to the sender; a caller writing it to
a file should create that file with mode 0600, like any file that can carry PHI.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import BinaryIO

from scrubber.emit.control import control_numbers as fresh_control_numbers
from scrubber.emit.values import COMPONENT as _COMPONENT
from scrubber.emit.values import ELEMENT as _ELEMENT
from scrubber.emit.values import REPETITION as _REPETITION
from scrubber.emit.values import TERMINATOR as _TERMINATOR
from scrubber.emit.values import Element, carry, isa_value, join
from scrubber.ig.report import (
    GroupVerdict,
    IgError,
    IgReport,
    InterchangeResult,
    TransactionVerdict,
)

VERSION = "005010X231A1"
_IK304 = frozenset(("1", "2", "3", "4", "5", "6", "7", "8", "I4", "I6", "I7", "I8", "I9"))


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
        "ISA", "00", " " * 10, "00", " " * 10, isa_value(sender_qualifier, 2, "ZZ"),
        isa_value(sender_id, 15, "SCRUBBER"), isa_value(_isa_field(isa, 5), 2, "ZZ"),
        isa_value(_isa_field(isa, 6), 15, "UNKNOWN"),
        now.strftime("%y%m%d"), now.strftime("%H%M"), _REPETITION, "00501", f"{control:09d}", "0",
        _usage(_isa_field(isa, 15)), _COMPONENT]) + _TERMINATOR]
    lines.append(_segment("GS", "FA", carry(sender_id, 15) or "SCRUBBER",
                          carry(source.groups[0].sender, 15) or "UNKNOWN", now.strftime("%Y%m%d"),
                          now.strftime("%H%M"), str(control), "X", VERSION))
    for number, group in enumerate(source.groups, 1):
        lines += _transaction_set(group, f"{number:04d}")
    lines.append(_segment("GE", str(len(source.groups)), str(control)))
    lines.append(_segment("IEA", "1", f"{control:09d}"))
    return lines


def _transaction_set(group: GroupVerdict, control: str) -> list[str]:
    body = [_segment("ST", "999", control, VERSION),
            _segment("AK1", group.functional_id, group.control, group.version)]
    for st in group.transactions:
        body += _response(st)
    body.append(_segment("AK9", group.ack_code, str(group.declared or group.received),
                         str(group.received), str(group.accepted), *group.syntax_codes[:5]))
    body.append(_segment("SE", str(len(body) + 1), control))
    return body


def _response(st: TransactionVerdict) -> list[str]:
    out = [_segment("AK2", st.transaction_set_id, st.transaction_control, st.implementation)]
    for head, elements in _by_segment(st.errors):
        out.append(_segment("IK3", carry(head.segment_id, 3), str(head.position), head.loop_id[:4],
                            head.segment_code if head.segment_code in _IK304 else "8"))
        if head.claim_id:
            out.append(_segment("CTX", ("CLM01", carry(head.claim_id, 35))))
        for e in elements:
            where = (str(e.element), str(e.component)) if e.component else str(e.element)
            value = carry(e.value, 99) if e.value else ""
            out.append(_segment("IK4", where, e.data_element, e.element_code, value))
    out.append(_segment("IK5", st.ack_code, *st.syntax_codes[:5]))
    return out


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
