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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
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


class Sink:
    """What the scrub core feeds: subclass it and override what your output needs.

    For each source of a run, in order: ``begin_file(name)``, ``event(e)`` for every
    event in document order (envelopes, ``ScrubbedClaim``, ``Problem`` ...), then
    ``end_file(end)``; after the last source, ``notice(n)`` once for each thing the
    run says once (``scrubber.rules.findings.Notice``), then ``close()``. Every method
    does nothing here, so a sink implements only what it uses.
    """

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


# -- report formats ------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ReportStyle:
    """How a person wants a report: names shown or masked, colour, accepted claims listed."""

    show_phi: bool = False
    color: bool = False
    verbose: bool = False


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

    return CsvReport(out, show_phi=style.show_phi)


register_format(ReportFormat(
    "text", "an annotated summary, coloured on a terminal", "txt", _text))
register_format(ReportFormat(
    "json", "the JSON contract (docs/report.schema.json; always carries names, member ids "
    "and birth dates)", "json", _json))
register_format(ReportFormat(
    "html", "one self-contained HTML page for the whole batch", "html", _html))
register_format(ReportFormat(
    "csv", "one row per finding, for a spreadsheet", "csv", _csv))


# -- acknowledgements ----------------------------------------------------------------------

class AckOutputs(Protocol):
    """Where acknowledgements go: ``open(name, suffix)`` yields a binary stream to fill."""

    def open(self, name: str, suffix: str) -> Any: ...  # a context manager of BinaryIO


class AckFiles:
    """Acknowledgements as owner-only files ``<stem>.<suffix>.x12`` (they name patients).

    ``stem(name)`` gives the path stem for an input; a file left empty (nothing
    to acknowledge in that form) is removed. ``written`` lists what stays.
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
            empty = handle.tell() == 0
        if empty:
            os.unlink(target)
        else:
            self.written.append(target)


@dataclass
class AckMemory:
    """Acknowledgements kept as bytes by suffix ("277ca", "999", "ta1"), for the API."""

    data: dict[str, bytes] = field(default_factory=dict)

    @contextmanager
    def open(self, name: str, suffix: str) -> Iterator[BinaryIO]:
        buffer = io.BytesIO()
        yield buffer
        self.data[suffix] = self.data.get(suffix, b"") + buffer.getvalue()


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
        try:
            self._stream.close()
        finally:
            self._open.__exit__(None, None, None)
            self._open = self._stream = None


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
        if end.conformance is None:
            return
        ack = self.writer
        with self.outputs.open(end.name, "999") as out:
            write_999(end.conformance, out, sender_id=ack.sender_id,
                      sender_qualifier=ack.sender_qualifier, clock=ack.clock,
                      control_numbers=ack.control_numbers)


def ack_sinks(outputs: AckOutputs, writer: Ack277Writer, *, ack_999: bool = True
              ) -> list[Sink]:
    """The 277CA, TA1 and (with ``ack_999``) 999 sinks over one set of outputs."""
    sinks: list[Sink] = [Ack277Sink(outputs, writer), Ta1Sink(outputs, writer)]
    if ack_999:
        sinks.append(Ack999Sink(outputs, writer))
    return sinks
