"""Sinks: every report format and acknowledgement behind one small protocol, found by name.

The scrub core pushes each source's scrubbed event stream into its sinks:
``begin_file(name)``, ``event(e)`` per event in document order,
``end_file(end)`` with what the file came to, and ``close()`` once after the
last file. A report format (text, JSON, HTML ...) is a sink over a text
stream, registered by name in ``REPORT_FORMATS``: the command line's
``--format`` choices and the watcher's reports are built from that registry,
so adding a format is one module that calls ``register_format``. The
acknowledgements (277CA, TA1, 999) are sinks over ``AckOutputs``: files in a
folder, or bytes in memory for the Python API.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol, TextIO

from scrubber.emit.ack277 import Ack277Writer
from scrubber.emit.ack999 import write_999
from scrubber.emit.ta1 import envelope_events, write_ta1
from scrubber.model import Problem

if TYPE_CHECKING:
    from scrubber.ig import IgReport
    from scrubber.rules.findings import Notice


@dataclass(frozen=True, slots=True)
class FileEnd:
    """What one source came to, handed to every sink when its stream ends."""

    name: str  # as given: a path, "<stdin>" ...
    summary: dict[str, Any]  # counts and charges, as in the JSON report
    conformance: IgReport | None = None  # the implementation-guide check, when it ran


@dataclass(frozen=True, slots=True)
class RunDetails:
    """What a run was made with, for a report to say: a report read weeks later must tell
    which scrubber, profile, data and ledger judged the claims, and when."""

    version: str  # the scrubber's version
    started: datetime  # when the run began, in UTC
    profile: str  # the profile's name, and its file when it is not the default
    conformance: str  # the implementation-guide check: "on", "on (companion NAME)", "off"
    ledger: str  # where the claim history was read from (never its credentials), or "none"
    data: tuple[str, ...] = ()  # the reference data releases the rules judged by

    @property
    def started_text(self) -> str:
        return self.started.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def as_dict(self) -> dict[str, Any]:
        return {"version": self.version, "started": self.started_text, "profile": self.profile,
                "conformance": self.conformance, "ledger": self.ledger, "data": list(self.data)}

    def words(self) -> str:
        """One line for people: "scrubber 1.0; profile default; ..."."""
        data = "; ".join(self.data) or "none installed"
        return (f"scrubber {self.version}; profile {self.profile}; implementation-guide check "
                f"{self.conformance}; ledger {self.ledger}; reference data: {data}; run "
                f"{self.started.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC")


def run_started() -> datetime:
    """Now in UTC, or SOURCE_DATE_EPOCH when set (reproducible reports, as builds do)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "")
    if epoch.isdigit():
        return datetime.fromtimestamp(int(epoch), UTC)
    return datetime.now(UTC)


def ledger_words(target: str | None) -> str:
    """Where a ledger is, for a report: a path, or a URL without user and password."""
    if not target:
        return "none (no claim history read)"
    from urllib.parse import urlsplit

    parts = urlsplit(target)
    if parts.scheme and parts.netloc:
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}{parts.path}"
    return target


class Sink:
    """What the scrub core feeds: subclass it and override what your output needs.

    Once before the first source, ``run_details(run)`` (``RunDetails``: version,
    profile, data, ledger, time). For each source of a run, in order:
    ``begin_file(name)``, ``event(e)`` for every event in document order
    (envelopes, ``ScrubbedClaim``, ``Problem`` ...), then
    ``end_file(end)``; after the last source, ``notice(n)`` once for each thing the
    run says once (``scrubber.rules.findings.Notice``), then ``close()``. Every method
    does nothing here, so a sink implements only what it uses.
    """

    def run_details(self, run: RunDetails) -> None:
        """What the run is made with (once, before the first source)."""

    def renderer(self) -> ClaimRenderer | None:
        """What this sink writes for one claim, as a picklable function of the
        ``ScrubbedClaim`` alone, for ``--jobs`` workers to run (scrubber.parallel); the
        claim then reaches ``event`` with the result in ``rendered[renderer.key]``. None:
        the sink does its own work."""
        return None

    def begin_file(self, name: str) -> None:
        """A source starts (``name`` as given: a path, "<stdin>" ...)."""

    def event(self, event: Any) -> None:
        """One event of the source, in document order."""

    def end_file(self, end: FileEnd) -> None:
        """The source is over: what it came to."""

    def notice(self, notice: Notice) -> None:
        """Something the run says once (after its last file, before ``close``)."""

    def close(self) -> None:
        """The run is over (also after a failure): write what is left, release what is held."""


