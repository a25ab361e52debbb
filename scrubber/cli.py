"""The ``scrub`` command line: options in, one library call, an exit code out.

Exit codes: 0 every file read cleanly (and every claim accepted); 1 a problem
a payer would reject (a broken envelope, a rejected claim); 2 an input that
could not be read at all, or a usage error.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

import click

from scrubber import __version__
from scrubber.api import DEFAULT_REPORTS, check_files, folder_inputs, open_private
from scrubber.archives import expand
from scrubber.config import ConfigError, load_config
from scrubber.data.commands import data_group
from scrubber.emit.batch import StatisticsSink
from scrubber.emit.sinks import ReportStyle, format_for, report_formats
from scrubber.files import OutputError, ack_folder, writable_folder
from scrubber.ig import load_guides
from scrubber.ledger import LedgerError, open_store
from scrubber.ledger.commands import ledger_group
from scrubber.options import OptionsError, ScrubOptions, scrub_options, verdict_keys
from scrubber.parallel import default_jobs
from scrubber.rules import ProfileError, load_profile
from scrubber.rules.resources import ResourceError, resource_kinds

EXIT_OK, EXIT_REJECTED, EXIT_UNREADABLE = 0, 1, 2


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="scrub", message="%(prog)s %(version)s")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="Site settings (TOML); default: the scrub.toml of this folder or the "
                   "nearest above it (up to a repository's top).")
@click.pass_context
def main(ctx: click.Context, config_path: str | None) -> None:
    """Scrub X12 837 claim files before they go to a payer.

    \b
    Example:
        scrub check claims.x12
        scrub check claims.x12 --format json > report.json
        scrub --config site.toml watch
    """
    try:
        ctx.default_map, ctx.obj = load_config(main, config_path)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None


class FormatName(click.ParamType):
    """A report format name, checked against the registry when used (not when imported)."""

    name = "format"

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "[" + "|".join(f.name for f in report_formats()) + "]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None
                ) -> str:
        names = [f.name for f in report_formats()]
        if value not in names:
            self.fail(f"{value!r} is not one of {', '.join(names)}", param, ctx)
        return str(value)


_RECORDS = {  # what --record does by default, per command (scrubber.options.COMMAND_DEFAULTS)
    "check": "off: a check alone records nothing; say it when the files are being sent",
    "watch": "on: the watcher is an intake that forwards what it accepts",
    "serve": "on with a ledger: the intake forwards what it accepts",
    "batch": "off; say it when the files are being sent",
    "split": "off; say it when the accepted batch is being sent: only its claims are "
             "recorded, once it is written",
}


def verdict_options(command: str) -> Callable[[Any], Any]:
    """The options that decide verdicts, the same on every command that scrubs.

    Their values are resolved by scrubber.options.scrub_options (command line over
    scrub.toml's command table over its [scrub] table over the defaults), as every
    other front end resolves them: see ``_scrub_options``.
    """
    options = [
        click.option("--profile", type=click.Path(dir_okay=False),
                     help="Payer profile (XML) with severities, switched-off rules and code "
                          "lists."),
        click.option("--companion", metavar="NAME",
                     help="Lay a payer companion guide of x12_maps/ig-overrides.xml over the "
                          "implementation guides."),
        click.option("--ig/--no-ig", "ig", default=None,
                     help="Check implementation-guide conformance first, as a payer's front "
                          "end does (default: on); claims of a rejected transaction set are "
                          "held, not scrubbed."),
        click.option("--select", multiple=True, metavar="RULE",
                     help="Run only these rules: ids or prefixes such as snip- (repeat, or "
                          "separate with commas)."),
        click.option("--ignore", multiple=True, metavar="RULE",
                     help="Leave these rules out: ids or prefixes (repeat, or separate with "
                          "commas)."),
        click.option("--fail-on", type=click.Choice(["reject", "warn"]), default=None,
                     help="Fail on rejected claims only (default), or on warnings too."),
        click.option("--ledger", metavar="PATH|URL",
                     help="Claim-history ledger (default: a per-user ledger under "
                          "$XDG_STATE_HOME/scrubber)."),
        click.option("--no-ledger", is_flag=True, default=None,
                     help="Check without the claim history."),
        click.option("--record/--no-record", default=None,
                     help="Record the accepted claims in the ledger, sent once the run's "
                          f"outputs are written (default: {_RECORDS[command]})."),
        click.option("--ack-sender", metavar="ID",
                     help="Our id in the acknowledgements (ISA06/GS02; default: SCRUBBER)."),
        click.option("--ack-name", metavar="NAME",
                     help="Our name as information source in the 277CA (2100A NM103; "
                          "default: SCRUBBER)."),
    ]
    for kind in resource_kinds():
        options += [click.option(f"--{option.name}", option.name.replace("-", "_"),
                                 multiple=True, metavar=option.metavar,
                                 type=click.Path(dir_okay=False), help=option.help)
                    for option in kind.options]

    def decorate(function: Any) -> Any:
        for option in reversed(options):
            function = option(function)
        return function

    return decorate


def _verdict_names() -> frozenset[str]:
    return frozenset(key.replace("-", "_") for key in verdict_keys())


def _scrub_options(ctx: click.Context, command: str, values: dict[str, Any]) -> ScrubOptions:
    """The verdict options of this command from the one builder every front end calls.

    Only what was given on the command line is passed as given: scrub.toml is the
    builder's to read (its [scrub] table applies to every front end alike).
    """
    given = {name: value for name, value in values.items()
             if name in _verdict_names() and _from_command_line(ctx, name)}
    try:
        return scrub_options(command, config=ctx.find_root().obj or {}, **given)
    except OptionsError as exc:
        raise click.UsageError(str(exc)) from None


def _from_command_line(ctx: click.Context, name: str) -> bool:
    return ctx.get_parameter_source(name) in (click.core.ParameterSource.COMMANDLINE,
                                              click.core.ParameterSource.ENVIRONMENT)


def _usable_ledger(options: ScrubOptions) -> None:
    """Open the ledger once, to refuse an unusable one before a service starts."""
    if options.ledger is not None:
        try:
            open_store(options.ledger).close()
        except LedgerError as exc:
            raise click.UsageError(str(exc)) from None


@main.command(short_help="Scrub 837 files or folders (- : standard input) before they go out.")
@click.argument("files", nargs=-1, required=True, type=click.Path(allow_dash=True))
@click.option("--format", "fmt", type=FormatName(), default=None,
              help="The report (default: as --output's extension says, else text): "
              + "; ".join(f"{f.name}, {f.help}" for f in report_formats()) + ".")
@click.option("-o", "--output", "output", type=click.Path(dir_okay=False),
              help="Write the report to this file (owner-only: it names patients) instead of "
                   "standard output; .html, .json, .csv or .txt sets the format.")
@click.option("-r", "--recursive", is_flag=True,
              help="Search the folders among FILES and every folder inside them.")
@click.option("--show-phi", is_flag=True,
              help="Show patient names, ids, birth dates and addresses in the text, HTML "
                   "and CSV reports and the segments they quote (masked by default; the JSON "
                   "report always carries names, member ids and birth dates).")
@click.option("--csv-claims", "csv_claims", type=click.Path(dir_okay=False),
              help="Write the per-claim CSV sheet (claim, billing NPI, payer, dates of "
                   "service, charge, status, rules, at risk) to this file; with --format csv "
                   "and --output NAME.csv it goes to NAME.claims.csv unless given.")
@click.option("--csv-bom", is_flag=True, default=False,
              help="Start CSV sheets with a UTF-8 byte-order mark (Excel on Windows needs it "
                   "for accented names).")
@click.option("--277ca", "ack_dir", type=click.Path(file_okay=False), metavar="DIR",
              help="Write the acknowledgements per input into this folder: a 277CA, a TA1 "
                   "for a broken envelope (made if missing; a rerun replaces an input's "
                   "earlier ones).")
@click.option("--999", "ack_999", is_flag=True,
              help="Also write the 999 of the implementation-guide check per input into the "
                   "--277ca folder (<input>.999.x12).")
@click.option("-q", "--quiet", is_flag=True, help="No report: the exit code says it all.")
@click.option("-v", "--verbose", is_flag=True,
              help="List accepted claims too in the text summary.")
@click.option("--statistics", is_flag=True,
              help="After the report, count the findings per rule with the claims each "
                   "rejected and the charges at risk (on standard error when a JSON, CSV or "
                   "HTML report goes to standard output).")
@click.option("--color/--no-color", "color", default=None,
              help="Colour the text report (default: on a terminal, unless NO_COLOR is set).")
@click.option("--jobs", "-j", type=click.IntRange(1), default=None,
              help="Processes to share the work of a big run (default: every core for "
                   "8 MB of input or more, one below). The results are the same with any "
                   "number.")
@verdict_options("check")
@click.pass_context
def check(ctx: click.Context, files: tuple[str, ...], fmt: str | None, output: str | None,
          recursive: bool, show_phi: bool, csv_claims: str | None, csv_bom: bool,
          ack_dir: str | None, ack_999: bool, quiet: bool, verbose: bool, statistics: bool,
          color: bool | None, jobs: int | None, **settings: Any) -> None:
    """Scrub 837 FILES (a folder: its files; a zip or gzip: the 837s in it; - : standard
    input) before they go out.

    Exit status: 0 all claims accepted, 1 a claim or envelope rejected (or a
    warning, with --fail-on warn), 2 an unreadable input or a usage error.

    \b
    Examples:
        scrub check fixtures/837p-multi.x12
        scrub check fixtures/837p-multi.x12 --format json
        scrub check claims/ -o report.html      # the format follows the extension
        scrub check claims/ --recursive         # and every folder inside
        scrub check batch.x12 --277ca acks/ --999
        scrub check claims/ --format csv --output r.csv   # r.csv and r.claims.csv
        scrub check batch.x12 --record          # these claims are being sent
        scrub check big-batch.x12 --jobs 2      # two processes
        scrub check batch.x12 --ncci-ptp ccipra-f1.zip --mue mue-practitioner.zip
        cat batch.x12 | scrub check - --format json
    """
    if output and output.endswith(("/", os.sep)):  # -o was the acknowledgements folder once
        raise click.UsageError(f"-o/--output {output!r} is the report file; the "
                               "acknowledgements folder is --277ca DIR")
    fmt = fmt or (format_for(output) if output else None) or "text"
    claims_sheet = csv_claims or claims_sheet_beside(output if fmt == "csv" else None)
    paths = _inputs(files, recursive, outputs=(output, ack_dir, claims_sheet))
    options = _scrub_options(ctx, "check", settings)
    if ack_999 and not ack_dir:
        raise click.UsageError("--999 writes into the acknowledgements folder: give --277ca DIR")
    if ack_999 and not options.conformance:
        raise click.UsageError("--999 needs the implementation-guide check: drop --no-ig")
    try:
        for target in (output, claims_sheet):
            if target and not quiet:
                writable_folder(target)
        if ack_dir:
            ack_folder(ack_dir)
    except OutputError as exc:
        _cannot_write(exc)
    with contextlib.ExitStack() as stack:
        if quiet:
            out: TextIO = stack.enter_context(open(os.devnull, "w"))
        elif output:
            out = stack.enter_context(open_private(output))
        else:
            out = sys.stdout
        extra: list[Any] = [StatisticsSink(_statistics_stream(fmt, out))] if statistics else []
        if claims_sheet and not quiet:
            from scrubber.emit.csv_report import ClaimSheet

            extra.append(ClaimSheet(stack.enter_context(open_private(claims_sheet)),
                                    show_phi=show_phi, bom=csv_bom))
        try:
            with _progress(tuple(paths), quiet=quiet) as progress:
                if progress is not None and options.conformance:
                    progress.stage("loading the implementation guides (compiled once, on "
                                   "first use)")
                    load_guides()
                # the report is closed before the accepted claims are sent in the ledger
                outcome = check_files(paths, out, fmt=fmt, options=options, ack_dir=ack_dir,
                                      ack_999=ack_999, progress=progress, sinks=extra,
                                      jobs=jobs if jobs is not None else default_jobs(paths),
                                      style=ReportStyle(show_phi=show_phi,
                                                        color=use_color(color, out),
                                                        verbose=verbose, csv_bom=csv_bom),
                                      finish=stack.close)
        except (LedgerError, ResourceError) as exc:
            click.echo(f"scrub: {exc}", err=True)
            sys.exit(EXIT_UNREADABLE)
        except OutputError as exc:
            _cannot_write(exc)
        except OSError as exc:
            if out is not sys.stdout or exc.errno not in _WRITE_ERRORS:
                raise
            _cannot_write(OutputError(exc.errno, exc.strerror, "standard output"))
    _say_not_scrubbed(outcome.not_scrubbed)
    if options.record and not quiet and sys.stderr.isatty():
        click.echo(f"scrub: accepted claims are recorded in the claim ledger {options.ledger}",
                   err=True)
    failed = outcome.failed(options.fail_on)
    sys.exit(EXIT_UNREADABLE if outcome.unreadable else EXIT_REJECTED if failed else EXIT_OK)


def claims_sheet_beside(output: str | None) -> str | None:
    """Where the per-claim sheet goes beside a per-finding CSV file: NAME.claims.csv."""
    if not output:
        return None
    path = Path(output)
    stem = path.name[:-len(path.suffix)] if path.suffix.lower() == ".csv" else path.name
    return str(path.with_name(f"{stem}.claims.csv"))


#: a write that failed for want of room or a device (a report redirected onto a full disk)
_WRITE_ERRORS = frozenset((errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG))


def _cannot_write(exc: OutputError) -> None:
    """A report or acknowledgement that cannot be written: one line, exit 2, nothing half-made."""
    click.echo(f"scrub: {_printable(str(exc))}", err=True)
    if exc.filename == "standard output":  # what is still buffered for it goes nowhere
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)
    sys.exit(EXIT_UNREADABLE)


def _inputs(files: tuple[str, ...], recursive: bool = False,
            outputs: tuple[str | None, ...] = ()) -> list[str]:
    """The inputs FILES name: a folder stands for its files; its subfolders are searched
    with ``recursive``, else named on stderr. What the run writes (``outputs``: the
    report file, the acknowledgements folder) is never one of a folder's inputs, so a
    rerun does not scrub the last run's report or acknowledgements."""
    ours = [os.path.realpath(path) for path in outputs if path]
    paths: list[str] = []
    for name in files:
        if name != "-" and os.path.isdir(name):
            found, folders = folder_inputs(name, recursive=recursive)
            found = [path for path in found if not any(
                os.path.realpath(path) == mine or
                os.path.realpath(path).startswith(mine + os.sep) for mine in ours)]
            if not found:
                raise click.UsageError(f"{name}: no files in this folder")
            for folder in folders:
                why = "a linked folder, not followed" if recursive else \
                    "not searched (give --recursive)"
                click.echo(f"scrub: {_printable(folder)}: a folder inside {name}, {why}",
                           err=True)
            paths += found
        else:
            paths.append(name)
    return paths


def use_color(flag: bool | None, out: TextIO) -> bool:
    """--color/--no-color when given; else colour on a terminal unless NO_COLOR is set."""
    if flag is not None:
        return flag
    return bool(out.isatty()) and not os.environ.get("NO_COLOR")


def _statistics_stream(fmt: str, out: TextIO) -> TextIO:
    """Where --statistics goes: after a text report, else where it cannot spoil the report."""
    if fmt == "text" or out is not sys.stdout:
        return sys.stdout
    return sys.stderr


def _say_not_scrubbed(not_scrubbed: list[tuple[str, str]]) -> None:
    """Name each input that could not be read on stderr, with why: none is skipped in silence."""
    for name, reason in not_scrubbed:
        said = reason if name in reason else f"{name}: {reason}"
        click.echo(f"scrub: not scrubbed: {_printable(said)}", err=True)


def _printable(text: str) -> str:
    """``text`` with control characters shown as escapes: a file name cannot drive a terminal."""
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


class StatusLine:
    """One line on standard error that says what a long run is doing, and how far it is.

    Nothing shows for a run that ends within ``delay`` seconds; after that the
    line is redrawn a few times a second until the run ends, then cleared.
    It covers every stage, the first run's compile of the implementation
    guides included, so a person is never left staring at a silent terminal.
    """

    def __init__(self, sizes: dict[str, int], stream: TextIO, *, delay: float = 1.0,
                 period: float = 0.2):
        self.sizes = sizes
        self.stream = stream
        self.delay, self.period = delay, period
        self.label = "starting"
        self.name: str | None = None
        self.offset = 0
        self.finished = 0  # bytes of the sources already through
        self.width = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="scrub-status", daemon=True)
        self._thread.start()

    def stage(self, label: str) -> None:
        self.label = label

    def advance(self, name: str, offset: int) -> None:
        if name != self.name:
            if self.name is not None:
                self.finished += self.sizes.get(self.name, 0)
            self.name, self.offset = name, 0
        self.offset = max(self.offset, offset)

    def _text(self) -> str:
        total = sum(self.sizes.values())
        text = f"scrub: {self.label}"
        if self.label.startswith("scrubbing") and total:
            done = self.finished + self.offset
            text += f" {100 * done / total:3.0f}% of {total / 1e6:.1f} MB"
        return _printable(text)

    def _run(self) -> None:
        if self._stop.wait(self.delay):
            return
        while not self._stop.is_set():
            text = self._text()
            self.stream.write("\r" + text.ljust(self.width))
            self.stream.flush()
            self.width = len(text)
            self._stop.wait(self.period)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        if self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()


