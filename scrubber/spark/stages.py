"""What the Spark tasks run: plain Python over iterators, one call per partition.

Nothing here imports pyspark, so every stage runs (and is tested) without a
cluster; scrubber.spark.job only wires them together.

1. ``index_pieces`` (where a piece is read, no shuffle): the implementation-guide
   check and the reader, as ``scrub check`` runs them; out come the day-context
   rows of every claim the check does not hold (one per dated line, keyed by the
   *day key*), its twin key (billing NPI, CLM01, submission) and the piece's
   claim count.
2. ``context_rows`` (after one shuffle on those keys): each claim gets the lines
   of other claims on its patient's day, and its earlier twins.
3. ``scrub_pieces`` (after a shuffle back to the piece): the piece is read again
   and its claims go through the engine's own ``scrub_indexed`` with that
   context, inside the core's Scrubber, so the verdicts, acknowledgements and
   recording are the core's; out come table rows.

The day key is a keyed hash (BLAKE2b with a per-run secret) of the engine's
patient key and the date: shuffle files never hold a name, member id or birth
date, and a hash seen there cannot be looked up outside the run.
"""

from __future__ import annotations

import hashlib
import resource
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from scrubber.core import Scrubber, ScrubOptions
from scrubber.emit.sinks import AckFiles, FileEnd, ack_sinks
from scrubber.model import ClaimRecord, Event, Problem, Transaction, read
from scrubber.rules import ScrubbedClaim
from scrubber.rules.context import SUBMISSION, DayService, service_date, submission_id
from scrubber.rules.engine import patient_key, scrub_indexed
from scrubber.spark.pieces import Piece

RUN, FILE = "run", "file"  # the reach of the day context: every file of the run, or each file
_CHANGES = ("7", "8")  # CLM05-3: replacement, void


@dataclass(frozen=True, slots=True)
class Job:
    """What every task of one run needs; shipped to the executors with the closures."""

    options: ScrubOptions
    secret: bytes  # the day key's hash key, made fresh for each run
    scope: str = RUN
    ack_999: bool = True
    parts: str | None = None  # folder of the per-piece acknowledgements; None: none written

    def hashed(self, key: bytes) -> bytes:
        return hashlib.blake2b(key, key=self.secret, digest_size=16).digest()

    def reach(self, piece: Piece) -> int:
        """What besides the key keeps day contexts apart: the file, or nothing (-1)."""
        return piece.file if self.scope == FILE else -1

    def day_key(self, patient: bytes, day: date, reach: int) -> bytes:
        """The shuffle key of a patient's day: one keyed digest, the same on every executor."""
        return self.hashed(b"%s|%s|%d" % (patient, day.isoformat().encode(), reach))


def _held(piece: Piece, options: ScrubOptions) -> Callable[[ClaimRecord], str | None] | None:
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

    Rows: ("count", piece id, claims), ("line", day key, (date, DayService, piece
    id)) with the claim's ordinal in the piece, ("claim", twin key, (piece id,
    ordinal)) and ("changed", (reach, patient key, CLM01)) for a replacement or void.
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
    claim = record.claim
    engine_key = patient_key(record)
    key = job.hashed(engine_key)
    submission = submission_id(record)
    if claim.frequency in _CHANGES:
        yield ("changed", (reach, key, claim.id))
    else:
        npi = record.billing_provider.npi if record.billing_provider else ""
        yield ("claim", (reach, submission, npi, claim.id), (piece.id, ordinal))
    if claim.frequency == "8":
        return
    for index, line in enumerate(claim.lines):
        day = service_date(record, line)
        if day is None:
            continue
        # a DayService's fields as a plain tuple: pickled several times on the way, and a
        # tuple pickles about five times faster than a slotted dataclass
        yield ("line", job.day_key(engine_key, day, reach), (day, (
            SUBMISSION, claim.id, ordinal, index, line.number, line.procedure,
            line.modifiers, line.units, submission, line.service_location or line.location),
            piece.id))


# -- stage 2: after one shuffle on the day keys and twin keys --------------------------------

def context_rows(groups: Iterable[tuple[bytes | tuple, Iterable[tuple]]],
                 bases: dict[int, int]) -> Iterator[tuple[int, tuple]]:
    """The context each claim needs from its groups, as (piece id, row) for stage 3.

    A day key (bytes) groups a patient's day: each claim of it gets the other
    claims' lines, ("day", ordinal, date, services); a claim alone on its day
    gets no row (its own lines are its context). A twin key (a tuple) groups
    the claims of one CLM01, billing NPI and submission: each gets the
    ordinals of the earlier ones, ("twins", ordinal, ordinals). ``bases`` turns
    a claim's ordinal in its piece into its ordinal in the run (or file).
    """
    for key, items in groups:
        if isinstance(key, bytes):
            yield from _day_group(items, bases)
        else:
            yield from _twin_group(items, bases)


