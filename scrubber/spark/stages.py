"""What the Spark tasks run: plain Python over iterators, one call per partition.

Nothing here imports pyspark, so every stage runs (and is tested) without a
cluster; scrubber.spark.job only wires them together.

1. ``index_pieces`` (where a piece is read, no shuffle): the implementation-guide
   check and the reader, as ``scrub check`` runs them; out come the rows
   ``DayIndex.add`` would index for every claim the check does not hold: the
   claim itself and each dated line under its *patient key*, the claim under
   its twin key (billing NPI, CLM01, submission), and the piece's claim count.
2. ``context_rows`` (after one shuffle on those keys): each claim gets what
   ``DayIndex`` would answer for it: the other claims' lines on each of its
   days (``services``), the run's claims of its patient for the ledger's lines
   (``holds``, with a ledger only) and its earlier twins (``twins``).
3. ``scrub_pieces`` (after a shuffle back to the piece): the piece is read again
   and its claims go through the engine's own ``scrub_indexed`` with that
   context, inside the core's Scrubber, so the verdicts, acknowledgements and
   recording are the core's; out come table rows.

The patient key is a keyed hash (BLAKE2b with a per-run secret) of the
engine's patient key and the context's reach: shuffle files never hold a
name, member id or birth date, and a hash seen there cannot be looked up
outside the run.
"""

from __future__ import annotations

import hashlib
import resource
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scrubber.core import Recording, Scrubber
from scrubber.emit.sinks import AckFiles, Sink, ack_sinks
from scrubber.emit.summary import Tally
from scrubber.model import ClaimRecord, Problem, Transaction, read
from scrubber.model.claims import CHANGE_FREQUENCIES
from scrubber.model.values import parse_decimal
from scrubber.options import ScrubOptions
from scrubber.passes import TallySink
from scrubber.rules import ScrubbedClaim
from scrubber.rules.context import (
    SPAN_DAYS,
    SUBMISSION,
    DayService,
    claim_key,
    submission_id,
)
from scrubber.rules.engine import line_rows, patient_key
from scrubber.spark.pieces import Piece

if TYPE_CHECKING:
    from scrubber.ig.gate import Hold

RUN, FILE = "run", "file"  # the reach of the day context: every file of the run, or each file


@dataclass(frozen=True, slots=True)
class Job:
    """What every task of one run needs; shipped to the executors with the closures."""

    options: ScrubOptions
    secret: bytes  # the patient key's hash key, made fresh for each run
    scope: str = RUN
    ack_999: bool = True
    parts: str | None = None  # folder of the per-piece acknowledgements; None: none written
    # the driver's recording: accepted claims are held under it, sent when the job's output
    # is written (scrubber.core.Recording); None: nothing recorded
    recording: str | None = None

    def reach(self, piece: Piece) -> int:
        """What besides the patient keeps day contexts apart: the file, or nothing (-1)."""
        return piece.file if self.scope == FILE else -1

    def patient_key(self, patient: bytes, reach: int) -> bytes:
        """The shuffle key of a patient's claims: one keyed digest, the same on every executor."""
        return hashlib.blake2b(b"%s|%d" % (patient, reach), key=self.secret,
                               digest_size=16).digest()


def _held(piece: Piece, options: ScrubOptions) -> Callable[[ClaimRecord], Hold | None] | None:
    """Why the implementation-guide check holds a claim of the piece (None without the check)."""
    if not options.conformance:
        return None
    from scrubber.ig import check as ig_check
    from scrubber.ig.gate import Gate

    with piece.open() as source:
        return Gate(ig_check(source, companion=options.companion)).held


# -- stage 1: where the piece is read -------------------------------------------------------

def index_pieces(pieces: Iterable[Piece], job: Job) -> Iterator[tuple]:
    """The day-context rows of each piece, as ``DayIndex.add`` would index them.

    Rows, with the claim's ordinal in the piece: ("count", piece id, claims);
    ("claim", patient key, (piece id, ordinal, billing NPI, payer, CLM01)) and
    ("line", patient key, (piece id, date, DayService fields)); ("twin",
    (reach, submission, billing NPI, CLM01), (piece id, ordinal, frequency)).
    Stage 2 groups them as (key, (kind, item)).
    """
    for piece in pieces:
        held = _held(piece, job.options)
        reach = job.reach(piece)
        ordinal = 0
        with piece.open() as source:
            for event in read(source):
                if not isinstance(event, ClaimRecord):
                    continue
                ordinal += 1
                if held is not None and held(event) is not None:
                    continue
                yield from _claim_rows(event, piece, ordinal, reach, job)
        yield ("count", piece.id, ordinal)