@contextlib.contextmanager
def _progress(files: tuple[str, ...], *, quiet: bool = False) -> Iterator[StatusLine | None]:
    """A status line on standard error when it is a terminal (and the run is not quiet)."""
    if quiet or not sys.stderr.isatty():
        yield None
        return
    sizes = {name: os.path.getsize(name) for name in files
             if name != "-" and os.path.isfile(name)}
    status = StatusLine(sizes, sys.stderr)
    try:
        yield status
    finally:
        status.close()


@main.command(short_help="Accepted claims into a batch ready to send, the rest to hold.")
@click.argument("files", nargs=-1, required=True, type=click.Path(allow_dash=True))
@click.option("--accepted", "accepted", required=True, metavar="OUT.x12",
              type=click.Path(dir_okay=False),
              help="The accepted claims, as a new 837 ready to send (not written when none).")
@click.option("--rejected", "held", required=True, metavar="HOLD.x12",
              type=click.Path(dir_okay=False),
              help="The rejected claims and those held with them, as a new 837 to fix.")
@click.option("--report", "report", type=click.Path(dir_okay=False),
              help="The scrub's report (owner-only; default: beside the hold file, "
                   "HOLD.report.txt, or .json/.html/.csv with --format).")
@click.option("--format", "fmt", type=FormatName(), default="text", show_default=True,
              help="The report's format.")
