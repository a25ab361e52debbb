"""The ``scrub`` command line: options in, one library call, an exit code out.

Exit codes: 0 every file read cleanly (and every claim accepted); 1 a problem
a payer would reject (a broken envelope, a rejected claim); 2 an input that
could not be read at all, or a usage error.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Any, TextIO

import click

from scrubber import __version__
from scrubber.api import check_files, folder_inputs, open_private
from scrubber.config import ConfigError, load_config
from scrubber.core import AckIdentity, ScrubOptions
from scrubber.emit.sinks import ReportStyle, report_formats
from scrubber.ledger import Ledger, LedgerError
from scrubber.rules import Profile, ProfileError, load_profile, rules_table
from scrubber.rules.resources import ResourceError, Resources, load_resources, resource_kinds

EXIT_OK, EXIT_REJECTED, EXIT_UNREADABLE = 0, 1, 2


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="scrub")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="Site settings (TOML); default: ./scrub.toml when present.")
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
        ctx.default_map = load_config(main, config_path)
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


def resource_options(command: Any) -> Any:
    """The options of every rule pack's outside data (NCCI tables ...), from their registry."""
    for kind in reversed(resource_kinds()):
        for option in reversed(kind.options):
            command = click.option(f"--{option.name}", option.name.replace("-", "_"),
                                   multiple=True, metavar=option.metavar,
                                   type=click.Path(dir_okay=False), help=option.help)(command)
    return command


def _resources(values: dict[str, Any]) -> Resources:
    """Load the resources the options name; a file that cannot be used is a usage error."""
    try:
        return load_resources({kind_option.name: values.get(kind_option.name.replace("-", "_"))
                               or () for kind in resource_kinds()
                               for kind_option in kind.options})
    except ResourceError as exc:
        raise click.UsageError(str(exc)) from None


def _from_command_line(ctx: click.Context, name: str) -> bool:
    return ctx.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE


def _ledger_target(ctx: click.Context, ledger: str | None, no_ledger: bool) -> str | None:
    """The ledger to use: --ledger, else the per-user default, None with --no-ledger.

    The command line always wins over scrub.toml: ``ledger = ...`` in the file
    and ``--no-ledger`` given (or the other way round) is not a conflict.
    """
    if ledger and no_ledger:
        if _from_command_line(ctx, "no_ledger") and not _from_command_line(ctx, "ledger_path"):
            ledger = None
        elif _from_command_line(ctx, "ledger_path") and not _from_command_line(ctx, "no_ledger"):
            no_ledger = False
        else:
            raise click.UsageError("--ledger and --no-ledger exclude each other")
    if no_ledger:
        return None
    from scrubber.ledger import default_ledger_path

    return ledger or str(default_ledger_path())


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(allow_dash=True))
@click.option("--format", "fmt", type=FormatName(), default="text", show_default=True,
              help="The report: " + "; ".join(f"{f.name}, {f.help}" for f in report_formats())
              + ".")
@click.option("--output", "output", type=click.Path(dir_okay=False, writable=True),
              help="Write the report to this file (owner-only: it names patients) instead of "
                   "standard output.")
@click.option("--show-phi", is_flag=True,
              help="Show patient names in the text and HTML reports (masked by default; the "
                   "JSON report always carries them).")
@click.option("--profile", "profile_path", type=click.Path(dir_okay=False),
              help="Payer profile (XML) with severities, switched-off rules and code lists.")
@click.option("--277ca", "-o", "ack_dir", type=click.Path(file_okay=False),
              help="Write a 277CA claim acknowledgement per input into this folder.")
@click.option("--999", "ack_999", is_flag=True,
              help="Also write the 999 of the implementation-guide check per input into the "
                   "--277ca folder (<input>.999.x12).")
@click.option("--ig/--no-ig", "conformance", default=True, show_default=True,
              help="Check implementation-guide conformance first, as a payer's front end "
                   "does; claims of a rejected transaction set are held, not scrubbed.")
@click.option("--companion", metavar="NAME",
              help="Lay a payer companion guide of x12_maps/ig-overrides.xml over the "
                   "implementation guides.")
@click.option("--ack-sender", default="SCRUBBER", show_default=True,
              help="Our id in the acknowledgements (ISA06/GS02 of the 277CA and TA1).")
@click.option("--ack-name", default="SCRUBBER", show_default=True,
              help="Our name as information source in the 277CA (2100A NM103).")
