"""What the Spark tasks run: plain Python over iterators, one call per partition.

Nothing here imports pyspark, so every stage runs (and is tested) without a
cluster; scrubber.spark.job only wires them together.

1. ``index_pieces`` (where a piece is read, no shuffle): the implementation-guide
   check and the reader in one reading, as ``scrub check``'s first pass; out
   come the rows ``DayIndex.add`` would index for every claim: the claim itself
   and each dated line under its *patient key*, the claim under its twin key
   (billing NPI, CLM01, submission); then the piece's IG report (with a ledger
   and no recording, each claim's ledger keys too) and its claim count with the
   claims the check held, which stage 2 leaves out.
2. ``context_rows`` (after one shuffle on those keys): each piece with a claim
   of a patient gets that patient's dated lines once (and, with a ledger, the
   run's claims of the patient, for ``holds``); each with a claim of a twin
   group, the group's originals. Not one copy per claim and date: that grew
   with the square of a patient-day's claims.
3. ``scrub_pieces`` (after a shuffle back to the piece): the piece is read again
   and its claims go through the engine's own ``scrub_indexed`` with that
   context (``PieceContext`` answers each claim as ``DayIndex`` would) and the
   stage-1 report, inside the core's Scrubber, so the verdicts,
   acknowledgements and recording are the core's, and the piece is not
   checked twice; the ledger is read a batch of claims at a time
   (``BatchedLedger``); out come table rows.

The patient key is a keyed hash (BLAKE2b with a per-run secret) of the
engine's patient key and the context's reach: shuffle files never hold a
name, member id or birth date, and a hash seen there cannot be looked up
outside the run.
"""

from __future__ import annotations

import hashlib
import resource
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scrubber.core import Recording, Scrubber
from scrubber.emit.sinks import AckFiles, Sink, ack_sinks
from scrubber.emit.summary import Tally
from scrubber.model import ClaimRecord, Problem, Transaction, read
from scrubber.model.claims import CHANGE_FREQUENCIES
from scrubber.model.values import parse_decimal
from scrubber.model.walker import SkippedClaims
from scrubber.options import ScrubOptions
from scrubber.passes import Indexed, TallySink
from scrubber.rules import ScrubbedClaim
from scrubber.rules.context import (
    SUBMISSION,
    ClaimKey,
    DayService,
    SentClaim,
    claim_key,
    submission_id,
)
from scrubber.rules.engine import line_rows, patient_key
from scrubber.spark.pieces import Piece, Reading

if TYPE_CHECKING:
    from scrubber.ig import IgReport

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


def _checked_events(piece: Piece, options: ScrubOptions, source: Any,
                    owns: Callable[[int], bool] | None = None
                    ) -> tuple[Iterator[Any], Callable[[], IgReport | None]]:
    """The piece's events, checked against the implementation guides in the same reading
    (as ``check_and_index`` reads a file), and a function that gives the check's report
    once they are through (None without the check); with ``owns``, of the sets it owns
    (the others' claims come as ``SkippedClaims``, counted only)."""
    if not options.conformance:
        return read(source, owns=owns), lambda: None
    from scrubber.ig.checker import CheckedRead

    checked = CheckedRead(source, companion=options.companion, owns=owns)
    return checked.events(), checked.report


# -- stage 1: where the piece is read -------------------------------------------------------