@click.option("--show-phi", is_flag=True, help="Show patient names in the report.")
@click.option("-q", "--quiet", is_flag=True, help="No summary: the exit code says it all.")
@click.option("--jobs", "-j", type=click.IntRange(1), default=None,
              help="Processes to share the scrub (as for check); the copy is one reading.")
@verdict_options("split")
@click.pass_context
def split(ctx: click.Context, files: tuple[str, ...], accepted: str, held: str,
          report: str | None, fmt: str, show_phi: bool, quiet: bool, jobs: int | None,
          **settings: Any) -> None:
    """Scrub FILES as one run; write the accepted claims to --accepted, the rest to --rejected.

    Each claim is copied as it was sent; its envelopes and HL loops are rebuilt
    around it with fresh control numbers. A claim that conflicts with a rejected
    claim of the run (the same patient and day) is held with it. With --record,
    only the accepted batch's claims are recorded, once it is written.

    Exit status: 0 every claim accepted, 1 some held, 2 an unreadable input, a
    claim that is in neither file, or a usage error.

    \b
    Examples:
        scrub split batch.x12 --accepted today.x12 --rejected hold.x12
        scrub split batch.x12 --accepted today.x12 --rejected hold.x12 --record
        scrub split a.x12 b.x12 --accepted out.x12 --rejected hold.x12 --format json
    """
    from scrubber.emit.sinks import REPORT_FORMATS
    from scrubber.split import SplitError
    from scrubber.split import split as split_run

    paths = _inputs(files)
    options = _scrub_options(ctx, "split", settings)
    if report is None:
        held_path = Path(held)
        report = str(held_path.with_name(
            f"{held_path.stem}.report.{REPORT_FORMATS[fmt].suffix}"))
    sources: list[tuple[Any, str]] = []
    for path in paths:  # a zip or gzip: the 837s inside (archive!member), as check reads them
        sources += [(sys.stdin.buffer, "<stdin>")] if path == "-" else expand(path)
    try:
        result = split_run(sources, accepted, held, options=options, report=report, fmt=fmt,
                           style=ReportStyle(show_phi=show_phi),
                           jobs=jobs if jobs is not None else default_jobs(paths))
    except (SplitError, LedgerError, ResourceError, OSError) as exc:
        click.echo(f"scrub: {_printable(str(exc))}", err=True)
        sys.exit(EXIT_UNREADABLE)
    _say_not_scrubbed(result.outcome.not_scrubbed)
    for name, message in result.outside:
        click.echo(f"scrub: in neither file: {_printable(name)}: {_printable(message)}",
                   err=True)
    if not quiet:
        click.echo(split_summary(result))
    sys.exit(EXIT_UNREADABLE if not result.complete else EXIT_REJECTED if result.held
             else EXIT_OK)