@click.option("--ledger", "ledger_path", metavar="PATH|URL",
              help="Claim-history ledger to check against (default: a per-user ledger under "
                   "$XDG_STATE_HOME/scrubber).")
@click.option("--no-ledger", is_flag=True,
              help="Check the files on their own: no history.")
@click.option("--record/--no-record", default=False, show_default=True,
              help="Record the accepted claims in the ledger: say it when the files are "
                   "being sent; a check alone records nothing.")
@click.option("-q", "--quiet", is_flag=True, help="No report: the exit code says it all.")
@click.option("-v", "--verbose", is_flag=True,
              help="List accepted claims too in the text summary.")
@click.option("--fail-on", type=click.Choice(["reject", "warn"]), default="reject",
              show_default=True, help="Exit 1 on rejected claims only, or on warnings too.")
@resource_options
@click.pass_context
def check(ctx: click.Context, files: tuple[str, ...], fmt: str, output: str | None,
          show_phi: bool, profile_path: str | None, ack_dir: str | None, ack_999: bool,
          conformance: bool, companion: str | None, ack_sender: str, ack_name: str,
          ledger_path: str | None, no_ledger: bool, record: bool, quiet: bool, verbose: bool,
          fail_on: str, **resource_values: Any) -> None:
    """Scrub 837 FILES (a folder: its X12 files; - : standard input) before they go out.

    Exit status: 0 all claims accepted, 1 a claim or envelope rejected (or a
    warning, with --fail-on warn), 2 an unreadable input or a usage error.

    \b
    Examples:
        scrub check fixtures/837p-multi.x12
        scrub check fixtures/837p-multi.x12 --format json
        scrub check batch.x12 --277ca acks/ --999
        scrub check batch.x12 --record          # these claims are being sent
        scrub check batch.x12 --ncci-ptp ccipra-f1.zip --mue mue-practitioner.zip
        cat batch.x12 | scrub check - --format json
    """
    paths = _inputs(files)
    if fmt == "html" and len(paths) > 1:
        raise click.UsageError("--format html writes one page: give one file per run")
    if ack_999 and not ack_dir:
        raise click.UsageError("--999 writes into the acknowledgements folder: give --277ca DIR")
    if ack_999 and not conformance:
        raise click.UsageError("--999 needs the implementation-guide check: drop --no-ig")
    ledger = _ledger_target(ctx, ledger_path, no_ledger)
    if record and ledger is None:
        raise click.UsageError("--record needs a ledger: drop --no-ledger")
    options = ScrubOptions(profile=_profile(profile_path), companion=_companion(companion),
                           conformance=conformance, resources=_resources(resource_values),
                           ledger=ledger, record=record, fail_on=fail_on,
                           ack=AckIdentity(sender_id=ack_sender, name=ack_name))
    if ack_dir:
        os.makedirs(ack_dir, mode=0o700, exist_ok=True)
    with contextlib.ExitStack() as stack:
        if quiet:
            out: TextIO = stack.enter_context(open(os.devnull, "w"))
        elif output:
            out = stack.enter_context(open_private(output))
        else:
            out = sys.stdout
        try:
            with _progress(tuple(paths)) as progress:
                outcome = check_files(paths, out, fmt=fmt, options=options, ack_dir=ack_dir,
                                      ack_999=ack_999, progress=progress,
                                      style=ReportStyle(show_phi=show_phi,
                                                        color=out.isatty(), verbose=verbose))
        except LedgerError as exc:
            click.echo(f"scrub: {exc}", err=True)
            sys.exit(EXIT_UNREADABLE)
    for name, reason in outcome.not_scrubbed:
        said = reason if name in reason else f"{name}: {reason}"
        click.echo(f"scrub: not scrubbed: {_printable(said)}", err=True)
    if record and not quiet and sys.stderr.isatty():
        click.echo(f"scrub: accepted claims are recorded in the claim ledger {ledger}",
                   err=True)
    failed = outcome.failed(fail_on)
    sys.exit(EXIT_UNREADABLE if outcome.unreadable else EXIT_REJECTED if failed else EXIT_OK)


def _inputs(files: tuple[str, ...]) -> list[str]:
    """The inputs FILES name: a folder stands for its files, its subfolders are named on stderr."""
    paths: list[str] = []
    for name in files:
        if name != "-" and os.path.isdir(name):
            found, folders = folder_inputs(name)
            if not found:
                raise click.UsageError(f"{name}: no files in this folder")
            for folder in folders:
                click.echo(f"scrub: {folder}: a folder inside {name}, not searched", err=True)
            paths += found
        else:
            paths.append(name)
    return paths