def index_pieces(pieces: Iterable[Piece | Reading], job: Job) -> Iterator[tuple]:
    """The day-context rows of each piece, as ``DayIndex.add`` would index them.

    Rows, with the claim's ordinal in the piece: ("claim", patient key, (piece
    id, ordinal, billing NPI, payer, CLM01)) and ("line", patient key, (piece id,
    date, DayService fields)); ("twin", (reach, submission, billing NPI, CLM01),
    (piece id, ordinal, frequency)). Stage 2 groups them as (key, (kind, item)).
    After a piece's rows: ("report", piece id, its IG report or None, claims,
    each claim's ledger keys or None), which stage 3 reads instead of checking
    the piece again (and to read the ledger in batches), and ("count",
    piece id, claims, held) for the driver, ``held`` being the (first, last) ordinals of
    the claims of the sets the check rejected: their rows are in the piece's,
    since the report is whole only at its end, and stage 2 leaves them out, as
    ``check_and_index`` takes them out of ``DayIndex``.

    A ``Reading`` of one share of a piece gives the rows of the share's claims
    (numbered in the whole piece) and its own "report" and "count" rows, the
    report ending with the share's number: stage 3 merges a piece's reports
    (``piece_contexts``), the driver its counts.
    """
    from scrubber.ig.gate import transaction_key

    store = _ledger_for_keys(job.options)
    try:
        for item in pieces:
            reading = item if isinstance(item, Reading) else Reading(item)
            piece, owns = reading.piece, reading.owns()
            reach = job.reach(piece)
            ordinal = 0
            spans: list[list] = []  # [transaction key, first ordinal, last ordinal]
            keys: list[frozenset[str]] = []  # each claim's ledger keys, with a ledger
            with piece.open() as source:
                events, report = _checked_events(piece, job.options, source, owns)
                for event in events:
                    if event.__class__ is not ClaimRecord:
                        if event.__class__ is SkippedClaims:
                            ordinal += event.count
                        continue
                    ordinal += 1
                    if owns is not None and not owns(event.transaction.location.offset):
                        continue
                    key = transaction_key(event)
                    if spans and spans[-1][0] == key:
                        spans[-1][2] = ordinal
                    else:
                        spans.append([key, ordinal, ordinal])
                    if store is not None:
                        keys.append(store.lock_keys(event))
                    yield from _claim_rows(event, piece, ordinal, reach, job)
                checked = report()
            held = () if checked is None else tuple(
                (low, high) for key, low, high in spans if not checked.is_accepted(*key))
            yield ("report", piece.id, checked, ordinal, tuple(keys) if store else None,
                   reading.part)
            yield ("count", piece.id, ordinal, held)
    finally:
        if store is not None:
            store.close()


def _ledger_for_keys(options: ScrubOptions) -> Any:
    """The ledger whose keys stage 1 ships for stage 3's batched reads (``BatchedLedger``):
    with a ledger and no recording (a recording reads a batch per locked decision)."""
    if options.ledger is None or options.record:
        return None
    from scrubber.ledger import open_store

    return open_store(options.ledger)


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

def shuffle_rows(rows: Iterable[tuple]) -> Iterator[tuple[Any, tuple]]:
    """Stage 1's rows as (key, (kind, item)) for the context shuffle; not the counts,
    which go to the driver. A piece's IG report goes too, under a key of its own
    (("report", piece id, share)), to come out of ``context_rows`` for stage 3: taken
    from stage 1's rows separately, it cost a second pass over every row of them."""
    for row in rows:
        kind = row[0]
        if kind == "report":
            yield ("report", row[1], row[-1]), ("report", row[1:])
        elif kind != "count":
            yield row[1], (kind, row[2])


def context_rows(groups: Iterable[tuple[bytes | tuple, Iterable[tuple]]],
                 bases: dict[int, int], ledger: bool = False,
                 held: dict[int, tuple[tuple[int, int], ...]] | None = None
                 ) -> Iterator[tuple[int, tuple]]:
    """The context each piece needs from its groups, as (piece id, row) for stage 3.

    ``bases`` turns a claim's ordinal in its piece into its ordinal in the run
    (or file); ``held`` gives, by piece, the ordinal spans of the claims the IG
    check held, which are left out. A patient key (bytes) groups a patient's
    claims and lines: each piece with a claim of the patient gets the group
    once, ("patient", key, days, claims), ``days`` mapping each date to its
    lines (CLM01, payer, DayService fields) in ordinal order, less those of a
    copy a later one supersedes, and ``claims`` (with ``ledger``: for
    ``DayIndex.holds``) the (CLM01, payer) pairs of the patient's claims, else
    None. Stage 3 answers each claim from it, as ``DayIndex`` does: one copy
    of the group per piece, not one per claim and date (which, for a patient
    with many claims on one day, grew with the square of their number). A twin
    key (a tuple) groups the claims of one CLM01, billing NPI and submission:
    each piece with one of them gets ("twins", ordinals of the originals,
    ordinals of its claims of the group). A piece's IG report (``shuffle_rows``)
    goes on to it as ("report", ...).
    """
    dropped = _held_claims(held or {})
    for key, items in groups:
        if isinstance(key, bytes):
            yield from _patient_group(key, items, bases, ledger, dropped)
        elif key[0] == "report":  # a piece's IG report (``shuffle_rows``), passed on
            for _, (piece, *report) in items:
                yield piece, ("report", *report)
        else:
            yield from _twin_group(items, bases, dropped)


