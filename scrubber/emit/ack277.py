"""The 277CA (005010X214) claim acknowledgement, as a payer's front end would send it.

One 277CA interchange answers each scrubbed 837 interchange: 2000A the
scrubber as information source, 2000B the 837's submitter (1000A) with the
batch counts, 2000C each billing provider with its counts, 2000D/2200D each
claim (TRN02 = CLM01 exactly), and 2220D each service line a rejecting finding
names. Accepted claims get STC A2:20 (accepted into adjudication) with WQ;
rejected ones the category and status code of their rejecting findings, up to
three (STC01, STC10, STC11), with U. Clock and control numbers are injected so
that output is reproducible.

Counts come before the claims they count, so the claims of one interchange are
kept as compact rows (strings, not the claim model) in a private SQLite table
(on disk once it outgrows a small cache) until its end; only the counts stay in
memory, and the segments are written as they are made. Memory stays flat
however many claims an interchange holds.

Every value taken from the 837 is fitted to its element's type and length in
the 277CA guide (names AN 1-60, ids AN 2-80, TRN02 AN 1-50, amounts R 1-18,
SVC01 codes and modifiers, units R 1-15 ...); one that cannot be is written
as the stand-in ``STAND_INS`` names (docs/conformance.md) or, where the
element is situational, left out. A claim whose CLM01 cannot be TRN02 as sent
says so in STC12.
"""

from __future__ import annotations

import pickle
import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import BinaryIO

from scrubber.emit.control import control_numbers as fresh_control_numbers
from scrubber.emit.ta1 import TA1_CODES
from scrubber.emit.values import COMPONENT as _COMPONENT
from scrubber.emit.values import ELEMENT as _ELEMENT
from scrubber.emit.values import REPETITION as _REPETITION
from scrubber.emit.values import TERMINATOR as _TERMINATOR
from scrubber.emit.values import (
    Element,
    carry,
    fit_amount,
    fit_code,
    fit_number,
    fit_text,
    isa_qualifier,
    isa_value,
)
from scrubber.emit.values import join as _join
from scrubber.model import EnvelopeEnd, Interchange, Problem, Transaction
from scrubber.rules.findings import ScrubbedClaim, Severity

#: envelope problems after which the interchange gets a TA1, not claim acknowledgements
TA1_PROBLEMS = frozenset(TA1_CODES)
_DEFAULT_STATUS = ("A7", "21")  # a reject with no mapped status: missing or invalid information
_STC12_MAX = 264
_DECIMAL = re.compile(r"-?(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)", re.ASCII)  # an R value
#: STC12 of a claim whose CLM01 held what a 277CA cannot carry (TRN02 is then not CLM01)
ALTERED = ("CLM01 holds characters this acknowledgement cannot carry (delimiters, control or "
           "non-X12 characters); TRN02 has them replaced")
#: STC12 of a claim whose CLM01 is empty or longer than TRN02 can be (AN 1-50)
REPLACED = "CLM01 is empty or longer than TRN02 allows (AN 1-50), so TRN02 holds a stand-in"
#: code lists of the 277CA guide (pyx12's 277.5010.X214.xml)
SVC01_QUALIFIERS = frozenset(("AD", "ER", "HC", "HP", "IV", "NU", "WK"))
#: what the 277CA writes where the 837's value cannot be fitted to the 277CA element
STAND_INS = {
    "GS03": "UNKNOWN",  # the 837's ISA06 (AN 2-15)
    "BHT03": "000000000",  # the answered ISA13 part of our BHT03, when not a number
    "NM103": "UNKNOWN",  # a submitter, provider or patient name that is empty once carried
    "NM109": "UNKNOWN",  # an id under 2 or over 80 characters (a missing NPI: 0000000000)
    "TRN02": "UNKNOWN",  # a batch or claim id empty or over 50 characters (STC12 says so)
    "SVC01-02": "UNKNOWN",  # a procedure or revenue code empty or over 48 characters
    "amount": "0",  # an amount whose whole part is over 18 digits (or none)
}