class ClaimRenderer(Protocol):
    """A sink's work for one claim that depends on nothing but the claim (``Sink.renderer``).

    ``key`` names the rendering and everything it depends on: sinks whose renderers
    share a key share one result."""

    @property
    def key(self) -> str: ...

    def __call__(self, claim: Any) -> Any: ...


# -- report formats ------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ReportStyle:
    """How a person wants a report: names shown or masked, colour, accepted claims listed."""

    show_phi: bool = False
    color: bool = False
    verbose: bool = False
    csv_bom: bool = False  # a CSV sheet starts with a UTF-8 byte-order mark (Excel on Windows)


@dataclass(frozen=True, slots=True)
class ReportFormat:
    """A named report format: how to make its sink over a text stream."""

    name: str  # the --format value
    help: str  # one line for --help
    suffix: str  # file extension of its reports (the watcher's reports folder)
    make: Callable[[TextIO, ReportStyle], Sink]


REPORT_FORMATS: dict[str, ReportFormat] = {}


def register_format(fmt: ReportFormat) -> ReportFormat:
    """Make ``fmt`` available to every front end under ``fmt.name``."""
    if fmt.name in REPORT_FORMATS and REPORT_FORMATS[fmt.name] is not fmt:
        raise ValueError(f"report format {fmt.name!r} is registered twice")
    REPORT_FORMATS[fmt.name] = fmt
    return fmt


FORMAT_GROUP = "scrubber.report_formats"  # entry points: name = module:ReportFormat
_installed = False


def _load_installed() -> None:
    """Register the formats installed distributions name in the entry-point group, once."""
    global _installed
    if _installed:
        return
    _installed = True
    from importlib.metadata import entry_points

    for point in entry_points(group=FORMAT_GROUP):
        fmt = point.load()
        if isinstance(fmt, ReportFormat) and fmt.name not in REPORT_FORMATS:
            register_format(fmt)


def report_formats() -> tuple[ReportFormat, ...]:
    """The registered formats, in registration order (text first: the default), those of
    installed distributions (the ``scrubber.report_formats`` entry points) included."""
    _load_installed()
    return tuple(REPORT_FORMATS.values())


#: extensions that name a format besides each format's own suffix
_EXTENSIONS = {"htm": "html", "text": "text"}


def format_for(path: str | os.PathLike) -> str | None:
    """The report format a file name's extension stands for (``r.html``: html), else None."""
    _load_installed()
    extension = os.path.splitext(os.fspath(path))[1].lower().lstrip(".")
    for fmt in REPORT_FORMATS.values():
        if fmt.suffix == extension:
            return fmt.name
    return _EXTENSIONS.get(extension)


def report_sink(name: str, out: TextIO, style: ReportStyle = ReportStyle()) -> Sink:
    """A sink writing the ``name`` report to ``out``; KeyError names the formats there are."""
    _load_installed()
    try:
        fmt = REPORT_FORMATS[name]
    except KeyError:
        raise KeyError(f"no report format {name!r} (known: {', '.join(REPORT_FORMATS)})") from None
    return fmt.make(out, style)


def _text(out: TextIO, style: ReportStyle) -> Sink:
    from scrubber.emit.summary import TextSummary

    return TextSummary(out, show_phi=style.show_phi, color=style.color, verbose=style.verbose)


def _json(out: TextIO, style: ReportStyle) -> Sink:
    from scrubber.emit.json_report import JsonWriter

    return JsonWriter(out)  # the JSON contract always carries names and ids


def _html(out: TextIO, style: ReportStyle) -> Sink:
    from scrubber.emit.html_report import HtmlReport

    return HtmlReport(out, show_phi=style.show_phi)


