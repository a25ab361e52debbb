"""The Spark job: the stages of scrubber.spark.stages over a cluster, tables and acks out.

What runs where (docs/scale.md):
- the driver plans the pieces (scrubber.spark.pieces) and, between the stages,
  collects one small thing: each piece's claim count (to number the claims as
  one process would) and the claims its IG check held;
- stage 1 reads each piece where it is scheduled: no shuffle; with fewer pieces than
  cores, a big file's piece is read by several tasks, a share of its transaction
  sets each (scrubber.spark.pieces.readings);
- one shuffle brings every claim and line of a patient (the patient key) and
  every claim of a twin key (CLM01, billing NPI, submission) together; a second
  brings the context (each patient's group once per piece) and the piece's IG
  report back to the piece, which stage 3 reads again and scrubs.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from scrubber.data import with_installed
from scrubber.emit.sinks import ACK_SUFFIXES
from scrubber.options import ScrubOptions
from scrubber.spark.pieces import PIECE_BYTES, Piece, plan, readings
from scrubber.spark.stages import (
    FILE,
    RUN,
    Job,
    context_rows,
    index_pieces,
    scrub_pieces,
    shuffle_rows,
)

# the tables' columns, in the order scrubber.spark.stages.Rows writes them
SCHEMAS = {
    "claims": "file INT, path STRING, position INT, claim_id STRING, kind STRING, "
              "billing_npi STRING, frequency STRING, charge STRING, status STRING, held BOOLEAN, "
              "findings INT, submission STRING, transaction STRING, segment INT, line INT, "
              "offset LONG",
    "service_lines": "file INT, path STRING, position INT, claim_id STRING, number INT, "
                     "procedure STRING, modifiers STRING, revenue_code STRING, charge STRING, "
                     "units STRING, date_from STRING, date_to STRING",
    "findings": "file INT, path STRING, position INT, claim_id STRING, rule STRING, "
                "severity STRING, status_code STRING, line_number INT, segment INT, line INT, "
                "offset LONG, element STRING, message STRING, related STRING",
    "problems": "file INT, path STRING, piece INT, code STRING, envelope STRING, "
                "control_number STRING, message STRING, segment INT, line INT, offset LONG, "
                "fatal BOOLEAN",
}


@dataclass(frozen=True)
class BatchResult:
    """What a Spark scrub came to: the four tables and the run's counts.

    The DataFrames are backed by the persisted result of the scrub: reading
    them does not scrub again. ``acks`` lists the acknowledgement files written.
    """

    tables: dict[str, Any]  # name -> pyspark DataFrame
    files: int
    claims: int
    accepted: int
    rejected: int
    warnings: int
    envelope_problems: int
    not_scrubbed: list[tuple[str, str]] = field(default_factory=list)  # (path, why)
    acks: list[str] = field(default_factory=list)
    worker_peak_kib: int = 0  # the largest peak RSS a Python worker reported
    seconds: float = 0.0  # the job's wall time, from planning to the acknowledgements joined

    @property
    def unreadable(self) -> bool:
        return bool(self.not_scrubbed)

    def failed(self, fail_on: str = "reject") -> bool:
        """Whether a payer would turn something away (with "warn": or warn about it)."""
        return bool(self.rejected or self.envelope_problems
                    or (fail_on == "warn" and self.warnings))

    def summary(self) -> str:
        """One line for a person: files, claims and what became of them."""
        return (f"{self.files} files, {self.claims} claims: {self.accepted} accepted, "
                f"{self.rejected} rejected, {self.warnings} with warnings; "
                f"{self.envelope_problems} envelope problems, "
                f"{len(self.not_scrubbed)} files not scrubbed")

    def as_json(self) -> str:
        """The counts as one JSON object (no claim ids, names or dates)."""
        return json.dumps({"files": self.files, "claims": self.claims,
                           "accepted": self.accepted, "rejected": self.rejected,
                           "warnings": self.warnings,
                           "envelope_problems": self.envelope_problems,
                           "not_scrubbed": [path for path, _ in self.not_scrubbed],
                           "acks": len(self.acks), "worker_peak_kib": self.worker_peak_kib,
                           "seconds": round(self.seconds, 2)})


def scrub_batch(spark: Any, paths: Sequence[str] | Any, *, options: ScrubOptions | None = None,
                acks: str | os.PathLike | None = None, ack_999: bool = True,
                scope: str = RUN, piece_bytes: int = PIECE_BYTES,
                partitions: int | None = None, secret: bytes | None = None,
                recording: str | None = None) -> BatchResult:
    """Scrub ``paths`` on ``spark`` (a SparkSession) with the verdicts ``scrub check`` gives.

    ``scope`` RUN puts every file of the run in one day context (as if the files
    were one submission stream: the cross-file conflicts of a clearinghouse's
    day); FILE keeps each file's context to itself, as ``scrub check FILE...``
    does. ``acks`` is a folder for each input's 277CA, TA1 and (with ``ack_999``)
    999; on a cluster it must be a filesystem every executor writes to.
    ``secret`` keys the day-key hash (default: fresh for the run). With
    ``options.record``, the executors hold the accepted claims under
    ``recording`` (a ``scrubber.core.Recording`` the caller began, and commits
    once the tables are written); nothing is recorded without one.

    ``paths`` may also be a DataFrame of file contents, with ``path`` and
    ``content`` columns (as ``spark.read.format("binaryFile")`` gives): each row
    is then one piece, held whole by its task, so give large files as paths.
    """
    from pyspark import StorageLevel

    if scope not in (RUN, FILE):
        raise ValueError(f"scope must be {RUN!r} or {FILE!r}, not {scope!r}")
    started = time.perf_counter()
    # the installed reference data is opened here, on the driver: executors on other hosts
    # have no data folder, and every task must judge by the same releases
    options = with_installed(options or ScrubOptions())
    sc = spark.sparkContext
    frame: Any = None if isinstance(paths, (list, tuple)) else paths
    if frame is not None and hasattr(frame, "rdd"):  # a DataFrame of file contents
        # the driver lists the paths only (the content column is not read for it)
        names = sorted(row[0] for row in frame.select("path").collect())
        pieces = [Piece(number, number, name, 0) for number, name in enumerate(names)]
        numbers = sc.broadcast({name: number for number, name in enumerate(names)})
    else:
        frame = None
        pieces = plan(list(paths), piece_bytes)
    parts = None
    if acks is not None:
        Path(acks).mkdir(mode=0o700, parents=True, exist_ok=True)  # acks name patients
        parts = Path(acks) / ".parts"
        shutil.rmtree(parts, ignore_errors=True)  # an interrupted run's parts are not ours
        parts.mkdir(mode=0o700)
    job = Job(options, secret or os.urandom(32), scope, ack_999,
              str(parts) if parts is not None else None, recording)
    n = partitions or max(1, min(len(pieces), sc.defaultParallelism * 4))
    # the context shuffle's reduce side (stage 2) has work of its own however few the
    # pieces: one big file, one piece, would otherwise group every patient in one task
    # while the other cores wait
    wide = partitions or max(n, sc.defaultParallelism)
    keep = StorageLevel.MEMORY_AND_DISK

    if frame is not None:
        by_piece = frame.select("path", "content").rdd.map(
            lambda row: _content_piece(numbers.value[row[0]], row[0], row[1])
        ).partitionBy(n, _piece_partition)
    else:
        by_piece = sc.parallelize([(piece.id, piece) for piece in pieces], n)
    if frame is not None:
        read_by = by_piece.values()
    else:  # one big file is read by several tasks, a share of its sets each (stage 1)
        tasks = readings(pieces, sc.defaultParallelism)
        read_by = sc.parallelize(tasks, max(1, min(len(tasks), sc.defaultParallelism * 4)))
    indexed = read_by.mapPartitions(lambda it: index_pieces(it, job)).persist(keep)
    found = indexed.filter(lambda row: row[0] == "count").map(lambda row: row[1:]).collect()
    counts, held = piece_counts(found)
    bases, file_bases = ordinal_bases(pieces, counts, scope)
    shared = sc.broadcast((bases, file_bases, held))
    ledger = options.ledger is not None

    # each piece's IG report goes to stage 3 with its context, which does not check it again
    grouped = (indexed.mapPartitions(shuffle_rows).groupByKey(wide)
               .mapPartitions(lambda groups: context_rows(groups, shared.value[0], ledger,
                                                          shared.value[2])))
    context = (by_piece.mapValues(lambda piece: ("piece", piece)).union(grouped)
               .partitionBy(n, _piece_partition))
    result = context.mapPartitions(
        lambda rows: scrub_pieces(rows, job, *shared.value[:2])).persist(keep)
    # the tables' DataFrames are planned (driver work only, no job) while the scrub runs:
    # the scrub's last stage has a task per piece, so with few pieces cores are free
    with ThreadPoolExecutor(1, thread_name_prefix="scrub-frames") as pool:
        framing = pool.submit(_frames, spark, result)
        tallies = result.filter(lambda row: row[0] == "tally").collect()
        tables = framing.result()
    indexed.unpersist()
    written = assemble_acks(pieces, parts, Path(acks)) if parts is not None and acks else []
    return replace(_result(tables, pieces, tallies, written),
                   seconds=time.perf_counter() - started)


def _frames(spark: Any, result: Any) -> dict[str, Any]:
    """The four tables as DataFrames over the persisted scrub ``result`` (no job runs)."""
    # rows made by stages.Rows to SCHEMAS' columns (tests/test_spark.py reads them back):
    # checking each value's type again in Python cost each table job a pass over its rows
    return {name: spark.createDataFrame(
        result.filter(lambda row, name=name: row[0] == name).map(lambda row: row[1:]), schema,
        verifySchema=False)
        for name, schema in SCHEMAS.items()}


def _content_piece(number: int, path: str, content: bytes) -> tuple[int, Piece]:
    return number, Piece(number, number, path, 0, data=bytes(content))


def _piece_partition(piece_id: int) -> int:
    return piece_id


def piece_counts(found: Sequence[tuple[int, int, tuple[tuple[int, int], ...]]]
                 ) -> tuple[dict[int, int], dict[int, tuple[tuple[int, int], ...]]]:
    """Each piece's claims, and the (first, last) ordinals of those the IG check held, from
    stage 1's ("count", piece, claims, held) rows: a piece read in shares has one row
    per share, each counting every claim of the piece and holding its own sets'."""
    counts: dict[int, int] = {}
    held: dict[int, tuple[tuple[int, int], ...]] = {}
    for piece, claims, spans in found:
        counts[piece] = max(counts.get(piece, 0), claims)
        if spans:
            held[piece] = tuple(sorted((*held.get(piece, ()), *spans)))
    return counts, held