def _clean(text: str, limit: int | None = None) -> str:
    """Free text made safe for our delimiters, one space between words, cut to its element."""
    text = " ".join(carry(text).split())
    return text[:limit].rstrip() if limit else text


def _money(value: Decimal | None) -> str:
    """An R 1-18 amount; the stand-in 0 when it is too big to be one."""
    return fit_amount(value or Decimal(0)) or STAND_INS["amount"]


def _id(value: str, low: int = 2, high: int = 80, stand_in: str = STAND_INS["NM109"]) -> str:
    """An identifier (AN ``low``-``high``) as sent, or the stand-in: never cut short."""
    return fit_text(value, low, high, cut=False) or stand_in


def _units(text: str) -> str:
    """SVC07 (R 1-15): the units as sent when they are a decimal number that fits, else ""."""
    text = text.strip()
    if not _DECIMAL.fullmatch(text):
        return ""
    return text if sum(c.isdigit() for c in text) <= 15 else ""


@dataclass(frozen=True, slots=True)
class _Line:
    """A rejected service line: 2220D."""

    procedure: tuple[str, ...]  # SVC01 composite: qualifier, code, modifiers
    charge: str
    revenue_code: str
    units: str
    control_number: str  # REF*6R -> REF*FJ
    dates: tuple[date, date] | None
    statuses: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class _Claim:
    """What the 277CA says about one claim: 2000D/2200D (and 2220D)."""

    claim_id: str
    charge: Decimal
    patient_last: str
    patient_first: str
    member_id: str
    d9: str
    dates: tuple[date, date] | None
    statuses: tuple[tuple[str, str], ...]  # empty: accepted
    text: str
    lines: tuple[_Line, ...]


@dataclass(slots=True)
class _Provider:
    """A billing provider of the interchange: its counts; its claim rows are spooled."""

    number: int  # order of first appearance
    name: str
    first_name: str
    entity_type: str
    npi: str
    accepted: int = 0
    rejected: int = 0
    accepted_amount: Decimal = field(default_factory=Decimal)
    rejected_amount: Decimal = field(default_factory=Decimal)

    def count(self, claim: _Claim) -> None:
        if claim.statuses:
            self.rejected += 1
            self.rejected_amount += claim.charge
        else:
            self.accepted += 1
            self.accepted_amount += claim.charge


class _Rows:
    """Claim rows by provider, in arrival order, in a private temporary database."""

    def __init__(self) -> None:
        # "" opens a private temporary database: memory while small, an unlinked file beyond
        self.db = sqlite3.connect("")
        self.db.execute("PRAGMA cache_size = -4096")
        self.db.execute("CREATE TABLE row (provider INTEGER, seq INTEGER PRIMARY KEY, "
                        "data BLOB)")

    def add(self, provider: int, claim: _Claim) -> None:
        self.db.execute("INSERT INTO row (provider, data) VALUES (?, ?)",
                        (provider, pickle.dumps(claim, protocol=pickle.HIGHEST_PROTOCOL)))

    def of(self, provider: int) -> Iterator[_Claim]:
        for (data,) in self.db.execute("SELECT data FROM row WHERE provider = ? ORDER BY seq",
                                       (provider,)):
            yield pickle.loads(data)

    def clear(self) -> None:
        self.db.execute("DELETE FROM row")

    def close(self) -> None:
        self.db.close()


@dataclass(frozen=True, slots=True)
class AckSummary:
    """What one 277CA interchange said, for the caller's report."""

    answers: str  # the 837 ISA13 it acknowledges
    control_number: str  # our ISA13
    accepted: int
    rejected: int
    skipped: str = ""  # why no 277CA was written (a TA1 answers it instead)


def _statuses(findings: Iterable) -> tuple[tuple[str, str], ...]:
    seen: list[tuple[str, str]] = []
    for finding in findings:
        status = finding.status or _DEFAULT_STATUS
        if status not in seen:
            seen.append(status)
    return tuple(seen[:3])


def _line_dates(line) -> tuple[date, date] | None:
    if line.date_from is None:
        return None
    return line.date_from, line.date_to or line.date_from