def _claim_rows(record: ClaimRecord, piece: Piece, ordinal: int, reach: int, job: Job
                ) -> Iterator[tuple]:
    """``DayIndex.add`` as rows: change one, change the other (the equivalence tests say so)."""
    claim = record.claim
    key = job.patient_key(patient_key(record), reach)
    npi, payer, claim_id = claim_key(record)
    submission = submission_id(record)
    yield ("claim", key, (piece.id, ordinal, npi, payer, claim_id))
    yield ("twin", (reach, submission, npi, claim_id), (piece.id, ordinal, claim.frequency))
    if claim.frequency == "8":  # a void adds no services, it cancels them
        return
    for index, day, line in line_rows(record):
        # a DayService's fields as a plain tuple: pickled several times on the way, and a
        # tuple pickles about five times faster than a slotted dataclass
        yield ("line", key, (piece.id, day, (
            SUBMISSION, claim.id, ordinal, index, line.number, line.procedure,
            line.modifiers, parse_decimal(line.units_text), submission, line.location)))


# -- stage 2: after one shuffle on the patient keys and twin keys ----------------------------

def context_rows(groups: Iterable[tuple[bytes | tuple, Iterable[tuple]]],
                 bases: dict[int, int], ledger: bool = False) -> Iterator[tuple[int, tuple]]:
    """The context each claim needs from its groups, as (piece id, row) for stage 3.

    ``bases`` turns a claim's ordinal in its piece into its ordinal in the run
    (or file). A patient key (bytes) groups a patient's claims and lines: each
    claim gets, per date of its lines, the lines ``DayIndex.services`` gives it,
    ("day", ordinal, date, services), when there are any; with ``ledger`` each
    piece gets the patient's claims for ``DayIndex.holds``, ("holds", patient
    key, (CLM01, payer) pairs). A twin key (a tuple) groups the claims of one
    CLM01, billing NPI and submission: each gets the ordinals of the earlier
    originals, ("twins", ordinal, ordinals).
    """
    for key, items in groups:
        if isinstance(key, bytes):
            yield from _patient_group(key, items, bases, ledger)
        else:
            yield from _twin_group(items, bases)


def _patient_group(key: bytes, items: Iterable[tuple], bases: dict[int, int], ledger: bool
                   ) -> Iterator[tuple[int, tuple]]:
    claims: dict[int, tuple] = {}  # ordinal in the run -> (piece, billing NPI, payer, CLM01)
    days: dict[date, list[tuple]] = defaultdict(list)
    for kind, item in items:
        if kind == "claim":
            piece, ordinal, *identity = item
            claims[bases[piece] + ordinal] = (piece, *identity)
        else:
            piece, day, fields = item
            ordinal = bases[piece] + fields[2]
            days[day].append((ordinal, fields[3], (*fields[:2], ordinal, *fields[3:]), piece))
    # DayIndex's ``gone``: a copy of a claim (billing NPI, payer, CLM01) that a later one
    # in the run supersedes is in no other claim's day context
    latest: dict[tuple, int] = {}
    for ordinal in sorted(claims):
        latest[claims[ordinal][1:]] = ordinal
    gone = {ordinal for ordinal, claim in claims.items() if latest[claim[1:]] != ordinal}
    for day, lines in days.items():
        lines.sort(key=lambda line: line[:2])
        for ordinal in sorted({line[0] for line in lines}):
            piece, _, payer, claim_id = claims[ordinal]
            # not its own lines, nor its other copies' (same CLM01 and payer), nor gone ones
            others = tuple(fields for other, _, fields, _ in lines
                           if other != ordinal and other not in gone
                           and claims[other][2:] != (payer, claim_id))
            if others:
                yield piece, ("day", ordinal, day, others)
    yield from _span_rows(claims, days, gone)
    if ledger:
        run_claims = frozenset((claim_id, payer) for _, _, payer, claim_id in claims.values())
        for piece in {claim[0] for claim in claims.values()}:
            yield piece, ("holds", key, run_claims)


