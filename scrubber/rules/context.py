"""What a rule sees: one claim, the profile's lists, and the services of the same day.

The day context is every service line of the same patient (``patient_identity``:
billing NPI, member, name, birth date) on the same date of service, across the
claim itself, the other claims of the submission and the claims already
accepted in the ledger. The engine supplies it; rules only read it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, TypeVar

from scrubber.model.claims import ClaimRecord, DateValue, Location, ServiceLine, one_day
from scrubber.rules.profile import Profile
from scrubber.rules.resources import Resources

SAME_CLAIM, SUBMISSION, LEDGER = "claim", "submission", "ledger"
ClaimKey = tuple[str, str, str]  # (billing NPI, payer id, CLM01)
T = TypeVar("T")


def service_date(record: ClaimRecord, line: ServiceLine) -> date | None:
    """The line's single date of service, or None (``line_date``, spelt out: rules ask
    this of every line several times over)."""
    for value in line.dates:
        if value.qualifier == "472":
            return one_day(line.date_from, line.date_to)
    if record.transaction.kind == "837I":
        statement = record.claim.date("434")
        if statement is not None:
            return one_day(statement.start, statement.end)
    return None


def line_date(kind: str, dated: bool, day: date | None, statement: DateValue | None
              ) -> date | None:
    """A service line's single date of service, or None.

    DTP*472 of the line (``dated``; ``day`` its single day: a one-day RD8 range
    counts as that day); on an 837I line without DTP*472, a one-day statement
    period (``statement``, the claim's DTP*434). The day index reads the same
    from ``ClaimSource.line_keys`` without building the claim.
    """
    if dated:
        return day
    if kind == "837I" and statement is not None:
        return one_day(statement.start, statement.end)
    return None


@dataclass(frozen=True, slots=True)
class DayService:
    """One service line of the day context."""

    where: str  # SAME_CLAIM, SUBMISSION or LEDGER
    claim_id: str  # CLM01
    claim_ordinal: int  # order of the claim in this run (0 for the ledger)
    line_index: int  # 0-based position of the line in its claim
    line_number: int | None  # LX01
    procedure: str  # SV101-2 / SV202-2
    modifiers: tuple[str, ...]
    units: Decimal | None
    submission: str  # interchange sender:control number
    location: Location | None = None  # SV1/SV2 of the line, when in this submission

    def label(self) -> str:
        """Words naming the service for a message: "99213 on claim PCN2 line 1 (...)"."""
        line = f" line {self.line_number}" if self.line_number is not None else ""
        if self.where == SAME_CLAIM:
            return f"{self.procedure} on{line or ' another line'} of this claim"
        accepted = ", already accepted" if self.where == LEDGER else ""
        return (f"{self.procedure} on claim {self.claim_id}{line} "
                f"(submission {self.submission}{accepted})")

    def reference(self) -> str:
        """The other claim, for Finding.related: "CLM01 (submission ...)"."""
        return f"{self.claim_id} (submission {self.submission})"


DayLookup = Callable[[date], tuple[DayService, ...]]
# every service of the patient from a first to a last date (both included), each with its
# date, in date order: what a rule over a period (a global surgery period) reads
SpanLookup = Callable[[date, date], tuple[tuple[date, DayService], ...]]
# how far a span lookup reaches from the dates of the claim's own lines, in days: a major
# surgery's 90-day global period and the day before it (the Spark job ships this much)
SPAN_DAYS = 91


@dataclass(frozen=True, slots=True)
class LedgerLine:
    """A service line of a claim the ledger recorded earlier (scrubber.ledger)."""

    claim_id: str  # CLM01
    line_number: int | None  # LX01
    procedure: str
    modifiers: tuple[str, ...]
    units: Decimal | None
    service_date: date
    submission: str  # interchange sender:control number
    payer: str = ""  # NM109 of 2010BB: with the billing NPI and CLM01, the claim's identity


@dataclass(frozen=True, slots=True)
class SentClaim:
    """The ledger's copy of a claim: recorded as sent, in an earlier submission, or (``held``)
    held by a recording of another run that is sending it now."""

    billing_npi: str  # NM109 of 2010AA
    payer: str  # NM109 of 2010BB
    claim_id: str  # CLM01
    frequency: str  # CLM05-3 of the copy sent
    submission: str  # interchange sender:control number it went in
    recorded_at: str  # when it was recorded, ISO 8601 UTC
    content: str | None = None  # claim_content of the copy; None: recorded before schema 5
    held: bool = False  # decided by a run still in progress, not sent yet


def claim_content(record: ClaimRecord) -> str:
    """A digest of what the claim says, as sent: CLM through its last segment, with its
    interchange's delimiters set aside. Two copies with one digest are one claim sent twice
    (a payer denies the second as an exact duplicate); another digest is a changed claim."""
    component = record.interchange.delimiters.component
    digest = hashlib.blake2b(digest_size=16)
    for segment in record.claim.segments:
        for element in segment.elements:
            digest.update(element.replace(component, "\x1f").encode("utf-8", "replace"))
            digest.update(b"\x1d")
        digest.update(b"\x1e")
    return digest.hexdigest()


def claim_key(record: ClaimRecord) -> ClaimKey:
    """How a payer knows a claim: billing provider, payer and patient control number.

    A resend, a rerun or a replacement of the claim carries the same key; see
    docs/ledger.md ("Claim identity").
    """
    provider = record.billing_provider
    subscriber = record.subscriber
    payer = subscriber.payer if subscriber is not None else None
    return (provider.npi if provider else "", payer.id if payer is not None else "",
            record.claim.id)


@dataclass(frozen=True, slots=True)
class ClaimContext:
    """One claim with its profile lists and day context: the only input of a rule."""

    record: ClaimRecord
    profile: Profile
    ordinal: int  # the claim's order in the run, 1-based
    submission: str
    day: DayLookup  # every service of this patient on a date, this claim's own lines included
    resources: Resources = Resources()  # outside data the packs read (NCCI tables ...)
    # earlier claims of the submission with the same billing NPI and CLM01 (their ordinals)
    twins: Callable[[], tuple[int, ...]] = lambda: ()
    # the ledger's part of ``day`` alone (claims accepted in earlier submissions): cheaper
    # for a rule that only looks back, and nothing at all without a ledger
    ledger_day: DayLookup = lambda day: ()
    # the ledger's copy of this same claim (billing NPI, payer, CLM01), when one was sent
    sent: Callable[[], SentClaim | None] = lambda: None
    # every service of this patient over a period, this claim's own lines included; the
    # run's other claims and the ledger's within SPAN_DAYS of the claim's dates
    span: SpanLookup = lambda first, last: ()
    # what several rules derive from the same claim, worked out once (see ``once``)
    derived: dict = field(default_factory=dict, compare=False, repr=False)
    # [True] once the ledger has been read (``day``, ``ledger_day``, ``sent``, ``span``, or a
    # value ``once`` derived from them) since the engine last cleared it: see Engine.scrub
    ledger_read: list[bool] = field(default_factory=lambda: [False], compare=False,
                                    repr=False)
    # the ``once`` names whose values were derived from the ledger
    from_ledger: set[str] = field(default_factory=set, compare=False, repr=False)

    def once(self, name: str, compute: Callable[..., T], *args: Any) -> T:
        """``compute(*args)`` the first time ``name`` is asked for this claim, then its value.

        Hot callers pass a module-level function and its arguments rather than a
        closure: a closure would be made on every call, only to be thrown away.
        """
        flag = self.ledger_read
        try:
            value = self.derived[name]
        except KeyError:
            before, flag[0] = flag[0], False
            value = self.derived[name] = compute(*args)
            if flag[0]:
                self.from_ledger.add(name)
            flag[0] = flag[0] or before
            return value
        if name in self.from_ledger:
            flag[0] = True
        return value

    def resource(self, name: str, kind: type[T]) -> T | None:
        """The run's resource ``name`` (see scrubber.rules.resources), if given and a ``kind``."""
        value = self.resources.get(name)
        return value if isinstance(value, kind) else None

    @property
    def claim(self):
        return self.record.claim

    @property
    def kind(self) -> str:
        return self.record.transaction.kind

    def service_date(self, line: ServiceLine) -> date | None:
        return service_date(self.record, line)

    def dated_lines(self) -> tuple[tuple[ServiceLine, date], ...]:
        """The claim's lines that have a single date of service, with it; worked out once."""
        return self.once("dated-lines", _dated_lines, self.record)

    def is_line(self, service: DayService, line: ServiceLine) -> bool:
        """True when ``service`` is ``line`` itself."""
        return (service.where == SAME_CLAIM
                and service.line_index == self.claim.lines.index(line))

    def others(self, line: ServiceLine) -> tuple[DayService, ...]:
        """The services of the line's date other than the line itself (empty without a date)."""
        day = self.service_date(line)
        if day is None:
            return ()
        index = self.claim.lines.index(line)
        return tuple(s for s in self.day(day)
                     if not (s.where == SAME_CLAIM and s.line_index == index))


def _dated_lines(record: ClaimRecord) -> tuple[tuple[ServiceLine, date], ...]:
    return tuple((line, day) for line in record.claim.lines
                 if (day := service_date(record, line)) is not None)


def own_services(record: ClaimRecord, submission: str, ordinal: int, day: date
                 ) -> tuple[DayService, ...]:
    """The claim's own lines on ``day``, as day-context services."""
    out = []
    for index, line in enumerate(record.claim.lines):
        if service_date(record, line) == day:
            out.append(DayService(
                SAME_CLAIM, record.claim.id, ordinal, index, line.number, line.procedure,
                line.modifiers, line.units, submission,
                line.service_location or line.location))
    return tuple(out)


def own_span(record: ClaimRecord, submission: str, ordinal: int, first: date, last: date
             ) -> tuple[tuple[date, DayService], ...]:
    """The claim's own lines dated ``first`` to ``last``, with their dates, in date order."""
    days = sorted({d for line in record.claim.lines
                   if (d := service_date(record, line)) is not None and first <= d <= last})
    return tuple((day, service) for day in days
                 for service in own_services(record, submission, ordinal, day))


def submission_id(record: ClaimRecord) -> str:
    """The submission a claim came in: interchange sender id and control number."""
    return f"{record.interchange.sender_id}:{record.interchange.control_number}"