def _printable(text: str) -> str:
    """``text`` with control characters shown as escapes: a file name cannot drive a terminal."""
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


PROGRESS_BYTES = 20 * 1024 * 1024  # below this a scrub is over before a bar helps


@contextlib.contextmanager
def _progress(files: tuple[str, ...]):
    """A progress bar on standard error for large inputs, when it is a terminal."""
    sizes = {name: os.path.getsize(name) for name in files
             if name != "-" and os.path.isfile(name)}
    total = sum(sizes.values())
    if total < PROGRESS_BYTES or not sys.stderr.isatty():
        yield None
        return
    done = {name: 0 for name in sizes}
    with click.progressbar(length=total, label="scrubbing", file=sys.stderr) as bar:
        def advance(name: str, offset: int) -> None:
            if name in done and offset > done[name]:
                bar.update(offset - done[name])
                done[name] = offset
        yield advance


def _companion(name: str | None) -> str | None:
    """Refuse an unknown companion guide up front, naming the ones there are."""
    from scrubber.ig import OverrideError, load_companions

    if name is None:
        return None
    try:
        known = load_companions()
    except OverrideError as exc:
        raise click.UsageError(str(exc)) from None
    if name not in known:
        raise click.UsageError(f"--companion {name!r}: no such companion guide in "
                               f"x12_maps/ig-overrides.xml (known: {', '.join(sorted(known))})")
    return name


def _profile(path: str | None) -> Profile:
    try:
        return load_profile(path)
    except ProfileError as exc:
        raise click.UsageError(str(exc)) from None


@main.command()
@click.option("--profile", "profile_path", type=click.Path(dir_okay=False),
              help="Show severities as this profile sets them.")
def rules(profile_path: str | None) -> None:
    """List every rule: id, severity, summary.

    \b
    Example:
        scrub rules
        scrub rules --profile my-payer.xml
    """
    table = rules_table(_profile(profile_path))
    width = max(len(rule_id) for rule_id, _, _ in table)
    sev = max(len(severity) for _, severity, _ in table)
    for rule_id, severity, summary in table:
        click.echo(f"{rule_id:<{width}}  {severity:<{sev}}  {summary}")


@main.command()
@click.argument("root", type=click.Path(file_okay=False), required=False)
@click.option("--workers", type=click.IntRange(1), default=os.cpu_count() or 1,
              show_default=True, help="Worker processes scrubbing files at once.")
@click.option("--settle", type=click.FloatRange(0), default=2.0, show_default=True,
              help="Seconds a file's size and mtime must stay still before it is taken.")
@click.option("--poll", is_flag=True,
              help="Poll only, without file events (for network filesystems).")
@click.option("--once", is_flag=True, help="Process what is in the inbox, then exit.")
@click.option("--ledger", "ledger_path", metavar="PATH|URL",
              help="Claim-history ledger (default: the per-user ledger).")
@click.option("--no-ledger", is_flag=True, help="Do not check against or record history.")
@click.option("--record/--no-record", default=True, show_default=True,
              help="Record the accepted claims in the ledger: the watcher is an intake that "
                   "forwards what it accepts.")
@click.option("--profile", "profile_path", type=click.Path(dir_okay=False),
              help="Payer profile (XML) with severities, switched-off rules and code lists.")
@click.option("--companion", metavar="NAME",
              help="Lay a payer companion guide of x12_maps/ig-overrides.xml over the "
                   "implementation guides.")