def split_summary(result: Any) -> str:
    """What a split wrote, in a few lines for the person who sends the batch."""
    def where(path: str | None, controls: tuple[str, ...]) -> str:
        if path is None:
            return "not written (no claims)"
        return f"{path} (ISA13 {', '.join(controls)})"

    lines = [f"{result.claims} claims: {result.accepted} accepted -> "
             f"{where(result.accepted_file, result.accepted_controls)}",
             f"{result.held} held -> {where(result.held_file, result.held_controls)}"
             + (f" ({result.rejected} rejected, {len(result.partners)} held with a "
                "rejected partner)" if result.partners else "")]
    for partner in result.partners:
        lines.append(f"  held with its partner: {partner.claim_id} (conflicts with "
                     f"{', '.join(partner.rejected_with)}, rejected)")
    if result.report:
        lines.append(f"report: {result.report}")
    return "\n".join(lines)


@main.command("fix", short_help="Mend an 837's mechanical faults, never what is billed.")
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Write the fixed file here (may be FILE itself); without it, only list "
                   "what would be fixed.")
@click.option("--diff", is_flag=True, help="Print a unified diff of the changes.")
@click.option("--unsafe-fixes", is_flag=True,
              help="Also apply the fixes that change what is billed (each listed).")
@click.option("--list", "list_fixes", is_flag=True, help="List what scrub fix can mend.")
@click.option("-q", "--quiet", is_flag=True, help="Do not list the fixes.")
def fix_command(file: str | None, output: str | None, diff: bool, unsafe_fixes: bool,
                list_fixes: bool, quiet: bool) -> None:
    """Fix the mechanical faults of FILE (an 837) into --output; list every fix.

    Safe fixes cannot change what is billed: SE/GE/IEA counts and control
    numbers, a byte-order mark, white space and line breaks between segments,
    empty segments, trailing separators, lower-case codes where the code list is
    upper-case, a missing final terminator. Unsafe fixes (--unsafe-fixes) do
    what a rule's message says (CLM02 set to the sum of the lines, 96523 with
    one unit). Running it on its own output changes nothing.

    Exit status: 0 done, 2 an unreadable input or a usage error.

    \b
    Examples:
        scrub fix batch.x12 -o fixed.x12
        scrub fix batch.x12 --diff
        scrub fix batch.x12 -o fixed.x12 --unsafe-fixes
    """
    from scrubber.fix import FIXERS, diff_text, fix_file

    if list_fixes:
        for fixer in FIXERS:
            click.echo(f"{fixer.rule:<24} {'safe  ' if fixer.safe else 'unsafe'}  {fixer.what}")
        return
    if file is None:
        raise click.UsageError("give FILE (or --list)")
    try:
        if diff:  # read before: the output may be the input itself
            with open(file, "rb") as handle:
                before = handle.read()
        result, left_out = fix_file(file, output, unsafe=unsafe_fixes)
    except OSError as exc:
        click.echo(f"scrub: {_printable(file)}: {exc.strerror or exc}", err=True)
        sys.exit(EXIT_UNREADABLE)
    if not quiet:
        for one in result.fixes:
            click.echo(_printable(one.describe()))
        where = f"; written to {_printable(output)}" if output else \
            " (nothing written: give -o FILE)"
        said = f"{len(result.fixes)} fix{'es' if len(result.fixes) != 1 else ''}{where}"
        if left_out:
            said += (f"; {left_out} unsafe fix{'es' if left_out != 1 else ''} not applied "
                     "(they change what is billed): --unsafe-fixes")
        click.echo(said, err=True)
    if diff and result.fixes:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="scrub-fix-") as folder:
            shown = output or os.path.join(folder, "fixed.x12")
            if not output:
                fix_file(file, shown, unsafe=unsafe_fixes)
            with open(shown, "rb") as handle:
                after = handle.read()
        click.echo(diff_text(before, after, Path(file).name), nl=False)


