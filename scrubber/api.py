"""The library entry points that every front end (CLI, intake code, watcher) calls."""

from __future__ import annotations

import itertools
import os
import pickle
import shutil
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterator, TextIO

from scrubber.emit.ack277 import Ack277Writer
from scrubber.emit.ack999 import write_999
from scrubber.emit.json_report import JsonWriter
from scrubber.emit.ta1 import envelope_events, write_ta1
from scrubber.emit.summary import HtmlSummary, Tally, TextSummary
from scrubber.files import open_private
from scrubber.ig import IgReport
from scrubber.ig import check as ig_check
from scrubber.ig.gate import Gate
from scrubber.model import Event, Problem, Source, read
from scrubber.ncci import NcciTables
from scrubber.rules import Profile, ScrubbedClaim, load_profile
from scrubber.rules import scrub_events as rules_scrub
from scrubber.rules.context import submission_id
from scrubber.rules.engine import LedgerReader


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    """What a run over several files came to, for the exit code."""

    files: int
    unreadable: bool  # some input could not be read at all
    rejected: bool  # some envelope or claim would be rejected
    warned: bool = False  # some claim carries a warning


@contextmanager
def _passes(source: Source) -> Iterator[Callable[[], Source]]:
    """A function that hands out ``source`` afresh for each pass of the scrub.

    A path or bytes is simply read again; a seekable stream is rewound; a
    one-shot stream (standard input) is spooled to an owner-only temporary file.
    """
    if not hasattr(source, "read"):
        yield lambda: source
        return
    if getattr(source, "seekable", lambda: False)():
        start = source.tell()

        def rewound() -> Source:
            source.seek(start)
            return source

        yield rewound
        return
    fd, name = tempfile.mkstemp(prefix="scrub-", suffix=".x12")  # mkstemp: mode 0600
    try:
        with os.fdopen(fd, "wb") as spool:
            shutil.copyfileobj(source, spool, 1 << 20)
        yield lambda: name
    finally:
        os.unlink(name)


def scrub_events(source: Source, *, profile: Profile | None = None,
                 ledger: LedgerReader | None = None, conformance: bool = True,
                 companion: str | None = None, ig_reports: list[IgReport] | None = None,
                 ncci: NcciTables | None = None) -> Iterator[Event | ScrubbedClaim]:
    """The scrubbed event stream of one source: model events, claims as ScrubbedClaim.

    ``source`` is a path, bytes or a binary stream. With ``conformance`` (the
    default) the implementation-guide check runs first, as a payer's front end
    does: its errors come out as transaction-set problems, and the claims of a
    rejected set are held (``ScrubbedClaim.held``) instead of scrubbed. Its
    report is appended to ``ig_reports`` for a 999; ``companion`` names a payer
    companion guide (x12_maps/ig-overrides.xml). ``ncci`` holds the user's CMS
    NCCI tables (``scrubber.ncci.load_tables``) for the ``ncci-ptp`` and ``mue``
    rules. The source is read up to three times (see ``_passes``).
    """
    profile = profile or load_profile()
    with _passes(source) as again:
        gate = None
        if conformance:
            report = ig_check(again(), companion=companion)
            if ig_reports is not None:
                ig_reports.append(report)
            gate = Gate(report)

        def events() -> Iterator[Event]:
            return gate.annotate(read(again())) if gate else read(again())

        yield from rules_scrub(events, profile=profile, ledger=ledger, ncci=ncci,
                               held=gate.held if gate else None)


