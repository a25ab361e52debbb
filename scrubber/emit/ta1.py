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
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO

from scrubber.emit.control import control_numbers as fresh_control_numbers
from scrubber.emit.values import carry, isa_value
from scrubber.model import EnvelopeEnd, Interchange, Problem

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


@dataclass(frozen=True, slots=True)
class Ta1:
    """One TA1 answer: which interchange, the verdict, and why in words."""

    control_number: str  # TA101: the ISA13 answered
    date: str  # TA102 YYMMDD
    time: str  # TA103 HHMM
    ack_code: str  # TA104
    note_code: str  # TA105
    words: str


def explain_ta1(ta1: Ta1) -> str:
    """The TA1 in words, for the summary a person reads."""
    verdict = {"R": "rejected", "E": "accepted with errors", "A": "accepted"}[ta1.ack_code]
    return (f"interchange {ta1.control_number} {verdict} by the envelope check "
            f"(TA1 note {ta1.note_code}): {ta1.words}")


def ta1_answers(events: Iterable) -> Iterator[Ta1]:
    """The TA1 each interchange of a (scrubbed) event stream calls for, if any."""
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
            if worst is not None:
                ack, note, words = TA1_CODES[worst[1]]
                yield Ta1(interchange.control_number,
                          interchange.date.strftime("%y%m%d") if interchange.date else "000000",
                          interchange.time or "0000", ack, note, words)
            interchange = None


def envelope_events(event: object) -> bool:
    """Whether ``event`` matters to the TA1: small enough to keep for a whole file."""
    return isinstance(event, Interchange) or (
        isinstance(event, Problem) and event.code in TA1_CODES) or (
        isinstance(event, EnvelopeEnd) and event.envelope == "interchange")


def write_ta1(events: Iterable, out: BinaryIO, *, sources: dict[str, Interchange] | None = None,
              sender_id: str = "SCRUBBER", sender_qualifier: str = "ZZ",
              clock: Callable[[], datetime] = datetime.now,
              control_numbers: Iterator[int] | None = None) -> list[Ta1]:
    """Write one TA1 interchange (ISA, TA1, IEA) per broken interchange; return them."""
    numbers = control_numbers or fresh_control_numbers()
    seen: dict[str, Interchange] = dict(sources or {})
    answers = []

    def remember(stream: Iterable) -> Iterator:
        for event in stream:
            if event.__class__ is Interchange:
                seen[event.control_number] = event
            yield event

    for ta1 in ta1_answers(remember(events)):
        now = clock()
        source = seen.get(ta1.control_number)
        control = next(numbers)
        isa = "*".join([
            "ISA", "00", " " * 10, "00", " " * 10, isa_value(sender_qualifier, 2, "ZZ"),
            isa_value(sender_id, 15),
            isa_value(source.sender_qualifier if source else "", 2, "ZZ"),
            isa_value(source.sender_id if source else "", 15, "UNKNOWN"),
            now.strftime("%y%m%d"), now.strftime("%H%M"), "^", "00501", f"{control:09d}", "0",
            source.usage if source and source.usage in ("P", "T", "I") else "P", ":"])
        answered = carry(ta1.control_number).rjust(9, "0")[:9]
        text = (f"{isa}~\nTA1*{answered}*{carry(ta1.date, 6)}*{carry(ta1.time, 4)}*"
                f"{ta1.ack_code}*{ta1.note_code}~\nIEA*0*{control:09d}~\n")
        out.write(text.encode("ascii"))
        answers.append(ta1)
    return answers