@main.command(short_help="List the rules with severity and 277CA status, or explain one.")
@click.argument("rule_id", metavar="[RULE]", required=False)
@click.option("--profile", "profile_path", type=click.Path(dir_okay=False),
              help="Show severities as this profile sets them.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="A table for people, or JSON for tools.")
def rules(rule_id: str | None, profile_path: str | None, fmt: str) -> None:
    """List every rule: id, severity, 277CA status, data it needs, fix, summary; or explain RULE.

    RULE is a rule id (its summary, severity, status code, source and
    examples) or a prefix such as snip- (the rules it covers). The problem
    codes reports print (ig-*, env-*, syntax-*, file-*: the payer's own
    checks of the input) are listed after the rules, with how a payer
    answers them (TA1 or 999) in the status column; RULE may name one, or a
    family such as ig.

    \b
    Example:
        scrub rules
        scrub rules 96523-units
        scrub rules snip- --format json
        scrub rules ig-hl-sequence
        scrub rules --profile my-payer.xml
    """
    import json

    from scrubber.problems import (
        PROBLEMS,
        explain_problem,
        problem_code,
        problem_dict,
        problems_of,
    )
    from scrubber.rules.docs import (
        data_text,
        explain,
        fix_text,
        rule_dict,
        severity_text,
        status_text,
    )
    from scrubber.rules.registry import all_rules, get_rule, selected

    try:
        profile = load_profile(profile_path)
    except ProfileError as exc:
        raise click.UsageError(str(exc)) from None
    found = all_rules()
    codes = tuple(PROBLEMS.values())  # the problem codes reports print beside the rules
    if rule_id:
        one, code = get_rule(rule_id), problem_code(rule_id)
        if fmt == "text" and one is not None:
            click.echo(explain(one, profile), nl=False)
            return
        if fmt == "text" and code is not None:
            click.echo(explain_problem(code), nl=False)
            return
        try:
            found = (one,) if one is not None else selected(found, (rule_id,))
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
        codes = (code,) if code is not None else problems_of((rule_id,)) if one is None else ()
    if fmt == "json":
        click.echo(json.dumps([rule_dict(r, profile) for r in found]
                              + [problem_dict(c) for c in codes], indent=1))
        return
    table = [(r.id, severity_text(r, profile), status_text(r), data_text(r), fix_text(r),
              r.summary) for r in found]
    table += [(c.id, "reject", c.answer, "-", "-", c.summary) for c in codes]
    widths = [max(len(row[n]) for row in table) for n in range(5)]
    for row in table:
        click.echo("  ".join(f"{cell:<{w}}" for cell, w in zip(row, widths, strict=False))
                   + "  " + row[5])


@main.group(short_help="The payer profile: print the default one to start your own.")
def profile() -> None:
    """The payer profile (XML): severities, rules switched off, term and code lists.

    \b
    Example:
        scrub profile show > my-payer.xml
    """


@profile.command("show", short_help="Print the default profile (XML).")
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Write it to this file (whole or absent) instead of standard output.")
def profile_show(output: str | None) -> None:
    """Print the default profile, the starting point for a payer's own.

    \b
    Example:
        scrub profile show -o my-payer.xml
        scrub check batch.x12 --profile my-payer.xml
    """
    from scrubber.rules.profile import DEFAULT_PROFILE, maps_dir

    text = (maps_dir() / DEFAULT_PROFILE).read_text(encoding="utf-8")
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        writable_folder(output)
        with open_private(output) as out:
            out.write(text)
    except OutputError as exc:
        _cannot_write(exc)


@main.command(short_help="Watch ROOT/inbox; file inputs as accepted, rejected or failed.")
@click.argument("root", type=click.Path(file_okay=False), required=False)
@click.option("--workers", type=click.IntRange(1), default=os.cpu_count() or 1,
              show_default=True, help="Worker processes scrubbing files at once.")
@click.option("--settle", type=click.FloatRange(0), default=2.0, show_default=True,
              help="Seconds a file's size and mtime must stay still before it is taken.")
@click.option("--poll", is_flag=True,
              help="Poll only, without file events (for network filesystems).")
@click.option("--once", is_flag=True, help="Process what is in the inbox, then exit.")
@click.option("--report", "reports", type=FormatName(), multiple=True,
              help="A report format to write per input into ROOT/reports (repeatable; "
                   "default: json, text and html).")
@click.option("--split", "split_files", is_flag=True,
              help="Split a file with accepted and rejected claims (as scrub split): its "
                   "accepted claims go to accepted/ as a batch of their own, the rest to "
                   "rejected/, the file as it came to reports/.")
@verdict_options("watch")
@click.pass_context
def watch(ctx: click.Context, root: str | None, workers: int, settle: float, poll: bool,
          once: bool, reports: tuple[str, ...], split_files: bool, **settings: Any) -> None:
    """Watch ROOT/inbox; file each input into accepted/, rejected/ or failed/.

    Reports go to ROOT/reports. Write files as NAME.tmp and rename them when
    complete (or let them settle). Stops cleanly on SIGTERM or Ctrl-C. With
    --once, the exit status is 2 when an inbox entry could not be taken (it
    stays in inbox/, named on the last line), else 0.

    \b
    Example:
        scrub watch /srv/claims --workers 2
    """
    import logging

    root = root or ctx.lookup_default("root")
    if not root:
        raise click.UsageError("give ROOT, or root = ... under [watch] in scrub.toml")
    from scrubber.watch import WatchSettings, run_watch

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    # a broken profile, companion, resource file or ledger is refused before a file is taken
    options = _scrub_options(ctx, "watch", settings)
    _usable_ledger(options)
    settings_ = WatchSettings(root=Path(root), settle_seconds=settle, workers=workers,
                              use_events=not poll, options=options,
                              reports=reports or DEFAULT_REPORTS, split=split_files)
    outcome = run_watch(settings_, once=once)
    if once and outcome.untaken:  # named on the last line: filed nowhere, so not processed
        sys.exit(EXIT_UNREADABLE)


@main.command(short_help="Scrub a day of 837 files on Apache Spark into Parquet tables.")
@click.argument("files", nargs=-1, required=True, type=click.Path())
@click.option("--out", "out", required=True, type=click.Path(file_okay=False),
              help="Folder for the Parquet tables (claims, service_lines, findings, problems; "
                   "replaced) and acks/ (a 277CA, TA1 and 999 per input).")
@click.option("--master", metavar="URL",
              help="Spark master, e.g. local[2] (default: spark-submit's, else local[*]).")
@click.option("--spark-conf", "spark_conf", multiple=True, metavar="KEY=VALUE",
              help="A Spark setting (repeatable), e.g. spark.executor.memory=4g.")
@click.option("--scope", type=click.Choice(["run", "file"]), default="run", show_default=True,
              help="Day context over every file of the run, or over each file on its own "
                   "(as scrub check FILE... does).")
@click.option("--999/--no-999", "ack_999", default=True, show_default=True,
              help="Write the 999 of the implementation-guide check per input.")
@click.option("--piece-mb", type=click.IntRange(1), default=64, show_default=True,
              help="A larger file is cut at interchange boundaries into pieces of this size.")
@click.option("-r", "--recursive", is_flag=True,
              help="Search the folders among FILES and every folder inside them.")
@click.option("--json", "as_json", is_flag=True, help="The summary line as JSON.")
@verdict_options("batch")
@click.pass_context
def batch(ctx: click.Context, files: tuple[str, ...], out: str, master: str | None,
          spark_conf: tuple[str, ...], scope: str, ack_999: bool, piece_mb: int,
          recursive: bool, as_json: bool, **settings: Any) -> None:
    """Scrub a day of 837 FILES (folders: their files) on Apache Spark into --out.

    The verdicts are those of scrub check (docs/scale.md): the same settings,
    the same ledger (on a cluster, give every executor one: a postgresql:// URL,
    or --no-ledger). Needs pyspark: pip install pyspark (or, from a checkout,
    pip install '.[spark]'). Exit status as for check.

    \b
    Examples:
        scrub batch /srv/claims/2026-12-01 --out /srv/scrubbed/2026-12-01 --master local[2]
        spark-submit --master yarn .../scrubber/spark/__main__.py FILES --out DIR
    """
    from scrubber.spark.run import BatchError, run_batch

    options = _scrub_options(ctx, "batch", settings)
    conf = []
    for item in spark_conf:
        key, equals, value = item.partition("=")
        if not equals or not key:
            raise click.UsageError(f"--spark-conf {item!r}: write KEY=VALUE")
        conf.append((key.strip(), value.strip()))
    try:
        result = run_batch(_inputs(files, recursive), out, options=options, master=master,
                           conf=conf, scope=scope, ack_999=ack_999 and options.conformance,
                           piece_bytes=piece_mb << 20)
    except BatchError as exc:
        click.echo(f"scrub: {exc}", err=True)
        sys.exit(EXIT_UNREADABLE)
    _say_not_scrubbed(result.not_scrubbed)
    click.echo(result.as_json() if as_json else f"{result.summary()}; tables in {out}")
    sys.exit(EXIT_UNREADABLE if result.unreadable
             else EXIT_REJECTED if result.failed(options.fail_on) else EXIT_OK)


@main.command(short_help="Serve the HTTP intake (POST /v1/validate, /v1/submissions).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (put a TLS proxy in front for anything but localhost).")
@click.option("--port", type=click.IntRange(0, 65535), default=8837, show_default=True)
@click.option("--workers", type=click.IntRange(1), default=1, show_default=True,
              help="Worker processes; they share the ledger and the submission store.")
@click.option("--data-dir", type=click.Path(file_okay=False),
              help="Spool and kept reports, owner-only (default: $XDG_STATE_HOME/scrubber/serve).")
@click.option("--store", metavar="PATH|URL",
              help="Submissions and idempotency keys: a SQLite file or a postgresql:// URL "
                   "(default: in --data-dir).")
@click.option("--tokens", "tokens_file", type=click.Path(dir_okay=False),
              help="Bearer tokens, one client:token a line (owner-only file).")
@click.option("--tokens-env", default="SCRUB_SERVE_TOKENS", show_default=True,
              help="Environment variable with client:token entries (comma-separated).")
@click.option("--max-body", type=click.IntRange(1), default=64 * 1024 * 1024,
              show_default=True, help="Largest body in bytes; a larger one gets 413.")
@click.option("--retention-days", type=click.IntRange(0), default=30, show_default=True,
              help="Remove a submission's reports and acknowledgements after this many days "
                   "(0: keep them).")
@click.option("--max-connections", type=click.IntRange(16), default=1000, show_default=True,
              help="Open connections per worker (lowered to fit its file-descriptor limit).")
@click.option("--header-timeout", type=click.FloatRange(0.5), default=10.0, show_default=True,
              help="Seconds a client has to send a whole request head.")
@click.option("--body-timeout", type=click.FloatRange(0.5), default=20.0, show_default=True,
              help="Seconds of allowance for a body; then it must come at 1 KiB/s or more.")
@verdict_options("serve")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, workers: int, data_dir: str | None,
          store: str | None, tokens_file: str | None, tokens_env: str, max_body: int,
          retention_days: int, max_connections: int, header_timeout: float,
          body_timeout: float, **settings: Any) -> None:
    """Serve the HTTP intake: POST /v1/validate, POST /v1/submissions (docs/serve.md).

    \b
    Example:
        SCRUB_SERVE_TOKENS=pm-system:$(openssl rand -hex 24) scrub serve --workers 4
    """
    from scrubber.serve.auth import TokenError, load_tokens
    from scrubber.serve.server import ServeError, run_server
    from scrubber.serve.settings import ClientLimits, ServeSettings
    from scrubber.serve.store import StoreError, open_submissions

    try:
        clients = load_tokens(tokens_file, tokens_env)
    except TokenError as exc:
        raise click.UsageError(str(exc)) from None
    options = _scrub_options(ctx, "serve", settings)
    _usable_ledger(options)
    from scrubber.paths import state_dir

    serve_settings = ServeSettings(data_dir=Path(data_dir or state_dir() / "serve"),
                                   clients=clients, options=options, store=store,
                                   max_body=max_body, retention_days=retention_days,
                                   host=host, port=port, workers=workers,
                                   limits=ClientLimits(max_connections=max_connections,
                                                       header_timeout=header_timeout,
                                                       body_timeout=body_timeout))
    try:
        serve_settings.prepare()
        open_submissions(serve_settings.store_target).close()
    except (StoreError, OSError) as exc:
        raise click.UsageError(str(exc)) from None
    try:  # "serving on" once the port is bound: never for a port another process holds
        status = run_server(serve_settings)
    except ServeError as exc:
        click.echo(f"scrub: {exc}", err=True)
        sys.exit(EXIT_UNREADABLE)
    sys.exit(status)


@main.command(hidden=True)
def version() -> None:
    """Print the version, as ``scrub --version`` does (kept for scripts that call it).

    \b
    Example:
        scrub --version
    """
    click.echo(f"scrub {__version__}")


main.add_command(ledger_group, "ledger")
main.add_command(data_group, "data")

if __name__ == "__main__":  # pragma: no cover
    main()