def _claim_row(scrubbed: ScrubbedClaim) -> _Claim:
    record = scrubbed.record
    claim = record.claim
    rejects = [f for f in scrubbed.findings if f.severity is Severity.REJECT]
    by_line: dict[int, list] = {}
    for finding in rejects:
        if finding.line_number is not None:
            by_line.setdefault(finding.line_number, []).append(finding)
    lines = []
    for line in claim.lines:
        found = by_line.get(line.number) if line.number is not None else None
        if not found:
            continue
        code = _id(line.procedure or line.revenue_code, 1, 48, STAND_INS["SVC01-02"])
        qualifier = fit_code(line.procedure_qualifier, SVC01_QUALIFIERS) or (
            "HC" if line.procedure else "NU")
        modifiers = [m for m in (fit_text(m, 2, 2, cut=False) for m in line.modifiers) if m]
        svc01 = (qualifier, code, *modifiers[:4])
        lines.append(_Line(svc01, _money(line.charge),
                           fit_text(line.revenue_code, 1, 48, cut=False) if line.procedure
                           else "", _units(line.units_text),
                           fit_text(line.control_number, 1, 50, cut=False),
                           _line_dates(line), _statuses(found)))
    spans = [d for d in (_line_dates(line) for line in claim.lines) if d]
    dates: tuple[date, date] | None
    if spans:
        dates = (min(a for a, _ in spans), max(b for _, b in spans))
    else:
        period = claim.date("434")
        dates = (period.start, period.end) if period and period.start and period.end else None
    patient = record.patient
    subscriber = record.subscriber
    trace = fit_text(claim.id, 1, 50, cut=False)
    why = [] if trace == claim.id else [REPLACED] if not trace else [ALTERED]
    return _Claim(
        claim_id=trace or STAND_INS["TRN02"],
        charge=claim.charge or Decimal(0),
        patient_last=patient.last_name if patient else "",
        patient_first=patient.first_name if patient else "",
        member_id=(subscriber.member_id if subscriber else "") or
                  (patient.member_id if patient else ""),
        d9=fit_text(claim.reference("D9"), 1, 50, cut=False),
        dates=dates,
        statuses=_statuses(rejects),
        text="; ".join(why + [f"{f.rule}: {f.message}" for f in rejects]),
        lines=tuple(lines),
    )