def _csv(out: TextIO, style: ReportStyle) -> Sink:
    from scrubber.emit.csv_report import CsvReport

    return CsvReport(out, show_phi=style.show_phi, bom=style.csv_bom)


register_format(ReportFormat(
    "text", "an annotated summary, coloured on a terminal", "txt", _text))
register_format(ReportFormat(
    "json", "the JSON contract (docs/report.schema.json; always carries names, member ids "
    "and birth dates)", "json", _json))
register_format(ReportFormat(
    "html", "one self-contained HTML page for the whole batch", "html", _html))
register_format(ReportFormat(
    "csv", "one row per finding, for a spreadsheet (a row per claim beside it: --csv-claims)",
    "csv", _csv))


# -- acknowledgements ----------------------------------------------------------------------

#: the acknowledgements an input may get, as their files end: <stem>.<suffix>.x12
ACK_SUFFIXES = ("277ca", "999", "ta1")


class AckOutputs(Protocol):
    """Where acknowledgements go: ``open(name, suffix)`` yields a binary stream to fill;
    ``done(name)`` says every acknowledgement of the input ``name`` has been written."""

    def open(self, name: str, suffix: str) -> Any: ...  # a context manager of BinaryIO

    def done(self, name: str) -> None: ...


class AckFiles:
    """Acknowledgements as owner-only files ``<stem>.<suffix>.x12`` (they name patients).

    ``stem(name)`` gives the path stem for an input. Each file is whole or
    absent (scrubber.files.open_private); one left empty (nothing to acknowledge
    in that form) is not written. When an input is done, the acknowledgements
    of an earlier run for the same stem that this run did not write (a TA1 of a
    broken envelope since mended, a 999 asked for then and not now) are
    removed: the folder holds one run's answer per input, never a mix.
    ``written`` lists what was written.
    """

    def __init__(self, stem: Callable[[str], Path]):
        self.stem = stem
        self.written: list[str] = []

    @contextmanager
    def open(self, name: str, suffix: str) -> Iterator[BinaryIO]:
        from scrubber.files import open_private

        target = f"{self.stem(name)}.{suffix}.x12"
        with open_private(target, "wb") as handle:
            yield handle
            if handle.tell() == 0:
                handle.discard()  # type: ignore[attr-defined]
                return
        self.written.append(target)

    def done(self, name: str) -> None:
        from scrubber.files import output_error

        stem = self.stem(name)
        for suffix in ACK_SUFFIXES:
            target = f"{stem}.{suffix}.x12"
            if target in self.written:
                continue
            try:
                os.unlink(target)
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise output_error(exc, target) from None


def ack_stems(names: Sequence[str], folder: str | os.PathLike) -> dict[str, Path]:
    """A distinct acknowledgement stem in ``folder`` for each input name.

    An input's acknowledgements are named after its file name (``a.x12``:
    ``a.x12.277ca.x12``); inputs of one run that share a file name are told
    apart by as many of their folders as it takes, joined with ``__``
    (``d1/a.x12`` and ``d2/a.x12``: ``d1__a.x12.277ca.x12`` and
    ``d2__a.x12.277ca.x12``). Standard input is ``stdin``; an archive member
    ``x.zip!dir/a.x12`` is named as its file name, ``a.x12``.
    """
    def parts(name: str) -> tuple[str, ...]:
        if name == "<stdin>":
            return ("stdin",)
        outer, bang, inner = name.partition("!")
        if bang:
            return (*Path(os.path.abspath(outer)).parts[1:], *Path(inner).parts)
        return Path(os.path.abspath(name)).parts[1:] or ("_",)

    split = {name: parts(name) for name in names}
    stems: dict[str, Path] = {}
    for name, mine in split.items():
        rivals = [other for other in split.values() if other != mine and other[-1] == mine[-1]]
        depth = 1
        while any(other[-depth:] == mine[-depth:] for other in rivals) and depth < len(mine):
            depth += 1
        stems[name] = Path(folder) / "__".join(mine[-depth:])
    return stems