def check_files(paths: list[str], out: TextIO, *, fmt: str = "text", show_phi: bool = False,
                profile: Profile | None = None, ledger=None, color: bool = False,
                ack_dir: str | None = None, ack: Ack277Writer | None = None,
                verbose: bool = False, conformance: bool = True,
                companion: str | None = None, ack_999: bool = False,
                ncci: NcciTables | None = None,
                progress: Callable[[str, int], None] | None = None) -> CheckOutcome:
    """Scrub each path ("-" is standard input) and write one report to ``out``.

    With ``ack_dir``, a 277CA per input is written there as ``<input>.277ca.x12``
    (owner-only: it names patients), a TA1 when an interchange envelope is
    broken and, with ``ack_999``, the 999 of the implementation-guide check.
    Accepted claims are recorded in ``ledger`` (per submission) once their file
    is scrubbed, so that a later submission is checked against them.
    ``progress(path, byte offset)`` is called as claims are scrubbed.
    """
    writer = _writer(fmt, out, show_phi=show_phi, color=color, verbose=verbose)
    ack = ack or Ack277Writer()
    unreadable = rejected = warned = False
    for path in paths:
        name = "<stdin>" if path == "-" else path
        stem = None
        if ack_dir is not None:
            stem = Path(ack_dir) / (Path(name).name if path != "-" else "stdin")
        counts, _ = _scrub_file(sys.stdin.buffer if path == "-" else path, name, [writer],
                                stem=stem, ack=ack, profile=profile, ledger=ledger,
                                conformance=conformance, companion=companion,
                                ack_999=ack_999, ncci=ncci, progress=progress)
        unreadable |= counts.unreadable
        rejected |= bool(counts.rejected or counts.envelope_errors)
        warned |= bool(counts.warnings)
    writer.close()
    return CheckOutcome(len(paths), unreadable, rejected, warned)


def _scrub_file(source: Source, name: str, writers: list, *, stem: Path | None,
                ack: Ack277Writer, profile: Profile | None, ledger, conformance: bool,
                companion: str | None, ack_999: bool, ncci: NcciTables | None = None,
                progress: Callable[[str, int], None] | None = None
                ) -> tuple[Tally, list[str]]:
    """Scrub one source in one stream: every report writer and the 277CA fed as it goes.

    Nothing of the file is held: claims flow through the writers, the ledger
    rows go to an on-disk spool, and only envelope events (for the TA1) and the
    IG report (errors found, for the 999) are kept. With ``stem``, writes
    ``stem``.277ca/.ta1/.999.x12 where there is something to say; returns the
    counts and the files written.
    """
    for writer in writers:
        writer.begin_file(name)
    counts = Tally()
    pending = _Spool() if ledger is not None else None  # ledger rows, on disk
    envelopes: list = []  # what the TA1 needs: interchanges and their broken trailers
    ig_reports: list[IgReport] = []
    written: list[str] = []

    def reported(events: Iterator) -> Iterator:
        for event in events:
            counts.add(event)
            if envelope_events(event):
                envelopes.append(event)
            if event.__class__ is ScrubbedClaim:
                if pending is not None:
                    pending.add(submission_id(event.record), ledger.prepare(event))
                if progress is not None:
                    progress(name, event.record.claim.location.offset)
            for writer in writers:
                writer.event(event)
            yield event

    stream = reported(scrub_events(source, profile=profile, ledger=ledger,
                                   conformance=conformance, companion=companion,
                                   ig_reports=ig_reports, ncci=ncci))
    if stem is None:
        for _ in stream:
            pass
    else:
        def answer(suffix: str, write: Callable[[BinaryIO], object]) -> None:
            target = f"{stem}.{suffix}.x12"
            with open_private(target, "wb") as handle:
                write(handle)
                empty = handle.tell() == 0
            if empty:  # nothing to acknowledge in this form
                os.unlink(target)
            else:
                written.append(target)

        answer("277ca", lambda handle: ack.write(stream, handle))
        if any(e.__class__ is Problem for e in envelopes):
            answer("ta1", lambda handle: write_ta1(
                envelopes, handle, sender_id=ack.sender_id, sender_qualifier=ack.sender_qualifier,
                clock=ack.clock, control_numbers=ack.control_numbers))
        if ack_999 and ig_reports:
            answer("999", lambda handle: write_999(
                ig_reports[0], handle, sender_id=ack.sender_id,
                sender_qualifier=ack.sender_qualifier, clock=ack.clock,
                control_numbers=ack.control_numbers))
    for writer in writers:
        writer.end_file(counts.summary())
    if pending is not None:
        with pending:
            for submission, claims in pending.runs():
                ledger.record(submission, claims)
    return counts, written