class Ack277Writer:
    """Turns a scrubbed event stream into 277CA interchanges, one per 837 interchange."""

    def __init__(self, *, sender_id: str = "SCRUBBER", sender_qualifier: str = "ZZ",
                 source_name: str = "SCRUBBER", source_id: str = "SCRUBBER",
                 clock: Callable[[], datetime] = datetime.now,
                 control_numbers: Iterator[int] | None = None):
        self.sender_id = sender_id
        self.sender_qualifier = sender_qualifier
        self.source_name = source_name
        self.source_id = source_id
        self.clock = clock
        # fresh numbers unless injected, from the per-user counter (scrubber.emit.control):
        # never the same in two runs or two watcher workers
        self.control_numbers = control_numbers or fresh_control_numbers()

    def write(self, events: Iterable, out: BinaryIO) -> list[AckSummary]:
        """Write every 277CA interchange the stream calls for; return what each said."""
        stream = self.stream(out)
        try:
            for event in events:
                stream.event(event)
        finally:
            summaries = stream.close()
        return summaries

    def stream(self, out: BinaryIO) -> Ack277Stream:
        """A push-style writer: feed it events; each interchange is written as it ends."""
        return Ack277Stream(self, out)

    # -- one interchange ---------------------------------------------------------------
    def _interchange(self, out: BinaryIO, source: Interchange, submitter: tuple[str, str],
                     batch: str, providers: list[_Provider], rows: _Rows) -> AckSummary:
        now = self.clock()
        control = next(self.control_numbers)
        today, hhmm = now.strftime("%Y%m%d"), now.strftime("%H%M")
        counted = 0  # segments ST..SE, for SE01

        def write_line(text: str) -> None:
            out.write((text + _TERMINATOR + "\n").encode("utf-8"))

        def add(elements: list[Element]) -> None:
            nonlocal counted
            counted += 1
            write_line(_join(elements))

        write_line(self._isa(source, control, now))
        write_line(_join(["GS", "HN", _id(self.sender_id, 2, 15, "SCRUBBER"),
                          _id(source.sender_id, 2, 15, STAND_INS["GS03"]),
                          today, hhmm, str(control), "X", "005010X214"]))
        add(["ST", "277", f"{control:04d}", "005010X214"])
        answered = fit_number(source.control_number, 9, 9) or STAND_INS["BHT03"]
        add(["BHT", "0085", "08", f"{answered}-{control}", today, hhmm, "TH"])
        accepted = sum(p.accepted for p in providers)
        rejected = sum(p.rejected for p in providers)
        accepted_amount = sum((p.accepted_amount for p in providers), Decimal(0))
        rejected_amount = sum((p.rejected_amount for p in providers), Decimal(0))
        add(["HL", "1", "", "20", "1"])
        add(["NM1", "AY", "2", _clean(self.source_name, 60) or "SCRUBBER", "", "", "", "", "46",
             _id(self.source_id, 2, 80, "SCRUBBER")])
        add(["TRN", "1", f"{control:09d}"])
        add(["DTP", "050", "D8", today])
        add(["DTP", "009", "D8", today])
        add(["HL", "2", "1", "21", "1"])
        add(["NM1", "41", "2", _clean(submitter[0] or source.sender_id, 60) or
             STAND_INS["NM103"], "", "", "", "", "46", _id(submitter[1] or source.sender_id)])
        add(["TRN", "2", _id(batch or source.control_number, 1, 50, STAND_INS["TRN02"])])
        add(["STC", ("A1", "19"), today, "WQ", _money(accepted_amount + rejected_amount)])
        self._counts(add, "90", "AA", accepted, rejected, accepted_amount, rejected_amount)
        hl = 2
        for provider in providers:
            hl += 1
            provider_hl = hl
            add(["HL", str(hl), "2", "19", "1"])
            person = provider.entity_type == "1"
            add(["NM1", "85", "1" if person else "2",
                 _clean(provider.name, 60) or STAND_INS["NM103"],
                 _clean(provider.first_name, 35) if person else "", "", "", "",
                 "XX", _id(provider.npi, 2, 80, "0000000000")])
            add(["TRN", "1", f"{control:04d}{provider_hl:05d}"])
            add(["STC", ("A1", "19"), "", "WQ",
                 _money(provider.accepted_amount + provider.rejected_amount)])
            self._counts(add, "QA", "QC", provider.accepted, provider.rejected,
                         provider.accepted_amount, provider.rejected_amount)
            for claim in rows.of(provider.number):
                hl += 1
                add(["HL", str(hl), str(provider_hl), "PT"])
                add(["NM1", "QC", "1", _clean(claim.patient_last, 60) or STAND_INS["NM103"],
                     _clean(claim.patient_first, 35), "", "", "", "MI",
                     _id(claim.member_id)])
                add(["TRN", "2", claim.claim_id])
                if claim.statuses:
                    stc: list[Element] = ["STC", claim.statuses[0], today, "U",
                           _money(claim.charge), "", "", "", "", "",
                           claim.statuses[1] if len(claim.statuses) > 1 else "",
                           claim.statuses[2] if len(claim.statuses) > 2 else "",
                           _clean(claim.text, _STC12_MAX)]
                else:
                    stc = ["STC", ("A2", "20"), today, "WQ", _money(claim.charge)]
                    if claim.text:  # STC12: why TRN02 is not CLM01 exactly
                        stc += [""] * 7 + [_clean(claim.text, _STC12_MAX)]
                add(stc)
                if claim.d9:
                    add(["REF", "D9", claim.d9])
                add(["DTP", "472", *self._dates(claim.dates, now.date())])
                for line in claim.lines:
                    add(["SVC", line.procedure, line.charge, "", line.revenue_code, "", "",
                         line.units])
                    stc = ["STC", line.statuses[0], today, "U", "", "", "",
                           "", "", "",
                           line.statuses[1] if len(line.statuses) > 1 else "",
                           line.statuses[2] if len(line.statuses) > 2 else ""]
                    add(stc)
                    if line.control_number:
                        add(["REF", "FJ", line.control_number])
                    if line.dates:
                        add(["DTP", "472", *self._dates(line.dates, now.date())])
        add(["SE", str(counted + 1), f"{control:04d}"])
        write_line(_join(["GE", "1", str(control)]))
        write_line(_join(["IEA", "1", f"{control:09d}"]))
        return AckSummary(source.control_number, f"{control:09d}", accepted, rejected)

    @staticmethod
    def _counts(add, acc_code: str, rej_code: str, accepted: int, rejected: int,
                accepted_amount: Decimal, rejected_amount: Decimal) -> None:
        if accepted:
            add(["QTY", acc_code, str(accepted)])
        if rejected:
            add(["QTY", rej_code, str(rejected)])
        if accepted:
            add(["AMT", "YU", _money(accepted_amount)])
        if rejected:
            add(["AMT", "YY", _money(rejected_amount)])

    @staticmethod
    def _dates(span: tuple[date, date] | None, fallback: date) -> list[str]:
        start, end = span or (fallback, fallback)
        if start == end:
            return ["D8", start.strftime("%Y%m%d")]
        return ["RD8", f"{start:%Y%m%d}-{end:%Y%m%d}"]

    def _isa(self, source: Interchange, control: int, now: datetime) -> str:
        fields = ["ISA", "00", " " * 10, "00", " " * 10,
                  isa_qualifier(self.sender_qualifier),
                  isa_value(self.sender_id, 15, "SCRUBBER"),
                  isa_qualifier(source.sender_qualifier),
                  isa_value(source.sender_id, 15, "UNKNOWN"),
                  now.strftime("%y%m%d"), now.strftime("%H%M"), _REPETITION, "00501",
                  f"{control:09d}", "0", source.usage if source.usage in ("P", "T") else "P",
                  _COMPONENT]
        return _ELEMENT.join(fields)



