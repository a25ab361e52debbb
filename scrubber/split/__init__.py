"""Split a batch: the accepted claims as a batch ready to send, the rest into a hold file.

``split`` scrubs its sources as one run (the day context spans them, as for
``scrub check``), then reads them once more and copies each claim, as the
bytes it was sent as, into the accepted batch or the hold batch, each a valid
837 of its own (``scrubber.split.batch``). A claim goes to the hold batch when
the scrub rejected it, or when it is one side of a conflict with a rejected
claim of the same run (``scrubber.split.plan``): both sides wait together.
Files are written whole under a temporary name and renamed; a batch with no
claim is not written, and a file of that name left by an earlier run is
removed, so that yesterday's batch cannot go out again by mistake. With the
options' ``record``, only the accepted batch's claims are recorded, under the
interchange they go out in (its fresh ISA13), and sent in the ledger once the
files are in place.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from scrubber.core import Recording, Scrubber
from scrubber.emit.sinks import ReportStyle, Sink, report_sink
from scrubber.emit.summary import Tally
from scrubber.files import staged
from scrubber.model import Source
from scrubber.model.source import Reopenable, UnreadableSource
from scrubber.options import ScrubOptions
from scrubber.passes import RunOutcome, TallySink
from scrubber.split.batch import Batch
from scrubber.split.copy import SplitError, copy_source
from scrubber.split.plan import Partner, Plan, VerdictSink

__all__ = ["Partner", "SplitError", "SplitResult", "split"]


@dataclass(frozen=True, slots=True)
class SplitResult:
    """What a split came to: the claims in each batch and the files written."""

    claims: int  # every claim of the sources
    accepted: int  # claims in the accepted batch
    held: int  # claims in the hold batch
    rejected: int  # of the held, those the scrub rejected (the others wait for a partner)
    partners: tuple[Partner, ...]  # accepted by the scrub, held with a rejected partner
    accepted_file: str | None  # None: no claim was accepted, nothing written
    held_file: str | None  # None: nothing held
    accepted_controls: tuple[str, ...]  # ISA13 of the accepted batch's interchanges
    held_controls: tuple[str, ...]
    outcome: RunOutcome = field(default_factory=RunOutcome)
    # claims outside any transaction set: in neither batch (the report names them)
    outside: tuple[tuple[str, str], ...] = ()
    report: str | None = None

    @property
    def complete(self) -> bool:
        """Whether every claim of the sources is in one of the two batches."""
        return not self.outside and not self.outcome.unreadable


def split(sources: Sequence[Source | tuple[Source, str]], accepted: str | os.PathLike,
          held: str | os.PathLike, *, options: ScrubOptions | None = None,
          report: str | os.PathLike | TextIO | None = None, fmt: str = "text",
          style: ReportStyle | None = None, scrubber: Scrubber | None = None,
          sinks: Sequence[Sink] = (), numbers: Iterator[int] | None = None,
          clock: Callable[[], datetime] = datetime.now,
          before_commit: Callable[[SplitResult], None] | None = None,
          recording: Recording | None = None, jobs: int = 1) -> SplitResult:
    """Scrub ``sources`` as one run and write the accepted and the held claims apart.

    ``sources`` are paths, bytes or binary streams (or (source, name) pairs).
    ``accepted`` and ``held`` are the two 837 files; ``report`` a path (written
    owner-only) or text stream for the scrub's report in ``fmt``. ``numbers``
    are control numbers to use instead of fresh ones (tests); ``clock`` says
    when the batches are made. ``scrubber`` is one to use instead of one made of
    ``options``. With the options' ``record``, the accepted batch's claims are
    recorded and sent in the ledger once both files are in place and
    ``before_commit`` (a front end filing its outcome) has returned; or, given a
    ``recording``, held under it for the caller to commit (the watcher). ``jobs``:
    processes to share the scrub of files (``Scrubber.run``; the copy is one). Raises
    ``SplitError`` when a claim cannot be placed (nothing is written then).
    """
    with ExitStack() as stack:
        if scrubber is None:
            scrubber = stack.enter_context(Scrubber(options))
        named = [item if isinstance(item, tuple) else (item, _name(item)) for item in sources]
        handles = [stack.enter_context(_seekable(source)) for source, _ in named]
        run_sources = [(handle.scrub, name) for handle, (_, name) in zip(handles, named,
                                                                         strict=True)]
        verdicts = VerdictSink()
        stack.callback(verdicts.discard)
        tally = Tally()
        every: list[Sink] = [verdicts, TallySink(tally), *sinks]
        if report is not None:
            out = report if hasattr(report, "write") else stack.enter_context(
                _private_text(report))  # type: ignore[arg-type]
            every.append(report_sink(fmt, out, style or ReportStyle()))  # type: ignore[arg-type]
        with scrubber.recording() if recording is None else nullcontext(recording) \
                as recording:
            outcome = scrubber.run(run_sources, every, recording=recording, jobs=jobs)
            plan = verdicts.plan()
            if recording is not None and plan.partners:
                recording.withdraw([partner.key for partner in plan.partners.values()])
            result, sent = _write(verdicts, plan, [h.read for h in handles], Path(accepted),
                                  Path(held), numbers or scrubber.acks.control_numbers, clock,
                                  outcome)
            if recording is not None:
                recording.resubmit(sent)
            if report is not None and isinstance(report, (str, os.PathLike)):
                result = _with(result, report=os.fspath(report))
            if before_commit is not None:
                before_commit(result)
        return result


def _with(result: SplitResult, **changes: Any) -> SplitResult:
    from dataclasses import replace

    return replace(result, **changes)


def _name(source: Source) -> str:
    return os.fspath(source) if isinstance(source, (str, os.PathLike)) else "<source>"


@dataclass(frozen=True, slots=True)
class _Handle:
    scrub: Source  # what the scrub reads
    read: BinaryIO  # what the copy reads, seekable


@contextmanager
def _seekable(source: Source) -> Iterator[_Handle]:
    """The source for the scrub and a seekable handle on the same bytes for the copy."""
    if isinstance(source, (str, os.PathLike)):
        handle: BinaryIO
        try:
            handle = open(source, "rb")
        except OSError:  # the scrub reports it unreadable; nothing to copy
            handle = io.BytesIO(b"")
        with handle:
            yield _Handle(source, handle)
        return
    if isinstance(source, (bytes, bytearray, memoryview)):
        yield _Handle(bytes(source), io.BytesIO(bytes(source)))
        return
    if isinstance(source, Reopenable):  # an archive's member: opens afresh for the copy
        try:
            member = source.open()
        except UnreadableSource:  # the scrub reports it unreadable; nothing to copy
            member = io.BytesIO(b"")
        with member:
            yield _Handle(source, member)
        return
    if source.seekable():
        start = source.tell()
        data = source
        yield _Handle(data, _Offset(data, start))  # type: ignore[arg-type]
        return
    with tempfile.TemporaryFile(prefix="scrub-split-") as spool:
        shutil.copyfileobj(source, spool, 1 << 20)
        spool.seek(0)
        yield _Handle(spool, spool)


class _Offset(io.RawIOBase):
    """A stream read from ``start`` as if it began there (a seekable stream handed in)."""

    def __init__(self, stream: BinaryIO, start: int):
        self.stream, self.start = stream, start
        stream.seek(start)

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.stream.tell() - self.start

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence == 0:
            return self.stream.seek(self.start + offset) - self.start
        return self.stream.seek(offset, whence) - self.start

    def read(self, size: int | None = -1) -> bytes:
        return self.stream.read(-1 if size is None else size)


@contextmanager
def _private_text(path: str | os.PathLike) -> Iterator[TextIO]:
    """A report written whole: a private temporary file renamed into place at the end."""
    target = Path(path)
    with staged(target) as (stage, _):
        with open(stage, "w", encoding="utf-8") as out:
            yield out


def _write(verdicts: VerdictSink, plan: Plan, handles: list[BinaryIO], accepted: Path,
           held: Path, numbers: Iterator[int], clock: Callable[[], datetime],
           outcome: RunOutcome) -> tuple[SplitResult, list[tuple[str, str]]]:
    """The copy pass: every claim into its batch, both files whole or absent; with the
    submissions the accepted claims go out in ((as scrubbed, as written) pairs)."""
    if accepted.resolve() == held.resolve():
        raise SplitError(f"the accepted and the hold file are the same file ({accepted})")
    with staged(held) as (held_stage, keep_held), \
            staged(accepted) as (accepted_stage, keep_accepted), \
            open(held_stage, "wb") as held_out, open(accepted_stage, "wb") as accepted_out:
        good, bad = Batch(accepted_out, numbers, clock), Batch(held_out, numbers, clock)
        pending = verdicts.verdicts()
        ordinal = 0
        for index, handle in enumerate(handles):
            handle.seek(0)
            for copy in copy_source(handle, index):
                verdict = next(pending, None)
                if verdict is None or (verdict.source, verdict.offset) != (index,
                                                                           copy.offset):
                    raise SplitError(
                        f"claim {copy.claim_id[:38]!r} at byte {copy.offset} of source "
                        f"{index + 1} was not scrubbed as a claim; nothing was written. "
                        "Correct the envelope (scrub fix) and split again")
                ordinal += 1
                (bad if plan.held(ordinal, verdict) else good).add(copy)
        left = next(pending, None)
        if left is not None:
            raise SplitError(
                f"claim {left.claim_id[:38]!r} at byte {left.offset} of source "
                f"{left.source + 1} could not be copied; nothing was written")
        good.close()
        bad.close()
        accepted_out.flush()
        held_out.flush()
        keep_accepted[0], keep_held[0] = good.claims > 0, bad.claims > 0
    return SplitResult(
        claims=ordinal, accepted=good.claims, held=bad.claims, rejected=verdicts.rejected,
        partners=tuple(plan.partners[k] for k in sorted(plan.partners)),
        accepted_file=os.fspath(accepted) if good.claims else None,
        held_file=os.fspath(held) if bad.claims else None,
        accepted_controls=tuple(good.interchanges), held_controls=tuple(bad.interchanges),
        outcome=outcome, outside=tuple(verdicts.outside)), good.submissions