@resource_options
@click.pass_context
def watch(ctx: click.Context, root: str | None, workers: int, settle: float, poll: bool, once: bool,
          ledger_path: str | None, no_ledger: bool, record: bool, profile_path: str | None,
          companion: str | None, **resource_values: Any) -> None:
    """Watch ROOT/inbox; file each input into accepted/, rejected/ or failed/.

    Reports go to ROOT/reports. Write files as NAME.tmp and rename them when
    complete (or let them settle). Stops cleanly on SIGTERM or Ctrl-C.

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
    ledger = _ledger_target(ctx, ledger_path, no_ledger)
    if ledger is not None:
        try:
            Ledger.open(ledger).close()
        except LedgerError as exc:
            raise click.UsageError(str(exc)) from None
    # a broken profile, companion or resource file is refused before any file is taken
    options = ScrubOptions(profile=_profile(profile_path), companion=_companion(companion),
                           resources=_resources(resource_values), ledger=ledger,
                           record=record and ledger is not None)
    settings = WatchSettings(root=Path(root), settle_seconds=settle, workers=workers,
                             use_events=not poll, options=options)
    run_watch(settings, once=once)


@main.command()
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
@click.option("--profile", "profile_path", type=click.Path(dir_okay=False),
              help="Payer profile (XML) with severities, switched-off rules and code lists.")
@click.option("--companion", metavar="NAME",
              help="Lay a payer companion guide of x12_maps/ig-overrides.xml over the "
                   "implementation guides.")
@click.option("--ig/--no-ig", "conformance", default=True, show_default=True,
              help="Check implementation-guide conformance first; claims of a rejected "
                   "transaction set are held, not scrubbed.")
@click.option("--999/--no-999", "ack_999", default=True, show_default=True,
              help="Write the 999 of the implementation-guide check per input.")
@click.option("--ack-sender", default="SCRUBBER", show_default=True,
              help="Our id in the acknowledgements (ISA06/GS02 of the 277CA and TA1).")
@click.option("--ack-name", default="SCRUBBER", show_default=True,
              help="Our name as information source in the 277CA (2100A NM103).")
@click.option("--ledger", "ledger_path", metavar="PATH|URL",
              help="Claim-history ledger to check against (default: none).")
@click.option("--record/--no-record", default=False, show_default=True,
              help="Record the accepted claims in the ledger after their verdicts.")
@click.option("--piece-mb", type=click.IntRange(1), default=64, show_default=True,
              help="A larger file is cut at interchange boundaries into pieces of this size.")
@click.option("--json", "as_json", is_flag=True, help="The summary line as JSON.")
@click.option("--fail-on", type=click.Choice(["reject", "warn"]), default="reject",
              show_default=True, help="Exit 1 on rejected claims only, or on warnings too.")
@resource_options
def batch(files: tuple[str, ...], out: str, master: str | None, spark_conf: tuple[str, ...],
          scope: str, profile_path: str | None, companion: str | None, conformance: bool,
          ack_999: bool, ack_sender: str, ack_name: str, ledger_path: str | None,
          record: bool, piece_mb: int, as_json: bool, fail_on: str,
          **resource_values: Any) -> None:
    """Scrub a day of 837 FILES (folders: their files) on Apache Spark into --out.

    The verdicts are those of scrub check (docs/scale.md); needs the spark extra:
    pip install 'scrubber[spark]'. Exit status as for check.

    \b
    Examples:
        scrub batch /srv/claims/2026-12-01 --out /srv/scrubbed/2026-12-01 --master local[2]
        spark-submit --master yarn .../scrubber/spark/__main__.py FILES --out DIR
    """
    from scrubber.spark.run import BatchError, run_batch

    if record and not ledger_path:
        raise click.UsageError("--record needs a ledger: give --ledger")
    conf = []
    for item in spark_conf:
        key, equals, value = item.partition("=")
        if not equals or not key:
            raise click.UsageError(f"--spark-conf {item!r}: write KEY=VALUE")
        conf.append((key.strip(), value.strip()))
    options = ScrubOptions(profile=_profile(profile_path), companion=_companion(companion),
                           conformance=conformance, resources=_resources(resource_values),
                           ledger=ledger_path, record=record, fail_on=fail_on,
                           ack=AckIdentity(sender_id=ack_sender, name=ack_name))
    try:
        result = run_batch(_inputs(files), out, options=options, master=master, conf=conf,
                           scope=scope, ack_999=ack_999 and conformance,
                           piece_bytes=piece_mb << 20)
    except BatchError as exc:
        click.echo(f"scrub: {exc}", err=True)
        sys.exit(EXIT_UNREADABLE)
    for name, reason in result.not_scrubbed:
        said = reason if name in reason else f"{name}: {reason}"
        click.echo(f"scrub: not scrubbed: {_printable(said)}", err=True)
    click.echo(result.as_json() if as_json else f"{result.summary()}; tables in {out}")
    sys.exit(EXIT_UNREADABLE if result.unreadable
             else EXIT_REJECTED if result.failed(fail_on) else EXIT_OK)


@main.command()
def version() -> None:
    """Print the version.

    \b
    Example:
        scrub version
    """
    click.echo(f"scrub {__version__}")


if __name__ == "__main__":  # pragma: no cover
    main()