class _Spool:
    """Ledger rows of a file's claims, kept in an unlinked temporary file, not in memory.

    Claims of one submission (interchange) arrive together; ``runs`` hands them
    back as (submission, claims) in that order, reading as it goes.
    """

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile()  # owner-only and already unlinked

    def add(self, submission: str, claim: object) -> None:
        pickle.dump((submission, claim), self._file, protocol=pickle.HIGHEST_PROTOCOL)

    def _items(self) -> Iterator[tuple[str, object]]:
        self._file.seek(0)
        while True:
            try:
                yield pickle.load(self._file)
            except EOFError:
                return

    def runs(self) -> Iterator[tuple[str, Iterator]]:
        for submission, group in itertools.groupby(self._items(), key=lambda item: item[0]):
            yield submission, (claim for _, claim in group)

    def __enter__(self) -> "_Spool":
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()


def _writer(fmt: str, out: TextIO, *, show_phi: bool, color: bool, verbose: bool = False):
    if fmt == "json":
        return JsonWriter(out)
    if fmt == "html":
        return HtmlSummary(out, show_phi=show_phi)
    return TextSummary(out, show_phi=show_phi, color=color, verbose=verbose)


@dataclass(frozen=True, slots=True)
class FileOutcome:
    """What scrubbing one file came to, for a front end that files it away."""

    path: str
    claims: int
    accepted: int
    rejected: int
    unreadable: bool  # nothing could be read: the file belongs in failed/
    envelope_errors: int  # broken envelopes (TA1/999 material)
    reports: tuple[str, ...]  # files written under the reports directory
    reason: str = ""  # why it was unreadable, in words

    @property
    def verdict(self) -> str:
        """"failed", "rejected" or "accepted": the folder the input belongs in."""
        if self.unreadable:
            return "failed"
        if self.rejected or self.envelope_errors:
            return "rejected"
        return "accepted"


def process_file(path: str, reports_dir: str, *, stem: str | None = None,
                 profile: Profile | None = None, ledger=None, ack: Ack277Writer | None = None,
                 conformance: bool = True, companion: str | None = None,
                 ncci: NcciTables | None = None) -> FileOutcome:
    """Scrub one file and write its reports into ``reports_dir``: a front end's unit of work.

    Writes ``stem``.json, ``stem``.txt and ``stem``.html (the summaries; the
    HTML page keeps the claims with findings until the end) and, when there is
    anything to acknowledge, ``stem``.277ca.x12 / ``stem``.999.x12 /
    ``stem``.ta1.x12, all owner-only (they carry PHI); ``stem`` defaults to the
    input's file name. Streams: memory does not grow with the file. Accepted
    claims are recorded in ``ledger``. Writing the same stem again overwrites:
    a redo after a crash leaves one set of reports.
    """
    src = Path(path)
    base = Path(reports_dir) / (stem or src.name)
    profile = profile or load_profile()
    with open_private(f"{base}.json") as json_out, open_private(f"{base}.txt") as text_out, \
            open_private(f"{base}.html") as html_out:
        writers = [_writer("json", json_out, show_phi=True, color=False),
                   _writer("text", text_out, show_phi=False, color=False),
                   _writer("html", html_out, show_phi=False, color=False)]
        tally, acks = _scrub_file(src, src.name, writers, stem=base, ack=ack or Ack277Writer(),
                                  profile=profile, ledger=ledger, conformance=conformance,
                                  companion=companion, ack_999=conformance, ncci=ncci)
        for writer in writers:
            writer.close()
    reports = (f"{base}.json", f"{base}.txt", f"{base}.html", *acks)
    return FileOutcome(str(src), tally.claims, tally.accepted, tally.rejected,
                       tally.unreadable, tally.envelope_errors, reports, tally.reason)