class Ack277Stream:
    """One 277CA output fed event by event (the core's sinks push, they do not pull)."""

    def __init__(self, writer: Ack277Writer, out: BinaryIO):
        self.writer = writer
        self.out = out
        self.rows = _Rows()
        self.summaries: list[AckSummary] = []
        self.interchange: Interchange | None = None
        self.submitter = ("", "")
        self.batch = ""
        self.providers: dict[tuple[str, str], _Provider] = {}
        self.ta1_reason = ""

    def event(self, event: object) -> None:
        if isinstance(event, Interchange):
            self.interchange, self.providers, self.ta1_reason = event, {}, ""
            self.submitter, self.batch = ("", ""), ""
            self.rows.clear()
        elif isinstance(event, Transaction) and not self.submitter[0] and event.submitter:
            self.submitter = (event.submitter.name, event.submitter.id)
            self.batch = event.reference
        elif isinstance(event, Problem) and event.code in TA1_PROBLEMS and not self.ta1_reason:
            self.ta1_reason = event.message
        elif isinstance(event, ScrubbedClaim) and not event.held:  # the 999 answers a held one
            provider = event.record.billing_provider
            key = (provider.npi, provider.name) if provider else ("", "")
            if key not in self.providers:
                self.providers[key] = _Provider(
                    len(self.providers),
                    provider.name if provider else "UNKNOWN",
                    provider.first_name if provider else "",
                    provider.entity_type if provider else "2",
                    provider.npi if provider else "")
            row = _claim_row(event)
            self.providers[key].count(row)
            self.rows.add(self.providers[key].number, row)
        elif isinstance(event, EnvelopeEnd) and event.envelope == "interchange" and \
                self.interchange:
            if self.ta1_reason:
                self.summaries.append(AckSummary(self.interchange.control_number, "", 0, 0,
                                                 self.ta1_reason))
            elif self.providers:
                self.summaries.append(self.writer._interchange(
                    self.out, self.interchange, self.submitter, self.batch,
                    list(self.providers.values()), self.rows))
            self.interchange = None

    def close(self) -> list[AckSummary]:
        """Release the spooled rows; return what each interchange written said."""
        self.rows.close()
        return self.summaries
