"""What the implementation-guide check found: verdicts per transaction set.

A payer's front end answers an 837 with a 999 before any business rule runs:
a transaction set with an implementation-guide error is rejected whole (IK5
R), and none of its claims go further. ``IgReport`` carries exactly what a
999 needs and what the scrubber needs to hold such claims back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace


@dataclass(frozen=True, slots=True)
class IgError:
    """One error in 999 terms (IK3 segment error, optionally an IK4 element error)."""

    segment_id: str  # IK301: the segment in error (or the missing segment)
    position: int  # IK302: segment position in the transaction set, ST = 1
    loop_id: str  # IK303: the guide's loop, e.g. "2300" ("" in the header)
    # IK304: 1 unrecognised, 2 not used, 3 missing, 4 loop repeats, 5 max use, 8 element errors
    segment_code: str
    message: str  # plain words; never the data itself (it may be a member id or a name)
    check: str = ""  # stable id of the check, e.g. "ig-missing", "ig-element", "ig-hl-parent"
    element: int = 0  # IK401-1, 0 for a segment error
    component: int = 0  # IK401-2, 0 when not in a composite
    data_element: str = ""  # IK402, the data element number
    # IK403: 1 missing, 2 conditional, 4 short, 5 long, 6 character, 7 code, 8 date, 9 time,
    # 10 excluded, 13 components
    element_code: str = ""
    value: str | None = None  # IK404: a copy of the bad value, for the 999 only
    line: int = 0  # physical line of the segment in the source (0 for a missing one)
    offset: int = -1  # byte offset of the segment in the source
    ordinal: int = 0  # segment ordinal in its interchange (ISA = 1)
    claim_id: str = ""  # CLM01 of the claim the segment belongs to, for the 999's CTX

    @property
    def is_element_error(self) -> bool:
        return bool(self.element_code)

    def as_dict(self) -> dict:
        return {
            "segment_id": self.segment_id, "position": self.position, "loop_id": self.loop_id,
            "segment_code": self.segment_code, "check": self.check, "element": self.element,
            "component": self.component, "data_element": self.data_element,
            "element_code": self.element_code, "message": self.message, "line": self.line,
            "claim_id": self.claim_id,
        }


@dataclass(frozen=True, slots=True)
class EnvelopeError:
    """An error in an envelope: IK5 (transaction), AK9 (group) or TA1 (interchange) code."""

    code: str
    message: str
    line: int = 0
    ordinal: int = 0
    check: str = ""  # the problem code (scrubber.problems) it is listed by: "env-se-count"


@dataclass(frozen=True, slots=True)
class TransactionVerdict:
    """IK5 for one transaction set, keyed by its envelope control numbers."""

    interchange_control: str  # ISA13
    group_control: str  # GS06
    transaction_control: str  # ST02
    transaction_set_id: str  # ST01
    implementation: str  # ST03
    ack_code: str  # IK501: "A" accepted, "R" rejected
    syntax_codes: tuple[str, ...]  # IK502..IK506
    errors: tuple[IgError, ...]
    envelope_errors: tuple[EnvelopeError, ...]
    segment_count: int  # segments counted ST..SE
    line: int  # line of ST
    guide: str  # the map file used
    note: str = ""  # e.g. which map stood in for a version pyx12 has none for
    skipped: bool = False  # counted, not checked: another process checked it (merge_reports)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.interchange_control, self.group_control, self.transaction_control)

    @property
    def accepted(self) -> bool:
        return self.ack_code in ("A", "E")

    def as_dict(self) -> dict:
        return {
            "interchange_control": self.interchange_control,
            "group_control": self.group_control,
            "transaction_control": self.transaction_control,
            "transaction_set_id": self.transaction_set_id,
            "implementation": self.implementation,
            "accepted": self.accepted,
            "ack_code": self.ack_code,
            "syntax_codes": list(self.syntax_codes),
            "errors": [e.as_dict() for e in self.errors],
            "envelope_errors": [{"code": e.code, "message": e.message, "line": e.line}
                                for e in self.envelope_errors],
            "guide": self.guide,
            "note": self.note,
        }


@dataclass(frozen=True, slots=True)
class GroupVerdict:
    """AK9 for one functional group, with the GS facts a 999 echoes."""

    control: str  # GS06
    functional_id: str  # GS01
    sender: str  # GS02
    receiver: str  # GS03
    version: str  # GS08
    ack_code: str  # AK901: A, P (partly accepted) or R
    declared: int  # AK902: GE01 as sent
    received: int  # AK903
    accepted: int  # AK904
    syntax_codes: tuple[str, ...]  # AK905..AK909
    errors: tuple[EnvelopeError, ...]
    transactions: tuple[TransactionVerdict, ...]
    line: int


@dataclass(frozen=True, slots=True)
class InterchangeResult:
    """One interchange: the ISA facts a 999 needs, its groups and its own errors (TA1 codes)."""

    control: str  # ISA13
    isa: tuple[str, ...]  # ISA elements as sent (ISA = index 0)
    groups: tuple[GroupVerdict, ...]
    errors: tuple[EnvelopeError, ...]
    element_separator: str
    component_separator: str
    line: int

    @property
    def accepted(self) -> bool:
        return not self.errors


@dataclass(frozen=True, slots=True)
class IgReport:
    """Every interchange, group and transaction set of a source, with their verdicts."""

    interchanges: tuple[InterchangeResult, ...]
    problems: tuple[str, ...] = ()  # input that is not X12 at all (from the tokenizer)
    _index: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self):
        for isa in self.interchanges:
            for gs in isa.groups:
                for st in gs.transactions:
                    self._index.setdefault(st.key, []).append((isa, gs, st))

    @property
    def transactions(self) -> tuple[TransactionVerdict, ...]:
        return tuple(st for isa in self.interchanges for gs in isa.groups for st in gs.transactions)

    def verdict(self, interchange_control: str, group_control: str,
                transaction_control: str) -> TransactionVerdict | None:
        """The transaction set with these control numbers (the first, if they repeat)."""
        hits = self._index.get((interchange_control, group_control, transaction_control))
        return hits[0][2] if hits else None

    def placements(self, interchange_control: str, group_control: str,
                   transaction_control: str) -> list[tuple]:
        """Every (interchange, group, transaction set) with these control numbers."""
        return list(self._index.get((interchange_control, group_control, transaction_control),
                                    ()))

    def is_accepted(self, interchange_control: str, group_control: str,
                    transaction_control: str) -> bool:
        """May claims of this transaction set go on to business rules and a 277CA?

        False when the set was rejected (IK5 R), when its functional group or
        interchange was rejected as a whole, when its control numbers are
        used twice, and when the check never saw it.
        """
        hits = self._index.get((interchange_control, group_control, transaction_control))
        if not hits or len(hits) > 1:
            return False
        isa, gs, st = hits[0]
        return st.accepted and isa.accepted and not gs.errors

    @property
    def accepted(self) -> bool:
        return all(i.accepted for i in self.interchanges) and all(
            not g.errors and all(t.accepted for t in g.transactions)
            for i in self.interchanges for g in i.groups) and not self.problems


def group_ack(errors: Sequence[EnvelopeError], transactions: Sequence[TransactionVerdict]
              ) -> tuple[str, int]:
    """AK901 and AK904 of a group: A, P (partly accepted) or R, and how many sets passed."""
    accepted = sum(1 for t in transactions if t.accepted)
    if errors or not transactions:
        return "R", accepted
    if accepted == len(transactions):
        return "A", accepted
    return ("P" if accepted else "R"), accepted


def merge_reports(parts: Sequence[IgReport]) -> IgReport:
    """One source's report from the reports of checkers that each owned some of its sets.

    Every part saw the whole source (``Checker(owns=...)``), so their envelopes
    agree; each transaction set is taken from the part that checked it, and each
    group's AK9 is worked out again over the merged sets.
    """
    first = parts[0]
    shapes = {tuple(tuple(len(g.transactions) for g in i.groups) for i in p.interchanges)
              for p in parts}
    if len(shapes) != 1:
        raise ValueError("the partial IG reports do not describe the same envelopes")
    interchanges = []
    for i, isa in enumerate(first.interchanges):
        groups = []
        for j, gs in enumerate(isa.groups):
            merged = []
            for k, st in enumerate(gs.transactions):
                checked = [p.interchanges[i].groups[j].transactions[k] for p in parts]
                owners = [t for t in checked if not t.skipped]
                if len(owners) != 1:
                    raise ValueError(f"transaction set {st.transaction_control} was checked "
                                     f"{len(owners)} times, not once")
                merged.append(owners[0])
            ack, accepted = group_ack(gs.errors, merged)
            groups.append(replace(gs, transactions=tuple(merged), ack_code=ack,
                                  accepted=accepted))
        interchanges.append(replace(isa, groups=tuple(groups)))
    return IgReport(interchanges=tuple(interchanges), problems=first.problems)
