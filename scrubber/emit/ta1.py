"""TA1 interchange acknowledgements, for interchanges whose envelope cannot be trusted.

A payer answers a broken ISA/IEA with a TA1 instead of claim acknowledgements.
The mapping from our envelope problems to TA104 (A accepted, E accepted with
errors, R rejected) and the TA105 note code of the X12 TA1 note-code list:

| problem               | TA104 | TA105 | why |
|-----------------------|-------|-------|-----|
| env-iea-control       | R     | 001   | ISA13 and IEA02 do not match |
| env-isa-version       | R     | 017   | invalid interchange version (ISA12 not 00501) |
| env-iea-count         | E     | 021   | IEA01 is not the number of groups; the groups were read |
| env-missing-iea       | R     | 023   | improper (premature) end of file |
| syntax-isa-length     | R     | 022   | ISA not at its fixed width: invalid control structure |

Rejections outrank errors: an interchange with several problems gets the most
severe, first by this table's order.

When the implementation-guide check ran, every interchange it rejects gets a
TA1 too, R with the note code of its first envelope error (024 for a segment
outside any group -- one extra GE --, 025 for a repeated ISA13, 005-020 for an
ISA element ...): its claims are held and no 999 or 277CA answers them, so
without the TA1 nothing would. TA101-TA103 are the answered ISA13, ISA09 and
ISA10 fitted to N0 9, DT 6 and TM 4; a value that cannot be fitted is written
as a stand-in (000000000, and the date and time of the TA1 itself), as
docs/conformance.md lists.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, BinaryIO

from scrubber.emit.control import control_numbers as fresh_control_numbers
from scrubber.emit.values import fit_number, isa_qualifier, isa_value
from scrubber.model import EnvelopeEnd, Interchange, Problem

if TYPE_CHECKING:
    from scrubber.ig.report import IgReport, InterchangeResult

#: problem code -> (TA104, TA105, plain words)
TA1_CODES: dict[str, tuple[str, str, str]] = {
    "env-iea-control": ("R", "001", "the interchange control numbers in ISA13 and IEA02 "
                                    "do not match"),
    "env-isa-version": ("R", "017", "the interchange version (ISA12) is not 00501"),
    "env-missing-iea": ("R", "023", "the file ends before the interchange trailer (IEA): "
                                    "it was cut short"),
    "syntax-isa-length": ("R", "022", "the ISA header is not 106 characters, so its "
                                      "control structure cannot be trusted"),
    "env-iea-count": ("E", "021", "IEA01 does not give the number of functional groups"),
}
#: TA101 when the answered ISA13 is not a number of at most nine digits
STAND_IN_CONTROL = "000000000"


@dataclass(frozen=True, slots=True)
class Ta1:
    """One TA1 answer: which interchange, the verdict, and why in words."""

    control_number: str  # TA101: the ISA13 answered
    date: str  # TA102 YYMMDD
    time: str  # TA103 HHMM
    ack_code: str  # TA104
    note_code: str  # TA105
    words: str
    sender_qualifier: str = ""  # ISA05 of the answered interchange: our ISA07
    sender_id: str = ""  # its ISA06: our ISA08
    usage: str = ""  # its ISA15


def explain_ta1(ta1: Ta1) -> str:
    """The TA1 in words, for the summary a person reads."""
    verdict = {"R": "rejected", "E": "accepted with errors", "A": "accepted"}[ta1.ack_code]
    return (f"interchange {ta1.control_number} {verdict} by the envelope check "
            f"(TA1 note {ta1.note_code}): {ta1.words}")


def ta1_answers(events: Iterable, conformance: IgReport | None = None) -> Iterator[Ta1]:
    """The TA1 each interchange of a (scrubbed) event stream calls for, if any.

    With ``conformance`` (the implementation-guide check of the same source),
    an interchange it rejects is answered too, R: its claims are held.
    """
    rejected = [i for i in conformance.interchanges if i.errors] if conformance else []
    model = list(_model_answers(events))
    if not rejected:
        yield from (ta1 for _, ta1 in model if ta1 is not None)
        return
    everyone = conformance.interchanges if conformance else ()
    pairs: list[tuple[InterchangeResult | None, Ta1 | None]]
    if len(everyone) == len(model):  # one reading of the same ISAs: pair them in order
        pairs = [(result, ta1) for result, (_, ta1) in zip(everyone, model, strict=True)]
    else:  # pair by control number; a TA1 the model alone calls for stands on its own
        by_control = {i.control_number: ta1 for i, ta1 in model}
        pairs = [(result, by_control.pop(result.control, None)) for result in everyone]
        pairs += [(None, ta1) for ta1 in by_control.values()]
    for result, ta1 in pairs:
        if ta1 is not None and (ta1.ack_code == "R" or result is None or not result.errors):
            yield ta1
        elif result is not None and result.errors:
            yield _checked(result)


def _model_answers(events: Iterable) -> Iterator[tuple[Interchange, Ta1 | None]]:
    """Each interchange of the stream with the TA1 its envelope problems call for (or None)."""
    interchange: Interchange | None = None
    worst: tuple[int, str] | None = None
    order = list(TA1_CODES)
    for event in events:
        cls = event.__class__
        if cls is Interchange:
            interchange, worst = event, None
        elif cls is Problem and event.code in TA1_CODES and interchange is not None:
            rank = (order.index(event.code), event.code)
            worst = rank if worst is None else min(worst, rank)
        elif cls is EnvelopeEnd and event.envelope == "interchange" and interchange:
            answer = None
            if worst is not None:
                ack, note, words = TA1_CODES[worst[1]]
                answer = Ta1(interchange.control_number,
                             interchange.date.strftime("%y%m%d") if interchange.date else "",
                             interchange.time, ack, note, words,
                             interchange.sender_qualifier, interchange.sender_id,
                             interchange.usage)
            yield interchange, answer
            interchange = None


def _checked(result: InterchangeResult) -> Ta1:
    """The TA1 of an interchange the implementation-guide check rejects: R, its first error."""
    isa = result.isa
    error = result.errors[0]

    def field(index: int) -> str:
        return isa[index].strip() if len(isa) > index else ""

    return Ta1(result.control, field(9), field(10), "R", error.code,
               error.message, field(5), field(6), field(15))


def envelope_events(event: object) -> bool:
    """Whether ``event`` matters to the TA1: small enough to keep for a whole file."""
    return isinstance(event, Interchange) or (
        isinstance(event, Problem) and event.code in TA1_CODES) or (
        isinstance(event, EnvelopeEnd) and event.envelope == "interchange")


def write_ta1(events: Iterable, out: BinaryIO, *, conformance: IgReport | None = None,
              sender_id: str = "SCRUBBER", sender_qualifier: str = "ZZ",
              clock: Callable[[], datetime] = datetime.now,
              control_numbers: Iterator[int] | None = None) -> list[Ta1]:
    """Write one TA1 interchange (ISA, TA1, IEA) per broken interchange; return them.

    ``conformance``: the implementation-guide check of the same source, whose
    rejected interchanges are answered too (``ta1_answers``).
    """
    numbers = control_numbers or fresh_control_numbers()
    answers = []
    for ta1 in ta1_answers(events, conformance):
        now = clock()
        control = next(numbers)
        isa = "*".join([
            "ISA", "00", " " * 10, "00", " " * 10, isa_qualifier(sender_qualifier),
            isa_value(sender_id, 15, "SCRUBBER"), isa_qualifier(ta1.sender_qualifier),
            isa_value(ta1.sender_id, 15, "UNKNOWN"),
            now.strftime("%y%m%d"), now.strftime("%H%M"), "^", "00501", f"{control:09d}", "0",
            ta1.usage if ta1.usage in ("P", "T") else "P", ":"])  # the control map: P or T
        answered = fit_number(ta1.control_number, 9, 9) or STAND_IN_CONTROL
        text = (f"{isa}~\nTA1*{answered}*{_date(ta1.date) or now.strftime('%y%m%d')}*"
                f"{_time(ta1.time) or now.strftime('%H%M')}*"
                f"{ta1.ack_code}*{ta1.note_code}~\nIEA*0*{control:09d}~\n")
        out.write(text.encode("ascii"))
        answers.append(ta1)
    return answers


def _date(text: str) -> str:
    """TA102 (DT 6, YYMMDD): the answered ISA09 when it is a real date, else ""."""
    if len(text) != 6 or not text.isascii() or not text.isdigit():
        return ""
    try:
        datetime.strptime(text, "%y%m%d")
    except ValueError:
        return ""
    return text


def _time(text: str) -> str:
    """TA103 (TM 4, HHMM): the answered ISA10 when it is a real time, else ""."""
    if len(text) != 4 or not text.isascii() or not text.isdigit():
        return ""
    return text if int(text[:2]) < 24 and int(text[2:]) < 60 else ""