def _span_rows(claims: dict[int, tuple], days: dict[date, list[tuple]], gone: set[int]
               ) -> Iterator[tuple[int, tuple]]:
    """What ``DayIndex.services_between`` gives each claim within SPAN_DAYS of its dates:
    ("span", ordinal, ((date, fields) ...)) in date order, when there is any."""
    reach = timedelta(days=SPAN_DAYS)
    own: dict[int, set[date]] = defaultdict(set)
    for day, lines in days.items():
        for line in lines:
            own[line[0]].add(day)
    for ordinal, dates in own.items():
        piece, _, payer, claim_id = claims[ordinal]
        near = sorted(day for day in days
                      if any(abs(day - mine) <= reach for mine in dates))
        found = tuple((day, fields) for day in near for other, _, fields, _ in days[day]
                      if other != ordinal and other not in gone
                      and claims[other][2:] != (payer, claim_id))
        if found:
            yield piece, ("span", ordinal, found)


def _twin_group(items: Iterable[tuple], bases: dict[int, int]) -> Iterator[tuple[int, tuple]]:
    claims = sorted((bases[piece] + ordinal, piece, frequency)
                    for _, (piece, ordinal, frequency) in items)
    originals: list[int] = []  # DayIndex.twins counts no replacement or void as a twin
    for ordinal, piece, frequency in claims:
        if originals:
            yield piece, ("twins", ordinal, tuple(originals))
        if frequency not in CHANGE_FREQUENCIES:
            originals.append(ordinal)


# -- stage 3: back where the piece is read ---------------------------------------------------

@dataclass(slots=True)
class PieceContext:
    """One piece's share of the run's day context, read by the engine's ``scrub_indexed``
    where ``scrub check`` reads ``DayIndex`` (the ``DayContextIndex`` protocol): each
    answer is the one ``DayIndex`` gives for the piece's claims (tests/test_spark_stages.py).
    """

    job: Job
    reach: int = -1  # the piece's (Job.reach)
    # (ordinal, date) -> the services DayIndex.services gives that claim on that date
    days: dict[tuple[int, date], tuple[DayService, ...]] = field(default_factory=dict)
    earlier: dict[int, tuple[int, ...]] = field(default_factory=dict)  # ordinal -> its twins
    # ordinal -> what DayIndex.services_between gives it within SPAN_DAYS of its dates
    spans: dict[int, tuple[tuple[date, DayService], ...]] = field(default_factory=dict)
    # patient key -> the (CLM01, payer) of that patient's claims in the run
    run_claims: dict[bytes, frozenset[tuple[str, str]]] = field(default_factory=dict)

    def services(self, key: bytes, day: date, ordinal: int, claim_id: str = "",
                 payer: str = "") -> tuple[DayService, ...]:
        return self.days.get((ordinal, day), ())

    def services_between(self, key: bytes, first: date, last: date, ordinal: int,
                         claim_id: str = "", payer: str = ""
                         ) -> tuple[tuple[date, DayService], ...]:
        return tuple(pair for pair in self.spans.get(ordinal, ()) if first <= pair[0] <= last)

    def holds(self, key: bytes, claim_id: str, payer: str) -> bool:
        claims = self.run_claims.get(self.job.patient_key(key, self.reach), frozenset())
        if payer:
            return (claim_id, payer) in claims
        return any(held == claim_id for held, _ in claims)  # a first ledger's line: no payer

    def twins(self, record: ClaimRecord, submission: str, ordinal: int) -> tuple[int, ...]:
        return self.earlier.get(ordinal, ())


def piece_contexts(rows: Iterable[tuple[int, tuple]], job: Job
                   ) -> dict[int, tuple[Piece, PieceContext]]:
    """Each piece of a partition with its share of the day context, by piece id.

    ``rows`` are (piece id, ("piece", Piece) | ("day", ...) | ("twins", ...) |
    ("holds", ...)): the pieces and what ``context_rows`` sent them.
    """
    pieces: dict[int, Piece] = {}
    contexts: dict[int, PieceContext] = {}
    for piece_id, item in rows:
        kind = item[0]
        if kind == "piece":
            pieces[piece_id] = item[1]
            continue
        context = contexts.get(piece_id)
        if context is None:
            context = contexts[piece_id] = PieceContext(job)
        if kind == "day":
            context.days[item[1], item[2]] = tuple(DayService(*fields) for fields in item[3])
        elif kind == "holds":
            context.run_claims[item[1]] = item[2]
        elif kind == "span":
            context.spans[item[1]] = tuple((day, DayService(*fields)) for day, fields in item[2])
        else:
            context.earlier[item[1]] = item[2]
    out = {}
    for piece_id, piece in pieces.items():
        context = contexts.get(piece_id) or PieceContext(job)
        context.reach = job.reach(piece)
        out[piece_id] = (piece, context)
    return out