def _held_claims(held: dict[int, tuple[tuple[int, int], ...]]
                 ) -> Callable[[int, int], bool]:
    """Whether claim ``ordinal`` of piece ``piece`` (its ordinal in the piece) was held."""
    if not any(held.values()):
        return lambda piece, ordinal: False

    def dropped(piece: int, ordinal: int) -> bool:
        return any(low <= ordinal <= high for low, high in held.get(piece, ()))
    return dropped


def _patient_group(key: bytes, items: Iterable[tuple], bases: dict[int, int], ledger: bool,
                   dropped: Callable[[int, int], bool]) -> Iterator[tuple[int, tuple]]:
    claims: dict[int, tuple] = {}  # ordinal in the run -> (piece, billing NPI, payer, CLM01)
    lines: list[tuple] = []
    for kind, item in items:
        if kind == "claim":
            piece, ordinal, *identity = item
            if not dropped(piece, ordinal):
                claims[bases[piece] + ordinal] = (piece, *identity)
        else:
            piece, day, fields = item
            if not dropped(piece, fields[2]):
                lines.append((day, bases[piece] + fields[2], fields))
    if not claims:
        return
    # DayIndex's ``gone``: a copy of a claim (billing NPI, payer, CLM01) that a later one
    # in the run supersedes is in no other claim's day context
    latest: dict[tuple, int] = {}
    for ordinal in sorted(claims):
        latest[claims[ordinal][1:]] = ordinal
    days: dict[date, list[tuple]] = defaultdict(list)
    for day, ordinal, fields in sorted(lines, key=lambda line: (line[1], line[2][3])):
        claim = claims[ordinal]
        if latest[claim[1:]] == ordinal:
            days[day].append((claim[2], (*fields[:2], ordinal, *fields[3:])))
    shipped = {day: tuple(found) for day, found in days.items()}
    run_claims = frozenset((claim_id, payer) for _, _, payer, claim_id in claims.values()) \
        if ledger else None
    for piece in sorted({claim[0] for claim in claims.values()}):
        yield piece, ("patient", key, shipped, run_claims)


def _twin_group(items: Iterable[tuple], bases: dict[int, int],
                dropped: Callable[[int, int], bool]) -> Iterator[tuple[int, tuple]]:
    claims = sorted((bases[piece] + ordinal, piece, frequency)
                    for _, (piece, ordinal, frequency) in items
                    if not dropped(piece, ordinal))
    # DayIndex.twins counts no replacement or void as a twin
    originals = tuple(ordinal for ordinal, _, frequency in claims
                      if frequency not in CHANGE_FREQUENCIES)
    if not originals or len(claims) < 2:
        return
    mine: dict[int, list[int]] = defaultdict(list)
    for ordinal, piece, _ in claims:
        if ordinal > originals[0]:
            mine[piece].append(ordinal)
    for piece, ordinals in sorted(mine.items()):
        yield piece, ("twins", originals, tuple(ordinals))


# -- stage 3: back where the piece is read ---------------------------------------------------

@dataclass(slots=True)
class PatientDays:
    """One patient's dated lines in the run, as stage 2 shipped them to a piece once."""

    # date -> (ordinal, CLM01, payer, service) of each line, in ordinal and line order
    days: dict[date, tuple[tuple[int, str, str, DayService], ...]]
    claims: frozenset[tuple[str, str]] | None  # (CLM01, payer) of its claims, with a ledger
    dates: list[date] = field(default_factory=list)  # ``days``' dates in order

    def on(self, day: date, ordinal: int, claim_id: str, payer: str
           ) -> tuple[DayService, ...]:
        """Lines of ``day`` not of claim ``ordinal`` nor of its copies (CLM01 and payer)."""
        return tuple(service for other, other_id, other_payer, service
                     in self.days.get(day, ())
                     if other != ordinal and (other_id != claim_id or other_payer != payer))


