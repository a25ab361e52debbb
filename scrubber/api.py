"""The Python API for an intake step: thin functions over the scrub core (scrubber.core).

``scrub`` keeps one source's whole result; ``iter_claims`` streams claims in
flat memory; ``process_file`` is a front end's unit of work (one file, its
reports and acknowledgements written to a folder). Each takes either a
``ScrubOptions`` or the familiar keyword arguments, which are turned into one.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TextIO

from scrubber.archives import expand
from scrubber.core import Recording, Scrubber
from scrubber.emit.ack277 import Ack277Writer
from scrubber.emit.batch import verdict
from scrubber.emit.sinks import (
    AckFiles,
    AckMemory,
    FileEnd,
    ReportStyle,
    Sink,
    ack_sinks,
    ack_stems,
    report_sink,
)
from scrubber.emit.summary import Tally
from scrubber.files import open_private
from scrubber.ig import IgReport
from scrubber.model import Problem, Source
from scrubber.options import AckIdentity, OptionsError, ScrubOptions, scrub_options
from scrubber.passes import Progress, RunOutcome, TallySink, feed
from scrubber.rules import Profile, ScrubbedClaim
from scrubber.rules.context import submission_id
from scrubber.rules.resources import Resources
from scrubber.split import SplitResult

__all__ = ["DEFAULT_REPORTS", "AckIdentity", "FileOutcome", "InputError", "ScrubOptions",
           "ScrubResult", "Scrubber", "SplitResult", "check_files", "find_x12_files",
           "iter_claims", "open_private", "process_file", "scrub", "split"]


class InputError(Exception):
    """The source cannot be opened at all (missing, a folder, not readable)."""


def _openable(source: Source) -> None:
    """Raise InputError for a path that cannot be opened; a stream or bytes always can."""
    if not isinstance(source, (str, os.PathLike)):
        return
    path = Path(os.fspath(source))
    if path.is_dir():
        raise InputError(f"{path} is a folder, not an 837 file")
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise InputError(f"{path} cannot be opened: {exc.strerror or exc}") from None


def _options(options: ScrubOptions | None, *, profile: Profile | str | None = None,
             conformance: bool | None = None, companion: str | None = None,
             ncci: Any = None, **given: Any) -> ScrubOptions:
    """The run's options: ``options`` with the keyword arguments laid over it, or, without
    ``options``, what ``scrub check`` would use (scrubber.options.scrub_options: scrub.toml,
    the per-user ledger) with them laid over that."""
    extra = Resources.of(ncci=ncci) if ncci is not None else None
    if options is None:
        try:
            return scrub_options("check", profile=profile, ig=conformance,
                                 companion=companion, resources=extra, **given)
        except OptionsError as exc:
            raise InputError(str(exc)) from None
    changes: dict[str, Any] = {}
    if profile is not None:
        changes["profile"] = profile
    if conformance is not None:
        changes["conformance"] = conformance
    if companion is not None:
        changes["companion"] = companion
    if extra is not None:
        changes["resources"] = options.resources.merged(extra)
    return replace(options, **changes) if changes else options


def check_files(paths: Sequence[str], out: TextIO, *, fmt: str = "text",
                style: ReportStyle | None = None, options: ScrubOptions | None = None,
                ledger: Any = None, ack_dir: str | None = None,
                ack: Ack277Writer | None = None, ack_999: bool = False,
                progress: Progress | None = None, sinks: Sequence[Sink] = (),
                jobs: int = 1, finish: Callable[[], None] | None = None,
                **keywords: Any) -> RunOutcome:
    """Scrub each path ("-" is standard input) and write one ``fmt`` report to ``out``.

    A zip archive stands for the 837s in it, a gzip file for its content, each
    read as it is decompressed and named ``archive!member`` (scrubber.archives).

    With ``ack_dir``, a 277CA per input is written there as ``<input>.277ca.x12``
    (owner-only: it names patients), a TA1 when an interchange envelope is
    broken and, with ``ack_999``, the 999 of the implementation-guide check;
    inputs that share a file name are told apart by their folders
    (``scrubber.emit.sinks.ack_stems``), and an input's acknowledgements of an
    earlier run that this one did not write are removed.
    ``sinks`` are fed too (``--statistics`` ...). ``jobs``: processes to share
    the work of files (the same results, sooner on a big run; ``Scrubber.run``).
    With ``options.record``, the accepted claims are sent in the ledger once the
    reports and acknowledgements are written and ``finish()`` (the caller's own
    closing of ``out``, say) has returned. ``keywords`` (profile, conformance,
    companion, ncci) lay over ``options``.
    """
    import sys

    options = _options(options, **keywords)
    with Scrubber(options, ledger=ledger, acks=ack) as scrubber, \
            scrubber.recording() as recording:
        every: list[Sink] = [report_sink(fmt, out, style or ReportStyle()), *sinks]
        sources: list[tuple[Any, str]] = []
        for path in paths:  # a zip archive or gzip file: the 837s inside (archive!member)
            sources += [(sys.stdin.buffer, "<stdin>")] if path == "-" else expand(path)
        if ack_dir is not None:
            stems = ack_stems([name for _, name in sources], ack_dir)
            every += ack_sinks(AckFiles(stems.__getitem__), scrubber.acks, ack_999=ack_999)
        outcome = scrubber.run(sources, every, progress=progress, jobs=jobs,
                               recording=recording)
        if finish is not None:
            finish()
    return outcome


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
    warnings: int = 0  # claims with a warning

    @property
    def verdict(self) -> str:
        """"failed", "rejected" or "accepted": the folder the input belongs in."""
        if self.unreadable:
            return "failed"
        if self.rejected or self.envelope_errors:
            return "rejected"
        return "accepted"


#: the reports process_file writes unless told otherwise (names masked but in the JSON
#: contract, which always carries them)
DEFAULT_REPORTS = ("json", "text", "html")


def process_file(path: str, reports_dir: str, *, stem: str | None = None,
                 name: str | None = None, options: ScrubOptions | None = None,
                 ledger: Any = None, ack: Ack277Writer | None = None,
                 scrubber: Scrubber | None = None, recording: Recording | None = None,
                 reports: Sequence[str] = DEFAULT_REPORTS, **keywords: Any) -> FileOutcome:
    """Scrub one file and write its reports into ``reports_dir``: a front end's unit of work.

    A zip archive is scrubbed member by member (``name!member`` in the reports,
    acknowledgements ``stem!member.277ca.x12``), a gzip file as its content.
    Writes a report per format of ``reports`` (any registered format:
    ``stem``.json, ``stem``.txt and ``stem``.html by default; with csv, the
    per-claim sheet ``stem``.claims.csv beside ``stem``.csv) and, when there is
    anything to acknowledge, ``stem``.277ca.x12 /
    ``stem``.999.x12 / ``stem``.ta1.x12, all owner-only (they carry PHI);
    ``stem`` defaults to the input's file name; ``name`` is the file's name in
    the reports (default: its file name), for an input spooled under another
    name such as an HTTP upload. Streams: memory does not grow with the file.
    ``scrubber``: one to use instead of one made of ``options`` (a service keeps
    one). With the options' ``record``, the accepted claims are held under
    ``recording``, which the caller commits once it has filed the outcome (the
    watcher, the HTTP intake); without one, under the call's own, sent once the
    reports are written. Writing the same stem again overwrites: a redo after a
    crash leaves one set of reports.
    """
    src = Path(path)
    base = Path(reports_dir) / (stem or src.name)
    with ExitStack() as stack:
        if scrubber is None:
            scrubber = stack.enter_context(Scrubber(_options(options, **keywords),
                                                    ledger=ledger, acks=ack))
        if recording is None:
            recording = stack.enter_context(scrubber.recording())
        sources = _members(src, name or src.name)
        members = ack_stems([shown for _, shown in sources], reports_dir)
        stems = {shown: base if "!" not in shown else Path(f"{base}!{members[shown].name}")
                 for _, shown in sources}
        sinks, written = file_sinks(base, reports, scrubber, stack, stems.__getitem__)
        tally = Tally()
        scrubber.run(sources, [TallySink(tally), *sinks], recording=recording)
    return FileOutcome(str(src), tally.claims, tally.accepted, tally.rejected,
                       tally.unreadable, tally.envelope_errors, written(), tally.reason,
                       tally.warnings)


def file_sinks(base: Path, reports: Sequence[str], scrubber: Scrubber, stack: ExitStack,
               stems: Callable[[str], Path] | None = None
               ) -> tuple[list[Sink], Callable[[], tuple[str, ...]]]:
    """A front end's reports of one file (``base``.json ...) and its acknowledgements
    (``base``.277ca.x12 ...; ``stems`` names them per source, for an archive's members),
    all owner-only, open until ``stack`` closes; and a function that names the files
    written, once the run is over."""
    from scrubber.emit.sinks import REPORT_FORMATS

    written = [f"{base}.{REPORT_FORMATS[fmt].suffix}" for fmt in reports]
    handles = [stack.enter_context(open_private(name)) for name in written]
    sinks: list[Sink] = [report_sink(fmt, handle)
                         for fmt, handle in zip(reports, handles, strict=True)]
    if "csv" in reports:  # the per-claim sheet beside the per-finding one
        from scrubber.emit.csv_report import ClaimSheet

        written.append(f"{base}.claims.csv")
        sinks.append(ClaimSheet(stack.enter_context(open_private(written[-1]))))
    outputs = AckFiles(stems or (lambda name: base))
    sinks += ack_sinks(outputs, scrubber.acks, ack_999=scrubber.options.conformance)
    return sinks, lambda: (*written, *outputs.written)


def _members(path: Path, name: str) -> list[tuple[Any, str]]:
    """The sources of one input file named ``name``: itself, or the 837s of a zip archive
    (``name!member``) or a gzip file (scrubber.archives)."""
    expanded = expand(str(path))
    if len(expanded) == 1 and expanded[0][0] == str(path):
        return [(path, name)]
    return [(source, name + shown[len(str(path)):]) for source, shown in expanded]


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
    recording: Recording | None = None  # with hold=True: the accepted claims, held

    @property
    def rejected(self) -> tuple[ScrubbedClaim, ...]:
        return tuple(c for c in self.claims if c.rejected)

    @property
    def verdict(self) -> str:
        """"not an 837" (nothing could be read), "fix N claims" or "ready to send"."""
        return verdict(self.summary)

    @property
    def ok(self) -> bool:
        """Whether a payer would take the whole source: every claim accepted, no problems."""
        return self.verdict == "ready to send"

    @property
    def problems(self) -> tuple[Problem, ...]:
        return tuple(e for e in self.events if e.__class__ is Problem)

    def write_report(self, path: str | os.PathLike, fmt: str = "json", *,
                     show_phi: bool = False, name: str = "<source>") -> None:
        """Write a report (any registered format) to ``path``, owner-only (it carries PHI)."""
        with open_private(path) as out:
            sink = report_sink(fmt, out, ReportStyle(show_phi=show_phi))
            feed(name, self.events, [sink], conformance=self.conformance)
            sink.close()

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

    @property
    def submissions(self) -> tuple[str, ...]:
        """The submissions (interchange sender:control number) the claims came in."""
        return tuple(dict.fromkeys(submission_id(c.record) for c in self.claims))

    def record(self, ledger: Any) -> None:
        """Record the accepted claims in ``ledger``: call it once they have been sent.

        This records after the decision, so a worker scrubbing a conflicting
        claim in between is not seen; an intake with several workers scrubs
        with ``hold=True`` instead and calls ``release`` once it has forwarded.
        """
        by_submission: dict[str, list] = {}
        for claim in self.claims:
            by_submission.setdefault(submission_id(claim.record), []).append(claim)
        for submission, items in by_submission.items():
            ledger.record(submission, items)

    def release(self) -> int:
        """Send the claims ``scrub(..., hold=True)`` holds, now that they were forwarded."""
        if self.recording is None:
            raise ValueError("nothing is held: scrub with hold=True and an open ledger")
        return self.recording.commit()

    def discard(self) -> int:
        """Drop the claims ``scrub(..., hold=True)`` holds: they were not forwarded."""
        if self.recording is None:
            raise ValueError("nothing is held: scrub with hold=True and an open ledger")
        return self.recording.discard()


class _Keep(Sink):
    """A sink that keeps the events of one source, for ScrubResult."""

    def __init__(self) -> None:
        self.events: list = []
        self.end: FileEnd | None = None

    def event(self, event: Any) -> None:
        self.events.append(event)

    def end_file(self, end: FileEnd) -> None:
        self.end = end


def scrub(source: Source, *, options: ScrubOptions | None = None, ledger: Any = None,
          ack: Ack277Writer | None = None, record: bool = False, hold: bool = False,
          **keywords: Any) -> ScrubResult:
    """Scrub one 837 source (a path, bytes or a binary stream) and keep the whole result.

    ``ledger`` is an open store (``scrubber.ledger.open_store``) to check
    against instead of the options' ledger; the accepted claims are recorded
    only when asked: with ``record`` they are decided against other workers
    (serialized per patient and day) and sent when the scrub ends; with
    ``hold`` (and a ``ledger``, which must stay open) they stay held, counting
    in every day context at once, until ``result.release()`` after forwarding
    (or ``result.discard()``). ``keywords``: ``profile`` (a Profile or a path),
    ``conformance`` (the implementation-guide check first; its 999 in
    ``ack_999``), ``companion`` (a payer companion guide), ``ncci`` (the user's
    CMS NCCI tables, ``scrubber.ncci.load_tables``). A path that cannot be
    opened raises ``InputError``; any content, however broken, gives a result
    (see ``ScrubResult.ok`` and ``verdict``).
    """
    _openable(source)
    options = _options(options, **keywords)
    if hold and ledger is None:
        raise ValueError("hold=True needs an open ledger (scrubber.ledger.open_store) that "
                         "stays open until result.release()")
    if record or hold:
        options = replace(options, record=True)
    memory = AckMemory()
    keep = _Keep()
    with Scrubber(options, ledger=ledger, acks=ack) as scrubber:
        held = scrubber.begin_recording() if hold else None
        scrubber.run([(source, "<source>")],
                     [keep, *ack_sinks(memory, scrubber.acks, ack_999=True)],
                     recording=held)
    assert keep.end is not None
    events = tuple(keep.events)
    return ScrubResult(events, tuple(e for e in events if e.__class__ is ScrubbedClaim),
                       keep.end.summary, memory.data.get("277ca", b""),
                       memory.data.get("ta1", b""), memory.data.get("999", b""),
                       keep.end.conformance, held)


def iter_claims(source: Source, *, options: ScrubOptions | None = None, ledger: Any = None,
                **keywords: Any) -> Iterator[ScrubbedClaim]:
    """Scrubbed claims one by one, in flat memory (nothing is recorded in the ledger).

    A path that cannot be opened raises ``InputError`` before anything is read.
    """
    _openable(source)
    options = replace(_options(options, **keywords), record=False)
    with Scrubber(options, ledger=ledger) as scrubber:
        for event in scrubber.events(source):
            if event.__class__ is ScrubbedClaim:
                yield event


def split(sources: Sequence[Source | tuple[Source, str]], accepted: str | os.PathLike,
          held: str | os.PathLike, *, options: ScrubOptions | None = None, ledger: Any = None,
          report: str | os.PathLike | TextIO | None = None, fmt: str = "json",
          record: bool = False, **keywords: Any) -> SplitResult:
    """Scrub ``sources`` as one run; write the accepted claims to ``accepted`` as a batch
    ready to send and the others to ``held`` (scrubber.split; docs/split-and-fix.md).

    ``report``: a path (owner-only) or text stream for the run's report in ``fmt``.
    With ``record``, only the accepted batch's claims are recorded in the ledger, once
    both files are written. A path that cannot be opened raises ``InputError``; a
    claim that cannot be placed raises ``scrubber.split.SplitError`` (nothing written).
    """
    from scrubber.split import split as split_run

    for item in sources:
        _openable(item[0] if isinstance(item, tuple) else item)
    options = _options(options, **keywords)
    if record:
        options = replace(options, record=True)
    with Scrubber(options, ledger=ledger) as scrubber:
        return split_run(sources, accepted, held, scrubber=scrubber, report=report, fmt=fmt)


def folder_inputs(folder: str | os.PathLike, *, recursive: bool = False
                  ) -> tuple[list[str], list[str]]:
    """The files in ``folder`` to scrub (every regular, visible file), and its subfolders.

    Every file is an input, X12 or not: one that is not an 837 is reported as
    not scrubbed, never skipped in silence. Hidden files and folders are left
    out. Without ``recursive``, subfolders are not searched and come back for
    the caller to mention; with it, they are searched too (in name order,
    files before subfolders) and only linked folders, never followed (no loop),
    come back.
    """
    files, folders, linked = [], [], []
    for entry in sorted(os.scandir(os.fspath(folder)), key=lambda e: str(e.name)):
        if str(entry.name).startswith("."):
            continue
        if entry.is_dir(follow_symlinks=False):
            folders.append(str(entry.path))
        elif entry.is_symlink() and entry.is_dir():
            linked.append(str(entry.path))
        else:
            files.append(str(entry.path))
    if not recursive:
        return files, sorted(folders + linked)
    for sub in folders:
        found, left = folder_inputs(sub, recursive=True)
        files += found
        linked += left
    return files, linked


def find_x12_files(folder: str | os.PathLike) -> list[str]:
    """The files directly in ``folder`` that begin like an X12 interchange (ISA), sorted."""
    found = []
    for entry in sorted(os.scandir(os.fspath(folder)), key=lambda e: str(e.name)):
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