def scrub_pieces(rows: Iterable[tuple[int, tuple]], job: Job, bases: dict[int, int],
                 file_bases: dict[int, int]) -> Iterator[tuple]:
    """Scrub the pieces of a partition with their context; yield the table rows."""
    pieces = piece_contexts(rows, job)
    if not pieces:
        return
    scrubber = Scrubber(job.options)
    recording = Recording(scrubber.ledger, job.recording) if job.recording else None
    try:
        for piece_id in sorted(pieces):
            piece, context = pieces.pop(piece_id)
            table = Rows(piece, file_bases[piece_id])
            tally = Tally()
            sinks: list[Sink] = [TallySink(tally), table]
            if job.parts is not None:
                outputs = AckFiles(Path(job.parts).joinpath)
                sinks += ack_sinks(outputs, scrubber.acks, ack_999=job.ack_999)
            with piece.open() as source:
                scrubber.run([(source, piece.name)], sinks, index=context,
                             first=bases[piece_id] + 1, recording=recording)
            yield from table.rows
            yield ("tally", piece.file, piece.path, tally.unreadable, tally.reason,
                   tally.claims, tally.accepted, tally.rejected, tally.warnings,
                   tally.envelope_errors,
                   resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    finally:
        scrubber.close()


class Rows(Sink):
    """A sink that turns a piece's scrubbed events into table rows (no names, ids or dates
    of birth: the tables identify a claim by file, position and CLM01)."""

    def __init__(self, piece: Piece, file_base: int):
        self.piece = piece
        self.file_base = file_base  # claims of the file before this piece
        self.rows: list[tuple] = []
        self._ordinal = 0
        self._transaction = ""

    def begin_file(self, name: str) -> None:
        self._ordinal = 0

    def event(self, event: Any) -> None:
        cls = event.__class__
        if cls is ScrubbedClaim:
            self._claim(event)
        elif cls is Problem:
            self._problem(event)
        elif cls is Transaction:
            self._transaction = event.control_number

    def _claim(self, scrubbed: ScrubbedClaim) -> None:
        piece, record = self.piece, scrubbed.record
        claim = record.claim
        self._ordinal += 1
        position = self.file_base + self._ordinal
        where = piece.in_file(claim.location)
        assert where is not None
        self.rows.append((
            "claims", piece.file, piece.path, position, claim.id, record.transaction.kind,
            record.billing_provider.npi if record.billing_provider else None,
            claim.frequency, claim.charge_text, scrubbed.status, scrubbed.held,
            len(scrubbed.findings), submission_id(record), self._transaction,
            where.segment, where.line, where.offset))
        for line in claim.lines:
            self.rows.append((
                "service_lines", piece.file, piece.path, position, claim.id, line.number,
                line.procedure, ":".join(line.modifiers), line.revenue_code or None,
                line.charge_text, line.units_text,
                line.date_from.isoformat() if line.date_from else None,
                line.date_to.isoformat() if line.date_to else None))
        for finding in scrubbed.findings:
            at = piece.in_file(finding.location)
            self.rows.append((
                "findings", piece.file, piece.path, position, claim.id, finding.rule,
                finding.severity.value, ":".join(finding.status) if finding.status else None,
                finding.line_number, at.segment if at else None, at.line if at else None,
                at.offset if at else None, finding.element, finding.message,
                "; ".join(finding.related)))

    def _problem(self, problem: Problem) -> None:
        piece = self.piece
        at = piece.in_file(problem.location)
        self.rows.append((
            "problems", piece.file, piece.path, piece.index, problem.code, problem.envelope,
            problem.control_number, problem.message, at.segment if at else None,
            at.line if at else None, at.offset if at else None, problem.fatal))