@dataclass
class AckMemory:
    """Acknowledgements kept as bytes by suffix ("277ca", "999", "ta1"), for the API."""

    data: dict[str, bytes] = field(default_factory=dict)

    @contextmanager
    def open(self, name: str, suffix: str) -> Iterator[BinaryIO]:
        buffer = io.BytesIO()
        yield buffer
        self.data[suffix] = self.data.get(suffix, b"") + buffer.getvalue()

    def done(self, name: str) -> None:
        """Nothing to tidy in memory."""


class Ack277Sink(Sink):
    """The 277CA of each input, written as its interchanges end."""

    def __init__(self, outputs: AckOutputs, writer: Ack277Writer):
        self.outputs = outputs
        self.writer = writer
        self._open: Any = None
        self._stream: Any = None

    def begin_file(self, name: str) -> None:
        self._open = self.outputs.open(name, "277ca")
        self._stream = self.writer.stream(self._open.__enter__())

    def event(self, event: Any) -> None:
        self._stream.event(event)

    def end_file(self, end: FileEnd) -> None:
        opened, self._open = self._open, None
        try:
            self._stream.close()
        except BaseException as exc:
            opened.__exit__(type(exc), exc, exc.__traceback__)  # given up: not written
            raise
        finally:
            self._stream = None
        opened.__exit__(None, None, None)

    def close(self) -> None:
        if self._open is not None:  # the run failed midway: the unfinished 277CA is dropped
            opened, self._open = self._open, None
            failure = RuntimeError("the run stopped before this input ended")
            opened.__exit__(RuntimeError, failure, None)


class Ta1Sink(Sink):
    """A TA1 per interchange whose envelope is broken or that the implementation-guide check
    rejects; only envelope events are kept."""

    def __init__(self, outputs: AckOutputs, writer: Ack277Writer):
        self.outputs = outputs
        self.writer = writer
        self._envelopes: list[Any] = []

    def begin_file(self, name: str) -> None:
        self._envelopes = []

    def event(self, event: Any) -> None:
        if envelope_events(event):
            self._envelopes.append(event)

    def end_file(self, end: FileEnd) -> None:
        checked = end.conformance
        if any(e.__class__ is Problem for e in self._envelopes) or (
                checked is not None and any(i.errors for i in checked.interchanges)):
            ack = self.writer
            with self.outputs.open(end.name, "ta1") as out:
                write_ta1(self._envelopes, out, conformance=checked, sender_id=ack.sender_id,
                          sender_qualifier=ack.sender_qualifier, clock=ack.clock,
                          control_numbers=ack.control_numbers)
        self._envelopes = []


class Ack999Sink(Sink):
    """The 999 of the implementation-guide check, for each input it ran on."""

    def __init__(self, outputs: AckOutputs, writer: Ack277Writer):
        self.outputs = outputs
        self.writer = writer

    def end_file(self, end: FileEnd) -> None:
        if end.conformance is None or end.summary.get("file_problems"):
            return  # not an 837 at all (binary, an 835 ...): nothing a payer would answer
        ack = self.writer
        with self.outputs.open(end.name, "999") as out:
            write_999(end.conformance, out, sender_id=ack.sender_id,
                      sender_qualifier=ack.sender_qualifier, clock=ack.clock,
                      control_numbers=ack.control_numbers)


class _AcksDone(Sink):
    """Tells the outputs each input's acknowledgements are all written (after the others)."""

    def __init__(self, outputs: AckOutputs):
        self.outputs = outputs

    def end_file(self, end: FileEnd) -> None:
        self.outputs.done(end.name)


def ack_sinks(outputs: AckOutputs, writer: Ack277Writer, *, ack_999: bool = True
              ) -> list[Sink]:
    """The 277CA, TA1 and (with ``ack_999``) 999 sinks over one set of outputs."""
    sinks: list[Sink] = [Ack277Sink(outputs, writer), Ta1Sink(outputs, writer)]
    if ack_999:
        sinks.append(Ack999Sink(outputs, writer))
    sinks.append(_AcksDone(outputs))
    return sinks