def _day_group(items: Iterable[tuple], bases: dict[int, int]) -> Iterator[tuple[int, tuple]]:
    rows = list(items)
    day = rows[0][0]
    # (ordinal in the run, line index, the service's fields with that ordinal, piece)
    lines = sorted((bases[piece] + fields[2], fields[3],
                    (*fields[:2], bases[piece] + fields[2], *fields[3:]), piece)
                   for _, fields, piece in rows)
    claims = {(ordinal, piece) for ordinal, _, _, piece in lines}
    if len(claims) < 2:
        return
    for ordinal, piece in claims:
        others = tuple(fields for other, _, fields, _ in lines if other != ordinal)
        yield piece, ("day", ordinal, day, others)


def _twin_group(items: Iterable[tuple], bases: dict[int, int]) -> Iterator[tuple[int, tuple]]:
    ordinals = sorted((bases[piece] + ordinal, piece) for piece, ordinal in items)
    for position, (ordinal, piece) in enumerate(ordinals):
        if position:
            yield piece, ("twins", ordinal, tuple(o for o, _ in ordinals[:position]))


# -- stage 3: back where the piece is read ---------------------------------------------------

@dataclass(slots=True)
class _PieceContext:
    """One piece's share of the run's day context, read by the engine's ``scrub_indexed``."""

    job: Job
    changes: frozenset[tuple[int, bytes, str]]  # the replacements and voids of the run
    reach: int
    days: dict[tuple[int, date], tuple[DayService, ...]] = field(default_factory=dict)
    earlier: dict[int, tuple[int, ...]] = field(default_factory=dict)

    def services(self, key: bytes, day: date, ordinal: int) -> tuple[DayService, ...]:
        return self.days.get((ordinal, day), ())

    def changed(self, key: bytes, claim_id: str) -> bool:
        return (self.reach, self.job.hashed(key), claim_id) in self.changes

    def twins(self, record: ClaimRecord, submission: str, ordinal: int) -> tuple[int, ...]:
        return self.earlier.get(ordinal, ())


class _PieceScrubber(Scrubber):
    """The core's Scrubber with the day context the shuffle brought in, for one piece."""

    context: _PieceContext
    base: int

    def scrub_claims(self, open_events: Callable[[], Iterator[Event]], *,
                     held: Callable[[ClaimRecord], str | None] | None = None
                     ) -> Iterator[Event | ScrubbedClaim]:
        return scrub_indexed(open_events(), self.engine, self.context, self.ledger, held,
                             first=self.base + 1)


def scrub_pieces(rows: Iterable[tuple[int, tuple]], job: Job, bases: dict[int, int],
                 file_bases: dict[int, int], changes: frozenset[tuple[int, bytes, str]]
                 ) -> Iterator[tuple]:
    """Scrub the pieces of a partition with their context; yield the table rows.

    ``rows`` are (piece id, ("piece", Piece) | ("day", ...) | ("twins", ...)).
    """
    pieces: dict[int, Piece] = {}
    days: dict[int, dict[tuple[int, date], tuple[DayService, ...]]] = defaultdict(dict)
    earlier: dict[int, dict[int, tuple[int, ...]]] = defaultdict(dict)
    for piece_id, item in rows:
        if item[0] == "piece":
            pieces[piece_id] = item[1]
        elif item[0] == "day":
            days[piece_id][item[1], item[2]] = tuple(DayService(*fields) for fields in item[3])
        else:
            earlier[piece_id][item[1]] = item[2]
    if not pieces:
        return
    scrubber = _PieceScrubber(job.options)
    try:
        for piece_id in sorted(pieces):
            piece = pieces[piece_id]
            scrubber.context = _PieceContext(job, changes, job.reach(piece),
                                             days.pop(piece_id, {}), earlier.pop(piece_id, {}))
            scrubber.base = bases[piece_id]
            table = Rows(piece, file_bases[piece_id])
            sinks: list = [table]
            if job.parts is not None:
                outputs = AckFiles(Path(job.parts).joinpath)
                sinks += ack_sinks(outputs, scrubber.acks, ack_999=job.ack_999)
            with piece.open() as source:
                tally = scrubber.scrub_into(source, piece.name, sinks)
            yield from table.rows
            yield ("tally", piece.file, piece.path, tally.unreadable, tally.reason,
                   tally.claims, tally.accepted, tally.rejected, tally.warnings,
                   tally.envelope_errors,
                   resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    finally:
        scrubber.close()


class Rows:
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

    def end_file(self, end: FileEnd) -> None:
        pass

    def close(self) -> None:
        pass