@dataclass(slots=True)
class PieceContext:
    """One piece's share of the run's day context, read by the engine's ``scrub_indexed``
    where ``scrub check`` reads ``DayIndex`` (the ``DayContextIndex`` protocol): each
    answer is the one ``DayIndex`` gives for the piece's claims (tests/test_spark_stages.py).
    """

    job: Job
    reach: int = -1  # the piece's (Job.reach)
    patients: dict[bytes, PatientDays] = field(default_factory=dict)  # by patient key
    # ordinal -> the originals of its twin group (its twins are those before it)
    earlier: dict[int, tuple[int, ...]] = field(default_factory=dict)
    # the piece's (IG report, claims, each claim's ledger keys) from stage 1: the report
    # None when the check did not run, the keys None without a ledger or with a recording
    checked: tuple[IgReport | None, int, tuple[frozenset[str], ...] | None] | None = None
    _keys: dict[bytes, bytes] = field(default_factory=dict)  # engine's key -> patient key

    def _patient(self, key: bytes) -> PatientDays | None:
        hashed = self._keys.get(key)
        if hashed is None:
            hashed = self._keys[key] = self.job.patient_key(key, self.reach)
        return self.patients.get(hashed)

    def services(self, key: bytes, day: date, ordinal: int, claim_id: str = "",
                 payer: str = "") -> tuple[DayService, ...]:
        patient = self._patient(key)
        return patient.on(day, ordinal, claim_id, payer) if patient is not None else ()

    def services_between(self, key: bytes, first: date, last: date, ordinal: int,
                         claim_id: str = "", payer: str = ""
                         ) -> tuple[tuple[date, DayService], ...]:
        patient = self._patient(key)
        if patient is None:
            return ()
        dates = patient.dates
        return tuple((day, service)
                     for day in dates[bisect_left(dates, first):bisect_right(dates, last)]
                     for service in patient.on(day, ordinal, claim_id, payer))

    def holds(self, key: bytes, claim_id: str, payer: str) -> bool:
        patient = self._patient(key)
        claims = patient.claims if patient is not None and patient.claims else frozenset()
        if payer:
            return (claim_id, payer) in claims
        return any(held == claim_id for held, _ in claims)  # a first ledger's line: no payer

    def twins(self, record: ClaimRecord, submission: str, ordinal: int) -> tuple[int, ...]:
        originals = self.earlier.get(ordinal, ())
        return originals[:bisect_left(originals, ordinal)]


def piece_contexts(rows: Iterable[tuple[int, tuple]], job: Job
                   ) -> dict[int, tuple[Piece, PieceContext]]:
    """Each piece of a partition with its share of the day context, by piece id.

    ``rows`` are (piece id, ("piece", Piece) | ("report", IgReport, claims) |
    ("patient", ...) | ("twins", ...)): the pieces, their stage-1 reports and
    what ``context_rows`` sent them.
    """
    pieces: dict[int, Piece] = {}
    contexts: dict[int, PieceContext] = {}
    parts: dict[int, list[tuple]] = {}  # piece id -> its stage-1 reports (one per reading)
    for piece_id, item in rows:
        kind = item[0]
        if kind == "piece":
            pieces[piece_id] = item[1]
            continue
        context = contexts.get(piece_id)
        if context is None:
            context = contexts[piece_id] = PieceContext(job)
        if kind == "patient":
            services = {}  # one DayService per line, shared by every claim that reads it
            for day, lines in item[2].items():
                services[day] = tuple((fields[2], fields[1], payer, DayService(*fields))
                                      for payer, fields in lines)
            context.patients[item[1]] = PatientDays(services, item[3], sorted(services))
        elif kind == "twins":
            for ordinal in item[2]:
                context.earlier[ordinal] = item[1]
        elif kind == "report":
            parts.setdefault(piece_id, []).append(item[1:])
    out = {}
    for piece_id, piece in pieces.items():
        context = contexts.get(piece_id) or PieceContext(job)
        context.reach = job.reach(piece)
        if piece_id in parts:
            context.checked = _whole_report(parts[piece_id])
        out[piece_id] = (piece, context)
    return out