def ordinal_bases(pieces: Sequence[Piece], counts: dict[int, int], scope: str
                  ) -> tuple[dict[int, int], dict[int, int]]:
    """How many claims come before each piece: in the day context's reach, and in its file.

    A claim's ordinal is its piece's base plus its place in the piece, so it
    is the number one process reading the same input in order would give it.
    """
    bases: dict[int, int] = {}
    file_bases: dict[int, int] = {}
    run = in_file = 0
    last_file = None
    for piece in pieces:
        if piece.file != last_file:
            in_file, last_file = 0, piece.file
        bases[piece.id] = run if scope == RUN else in_file
        file_bases[piece.id] = in_file
        run += counts.get(piece.id, 0)
        in_file += counts.get(piece.id, 0)
    return bases, file_bases


def assemble_acks(pieces: Sequence[Piece], parts: Path, folder: Path) -> list[str]:
    """Join each input's acknowledgement parts, in piece order, into one file per input.

    Names follow ``scrub check --277ca`` (scrubber.emit.sinks.ack_stems):
    ``<input name>.277ca.x12`` and so on, inputs that share a file name told
    apart by their folders. Each file is whole or absent; the folder is the
    run's own, so acknowledgements an earlier run left there are removed.
    """
    from scrubber.emit.sinks import ack_stems
    from scrubber.files import open_private, output_error

    firsts = [piece for piece in pieces if piece.index == 0]
    stems = ack_stems([piece.path for piece in firsts], folder)
    written = []
    for piece in firsts:
        ones = [p for p in pieces if p.file == piece.file]
        for suffix in ACK_SUFFIXES:
            found = [parts / f"{p.name}.{suffix}.x12" for p in ones]
            found = [f for f in found if f.exists()]
            if not found:
                continue
            target = f"{stems[piece.path]}.{suffix}.x12"
            with open_private(target, "wb") as out:
                for part in found:
                    with open(part, "rb") as handle:
                        shutil.copyfileobj(handle, out, 1 << 20)
            written.append(target)
    shutil.rmtree(parts, ignore_errors=True)
    kept = {os.path.basename(name) for name in written}
    for entry in os.scandir(folder):
        if entry.name.endswith(tuple(f".{suffix}.x12" for suffix in ACK_SUFFIXES)) \
                and entry.name not in kept and entry.is_file(follow_symlinks=False):
            try:
                os.unlink(entry.path)
            except OSError as exc:
                raise output_error(exc, entry.path) from None
    return written


def _result(tables: dict[str, Any], pieces: Sequence[Piece], tallies: list[tuple],
            acks: list[str]) -> BatchResult:
    totals = [0] * 5
    unreadable: dict[int, tuple[str, str]] = {}
    peak = 0
    for _, file, path, bad, reason, *counts, rss in tallies:
        totals = [a + b for a, b in zip(totals, counts, strict=True)]
        peak = max(peak, rss)
        if bad:
            unreadable.setdefault(file, (path, reason))
    claims, accepted, rejected, warnings, envelope = totals
    return BatchResult(tables, len({piece.file for piece in pieces}), claims, accepted,
                       rejected, warnings, envelope,
                       [unreadable[file] for file in sorted(unreadable)], acks, peak)
