"""Hold back the claims of transaction sets the implementation-guide check rejects.

A payer's front end answers such a set with a 999 (IK5 R) and never looks at
its claims: they get no business rules and no 277CA. ``Gate`` brings that
verdict into the scrubbed event stream: every IG error becomes a located
``Problem`` of its transaction set (so each report lists it where the set is),
and ``held`` tells the engine which claims to hold, why in words, and the ids of
the errors that caused it (``Hold``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from scrubber.ig.report import EnvelopeError, IgError, IgReport
from scrubber.model import (
    ClaimRecord,
    FunctionalGroup,
    Interchange,
    Location,
    Problem,
    Transaction,
)

HELD_RULE = "ig-999"
LISTED = 1000  # IG errors of one transaction set listed in a report: it stays proportional

_IK304 = {"1": "unrecognized segment", "2": "segment not used here", "3": "required segment "
          "missing", "4": "loop occurs too often", "5": "segment occurs too often",
          "8": "segment has data element errors"}


def error_problem(error: IgError, control: str) -> Problem:
    """One IG error as a transaction-set problem, pointing at its segment."""
    where = f"{error.segment_id} (segment {error.position} of the set"
    where += f", loop {error.loop_id})" if error.loop_id else ")"
    if error.element:
        element = f"{error.segment_id}{error.element:02d}"
        element += f"-{error.component}" if error.component else ""
        code = f"999 IK3 {error.segment_code}, IK4 {error.element_code} on {element}"
    else:
        code = f"999 IK3 {error.segment_code} ({_IK304.get(error.segment_code, 'error')})"
    claim = f" in claim {error.claim_id}" if error.claim_id else ""
    location = Location(error.ordinal, error.line, error.offset) if error.line else None
    return Problem(error.check or "ig-error", f"{where}{claim}: {error.message} [{code}]",
                   "transaction", location, control)


TA1, ACK999 = "TA1", "999"  # how a payer answers a held claim's set


@dataclass(frozen=True, slots=True)
class Hold:
    """Why the claims of a transaction set go no further, and what caused it.

    ``causes`` are the ids (scrubber.problems) of the errors that made the
    payer reject the set, its group or its interchange: a report counts a held
    claim, with its charge, under each of them (``ig-999`` is only their total).
    ``answer``: a TA1 answers a rejected interchange, a 999 anything below it.
    """

    reason: str  # in words, never the data itself
    causes: tuple[str, ...] = ()
    answer: str = ACK999


def _causes(errors: Iterable[IgError | EnvelopeError]) -> tuple[str, ...]:
    """The distinct problem codes of ``errors``, in the order they come."""
    return tuple(dict.fromkeys(e.check or "ig-error" for e in errors))


def transaction_key(record: ClaimRecord) -> tuple[str, str, str]:
    """The control numbers (ISA13, GS06, ST02) the IG report knows the claim's set by."""
    group = record.group.control_number if record.group is not None else ""
    return (record.interchange.control_number, group, record.transaction.control_number)


class Gate:
    """The IG verdicts of one source, applied to its event stream."""

    def __init__(self, report: IgReport):
        self.report = report

    def held(self, record: ClaimRecord) -> Hold | None:
        """Why the claim's transaction set goes no further, or None when it was accepted."""
        key = transaction_key(record)
        if self.report.is_accepted(*key):
            return None
        places = self.report.placements(*key)
        st = f"transaction set {key[2]}"
        if not places:
            return Hold(f"the implementation-guide check could not place its {st}")
        if len(places) > 1:
            return Hold(f"its {st} uses the control numbers ISA13 {key[0]} / GS06 {key[1]} / "
                        f"ST02 {key[2]} of another set in the file",
                        _causes(e for isa, gs, verdict in places
                                for e in (*isa.errors, *gs.errors, *verdict.envelope_errors)))
        isa, gs, verdict = places[0]
        if not isa.accepted:
            return Hold(f"its interchange {key[0]} is rejected (TA1 R, note "
                        f"{isa.errors[0].code}): {isa.errors[0].message}",
                        _causes(isa.errors), TA1)
        if gs.errors:
            return Hold(f"its functional group {key[1]} is rejected: {gs.errors[0].message}",
                        _causes(gs.errors))
        causes = _causes((*verdict.errors, *verdict.envelope_errors))
        if verdict.errors:
            return Hold(f"its {st} is rejected by the implementation-guide check (999 IK5 R, "
                        f"{len(verdict.errors)} error(s) listed with the set)", causes)
        why = verdict.envelope_errors[0].message if verdict.envelope_errors else \
            f"IK5 codes {', '.join(verdict.syntax_codes) or 'R'}"
        return Hold(f"its {st} is rejected by the implementation-guide check (999 IK5 R): "
                    f"{why}", causes)

    def annotate(self, events: Iterable) -> Iterator:
        """The events, with each transaction set's IG errors right after its Transaction."""
        interchange = group = ""
        for event in events:
            yield event
            cls = event.__class__
            if cls is Transaction:
                verdict = self.report.verdict(interchange, group, event.control_number)
                if verdict is not None:
                    for error in verdict.errors[:LISTED]:
                        yield error_problem(error, event.control_number)
                    if len(verdict.errors) > LISTED:
                        yield Problem(
                            "ig-more-errors", f"{len(verdict.errors) - LISTED} more "
                            "implementation-guide errors in this transaction set are not "
                            "listed here; the 999 lists every one", "transaction",
                            event.location, event.control_number)
            elif cls is FunctionalGroup:
                group = event.control_number
            elif cls is Interchange:
                interchange, group = event.control_number, ""