def _whole_report(parts: list[tuple]) -> tuple[IgReport | None, int, Any]:
    """A piece's (IG report, claims, ledger keys) from its readings' reports: (report,
    claims, keys[, share number]) each, a share's report covering its own sets and its
    keys its own claims (``scrubber.ig.report.merge_reports``, as ``scrub check --jobs``)."""
    if len(parts) == 1:
        return parts[0][0], parts[0][1], parts[0][2]
    parts = sorted(parts, key=lambda part: part[3])
    reports = [part[0] for part in parts if part[0] is not None]
    report = None
    if reports:
        from scrubber.ig.report import merge_reports

        report = merge_reports(reports)
    keys = None if any(part[2] is None for part in parts) else \
        tuple(key for part in parts for key in part[2])
    return report, max(part[1] for part in parts), keys


class BatchedLedger:
    """The ledger as a piece's claims read it, a batch of claims per query, not one query
    per claim and date: a ``LedgerReader`` over ``store.reader`` for ``BATCH`` claims
    at a time, fetched when the first of them asks (the claims ask in order).

    ``keys`` are each claim's ``lock_keys`` in piece order (from stage 1). A read of
    a key no claim of the piece has goes to the store, as does ``lines_between``.
    """

    BATCH = 1000

    def __init__(self, store: Any, keys: tuple[frozenset[str], ...]):
        self.store, self.keys = store, keys
        self._first: dict[str, int] = {}  # key -> the first claim (index) that has it
        for index, claim in enumerate(keys):
            for key in claim:
                self._first.setdefault(key, index)
        self._view: Any = None
        self._batch = -1

    def _reader(self, key: str) -> Any:
        """The batch view that holds ``key``, fetched if need be; None: no claim has it."""
        index = self._first.get(key)
        if index is None:
            return None
        batch = index // self.BATCH
        if batch != self._batch:
            start = batch * self.BATCH
            self._view = self.store.reader(
                frozenset().union(*self.keys[start:start + self.BATCH]))
            self._batch = batch
        return self._view

    def lines_for(self, identity: tuple[str, str, str, str, str], service_date: date, *,
                  exclude_submission: str | None = None) -> Sequence[Any]:
        patient = self.store.patient_hash(identity).hex()
        view = self._reader(f"day\x1f{patient}\x1f{service_date.isoformat()}") or self.store
        return view.lines_for(identity, service_date, exclude_submission=exclude_submission)

    def sent_claim(self, key: ClaimKey) -> SentClaim | None:
        view = self._reader("claim\x1f" + "\x1f".join(key)) or self.store
        return view.sent_claim(key)

    def lines_between(self, identity: tuple[str, str, str, str, str], first: date, last: date,
                      *, exclude_submission: str | None = None) -> Sequence[Any]:
        return self.store.lines_between(identity, first, last,
                                        exclude_submission=exclude_submission)

    def close(self) -> None:
        """The store is the partition's: closed with it."""


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
            if context.checked is None:  # scrubbed unchecked, its held claims would pass
                raise RuntimeError(f"piece {piece.name} came to stage 3 without its IG report")
            report, claims, keys = context.checked
            run = scrubber
            if keys is not None and scrubber.ledger is not None and recording is None:
                # the same engine and acknowledgement numbers, the ledger read in batches
                run = Scrubber(job.options, ledger=BatchedLedger(scrubber.ledger, keys),
                               engine=scrubber.engine, acks=scrubber.acks)
            table = Rows(piece, file_bases[piece_id])
            tally = Tally()
            sinks: list[Sink] = [TallySink(tally), table]
            if job.parts is not None:
                outputs = AckFiles(Path(job.parts).joinpath)
                sinks += ack_sinks(outputs, scrubber.acks, ack_999=job.ack_999)
            first = bases[piece_id] + 1
            with piece.open() as source:  # checked in stage 1: read once more, to scrub
                run.run([(source, piece.name)], sinks, index=context, recording=recording,
                             checked=[Indexed(report, first, first + claims - 1)])
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