@dataclass(frozen=True, slots=True)
class ScrubResult:
    """Everything one scrub of one source came to, for an intake step calling from code.

    Holds every claim: for batches too large for memory, use ``iter_claims``.
    """

    events: tuple  # the scrubbed event stream, in document order
    claims: tuple[ScrubbedClaim, ...]
    summary: dict  # counts and charges, as in the JSON report
    ack_277ca: bytes  # one 277CA interchange per sound input interchange
    ack_ta1: bytes  # one TA1 per interchange with a broken envelope
    ack_999: bytes = b""  # one 999 interchange per accepted input interchange with groups
    conformance: IgReport | None = None  # the implementation-guide verdicts, when checked

    @property
    def rejected(self) -> tuple[ScrubbedClaim, ...]:
        return tuple(c for c in self.claims if c.rejected)

    @property
    def problems(self) -> tuple[Problem, ...]:
        return tuple(e for e in self.events if e.__class__ is Problem)

    def write_report(self, path: str | os.PathLike, fmt: str = "json", *,
                     show_phi: bool = False, name: str = "<source>") -> None:
        """Write the text, JSON or HTML report to ``path``, owner-only (it carries PHI)."""
        with open_private(path) as out:
            writer = _writer(fmt, out, show_phi=show_phi, color=False)
            writer.begin_file(name)
            for event in self.events:
                writer.event(event)
            writer.end_file(self.summary)
            writer.close()

    def write_acks(self, directory: str | os.PathLike, stem: str) -> list[str]:
        """Write ``stem``.277ca/.999/.ta1.x12 (those not empty), owner-only."""
        written = []
        for suffix, data in (("277ca", self.ack_277ca), ("999", self.ack_999),
                             ("ta1", self.ack_ta1)):
            if data:
                target = Path(directory) / f"{stem}.{suffix}.x12"
                with open_private(target, "wb") as out:
                    out.write(data)
                written.append(str(target))
        return written


def scrub(source: Source, *, profile: Profile | str | None = None, ledger=None,
          ack: Ack277Writer | None = None, record: bool = True, conformance: bool = True,
          companion: str | None = None, ncci: NcciTables | None = None) -> ScrubResult:
    """Scrub one 837 source (a path, bytes or a binary stream) and keep the whole result.

    ``profile`` is a Profile or a path to one; ``ledger`` a scrubber.ledger.Ledger to
    check against (and, with ``record``, to record the accepted claims in).
    ``conformance`` runs the implementation-guide check first (its 999 in
    ``ack_999``); ``companion`` names a payer companion guide; ``ncci`` holds the
    user's CMS NCCI tables (``scrubber.ncci.load_tables``).
    """
    import io

    if not isinstance(profile, Profile):
        profile = load_profile(profile)
    ig_reports: list[IgReport] = []
    events = tuple(scrub_events(source, profile=profile, ledger=ledger,
                                conformance=conformance, companion=companion,
                                ig_reports=ig_reports, ncci=ncci))
    tally = Tally()
    for event in events:
        tally.add(event)
    claims = tuple(e for e in events if e.__class__ is ScrubbedClaim)
    ack = ack or Ack277Writer()
    acks, ta1, ack999 = io.BytesIO(), io.BytesIO(), io.BytesIO()
    ack.write(events, acks)
    if ig_reports:
        write_999(ig_reports[0], ack999, sender_id=ack.sender_id,
                  sender_qualifier=ack.sender_qualifier, clock=ack.clock,
                  control_numbers=ack.control_numbers)
    write_ta1([e for e in events if envelope_events(e)], ta1, sender_id=ack.sender_id,
              sender_qualifier=ack.sender_qualifier, clock=ack.clock,
              control_numbers=ack.control_numbers)
    if ledger is not None and record:
        by_submission: dict[str, list] = {}
        for claim in claims:
            by_submission.setdefault(submission_id(claim.record), []).append(claim)
        for submission, items in by_submission.items():
            ledger.record(submission, items)
    return ScrubResult(events, claims, tally.summary(), acks.getvalue(), ta1.getvalue(),
                       ack999.getvalue(), ig_reports[0] if ig_reports else None)


def iter_claims(source: Source, *, profile: Profile | str | None = None,
                ledger=None, conformance: bool = True, companion: str | None = None,
                ncci: NcciTables | None = None) -> Iterator[ScrubbedClaim]:
    """Scrubbed claims one by one, in flat memory (nothing is recorded in the ledger)."""
    if not isinstance(profile, Profile):
        profile = load_profile(profile)
    for event in scrub_events(source, profile=profile, ledger=ledger, conformance=conformance,
                              companion=companion, ncci=ncci):
        if event.__class__ is ScrubbedClaim:
            yield event


def find_x12_files(folder: str | os.PathLike) -> list[str]:
    """The files directly in ``folder`` that begin like an X12 interchange (ISA), sorted."""
    found = []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.name.startswith(".") or not entry.is_file(follow_symlinks=False):
            continue
        try:
            with open(entry.path, "rb") as handle:
                head = handle.read(4096)
        except OSError:
            continue
        if head.removeprefix(b"\xef\xbb\xbf").lstrip().startswith(b"ISA"):
            found.append(entry.path)
    return found
