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

import click

from scrubber import __version__
from scrubber.api import check_files, find_x12_files
from scrubber.config import ConfigError, load_config
from scrubber.emit.ack277 import Ack277Writer
from scrubber.ledger import Ledger, LedgerError
from scrubber.ledger.commands import ledger_group
from scrubber.rules import ProfileError, load_profile, rules_table

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


def ncci_options(command):
    """--ncci-ptp/--mue (and their 837I variants): the user's own CMS NCCI files."""
    for name, help_text in (
            ("--mue-837i", "MUE file for 837I claims (e.g. the facility outpatient table); "
                           "with it, --mue applies to 837P only."),
            ("--mue", "CMS MUE file (zip, .txt or .csv), repeatable; used for 837P and, "
                      "unless --mue-837i is given, 837I."),
            ("--ncci-ptp-837i", "NCCI PTP file for 837I claims (hospital outpatient edits); "
                                "with it, --ncci-ptp applies to 837P only."),
            ("--ncci-ptp", "CMS NCCI procedure-to-procedure file (zip, .txt or .csv), "
                           "repeatable; used for 837P and, unless --ncci-ptp-837i is given, "
                           "837I. See docs/ncci.md.")):
        command = click.option(name, multiple=True, metavar="PATH",
                               type=click.Path(dir_okay=False), help=help_text)(command)
    return command


def _ncci(ptp: tuple[str, ...], ptp_837i: tuple[str, ...], mue: tuple[str, ...],
          mue_837i: tuple[str, ...]):
    """The NCCI tables the options name (index built on first use), or None."""
    if not (ptp or ptp_837i or mue or mue_837i):
        return None
    from scrubber.ncci import NcciError, load_tables

    def plan(both: tuple[str, ...], institutional: tuple[str, ...]):
        if not institutional:
            return list(both) or None
        return {"837P": list(both), "837I": list(institutional)}

    try:
        return load_tables(ptp=plan(ptp, ptp_837i), mue=plan(mue, mue_837i))
    except NcciError as exc:
        raise click.UsageError(f"NCCI tables: {exc}") from None


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(allow_dash=True))
@click.option("--format", "fmt", type=click.Choice(["text", "json", "html"]), default="text",
              show_default=True,
              help="Report written to standard output: an annotated summary (text, coloured "
                   "on a terminal), the JSON contract, or one self-contained HTML page.")
@click.option("--show-phi", is_flag=True,
              help="Show patient names in the text report (masked by default).")
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
@click.option("--ledger", "ledger_path", type=click.Path(dir_okay=False),
              help="Claim-history ledger to check against and record accepted claims in "
                   "(default: a per-user ledger under $XDG_STATE_HOME/scrubber).")
@click.option("--no-ledger", is_flag=True,
              help="Check the files on their own: no history, nothing recorded.")
@click.option("-q", "--quiet", is_flag=True, help="No report: the exit code says it all.")
@click.option("-v", "--verbose", is_flag=True,
              help="List accepted claims too in the text summary.")
@click.option("--fail-on", type=click.Choice(["reject", "warn"]), default="reject",
              show_default=True, help="Exit 1 on rejected claims only, or on warnings too.")
@ncci_options
def check(files: tuple[str, ...], fmt: str, show_phi: bool, profile_path: str | None,
          ack_dir: str | None, ack_999: bool, conformance: bool, companion: str | None,
          ack_sender: str, ack_name: str, ledger_path: str | None,
          no_ledger: bool, quiet: bool, verbose: bool, fail_on: str,
          ncci_ptp: tuple[str, ...], ncci_ptp_837i: tuple[str, ...], mue: tuple[str, ...],
          mue_837i: tuple[str, ...]) -> None:
    """Scrub 837 FILES (a folder: its X12 files; - : standard input) before they go out.

    Exit status: 0 all claims accepted, 1 a claim or envelope rejected (or a
    warning, with --fail-on warn), 2 an unreadable input or a usage error.

    \b
    Examples:
        scrub check fixtures/837p-multi.x12
        scrub check fixtures/837p-multi.x12 --format json
        scrub check batch.x12 --277ca acks/ --999
        scrub check batch.x12 --ncci-ptp ccipra-f1.zip --mue mue-practitioner.zip
        cat batch.x12 | scrub check - --format json
    """
    paths: list[str] = []
    for name in files:
        if name != "-" and os.path.isdir(name):
            found = find_x12_files(name)
            if not found:
                raise click.UsageError(f"{name}: no X12 files (beginning with ISA) in this "
                                       "folder")
            paths += found
        else:
            paths.append(name)
    files = tuple(paths)
    if fmt == "html" and len(files) > 1:
        raise click.UsageError("--format html writes one page: give one file per run")
    profile = _profile(profile_path)
    if ack_999 and not ack_dir:
        raise click.UsageError("--999 writes into the acknowledgements folder: give --277ca DIR")
    if ack_999 and not conformance:
        raise click.UsageError("--999 needs the implementation-guide check: drop --no-ig")
    if companion is not None:
        _companion(companion)
    ncci = _ncci(ncci_ptp, ncci_ptp_837i, mue, mue_837i)
    out = open(os.devnull, "w") if quiet else sys.stdout
    if ack_dir:
        os.makedirs(ack_dir, mode=0o700, exist_ok=True)
    if no_ledger and ledger_path:
        raise click.UsageError("--ledger and --no-ledger exclude each other")
    try:
        ledger = None if no_ledger else Ledger.open(ledger_path)
    except LedgerError as exc:
        raise click.UsageError(str(exc)) from None
    try:
        with _progress(files) as progress:
            outcome = check_files(list(files), out, fmt=fmt, show_phi=show_phi,
                                  profile=profile, ack_dir=ack_dir, ledger=ledger,
                                  color=out.isatty(), verbose=verbose, progress=progress,
                                  conformance=conformance, companion=companion,
                                  ack_999=ack_999, ncci=ncci,
                                  ack=Ack277Writer(sender_id=ack_sender, source_name=ack_name,
                                                   source_id=ack_sender))
    except LedgerError as exc:
        click.echo(f"scrub: {exc}", err=True)
        sys.exit(EXIT_UNREADABLE)
    finally:
        if ledger is not None:
            ledger.close()
    if ledger is not None and not quiet and sys.stderr.isatty():
        # a person at a terminal may have meant a dry run: say where the history went
        click.echo(f"scrub: accepted claims are recorded in the claim ledger {ledger.path} "
                   "(--no-ledger checks without recording)", err=True)
    failed = outcome.rejected or (fail_on == "warn" and outcome.warned)
    sys.exit(EXIT_UNREADABLE if outcome.unreadable else EXIT_REJECTED if failed else EXIT_OK)


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


def _companion(name: str) -> None:
    """Refuse an unknown companion guide up front, naming the ones there are."""
    from scrubber.ig import OverrideError, load_companions

    try:
        known = load_companions()
    except OverrideError as exc:
        raise click.UsageError(str(exc)) from None
    if name not in known:
        raise click.UsageError(f"--companion {name!r}: no such companion guide in "
                               f"x12_maps/ig-overrides.xml (known: {', '.join(sorted(known))})")


def _profile(path: str | None):
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
@click.option("--ledger", "ledger_path", type=click.Path(dir_okay=False),
              help="Claim-history ledger (default: the per-user ledger).")
@click.option("--no-ledger", is_flag=True, help="Do not check against or record history.")
@click.option("--profile", "profile_path", type=click.Path(dir_okay=False),
              help="Payer profile (XML) with severities, switched-off rules and code lists.")
@click.option("--companion", metavar="NAME",
              help="Lay a payer companion guide of x12_maps/ig-overrides.xml over the "
                   "implementation guides.")
@ncci_options
def watch(root: str, workers: int, settle: float, poll: bool, once: bool,
          ledger_path: str | None, no_ledger: bool, profile_path: str | None,
          companion: str | None, ncci_ptp: tuple[str, ...], ncci_ptp_837i: tuple[str, ...],
          mue: tuple[str, ...], mue_837i: tuple[str, ...]) -> None:
    """Watch ROOT/inbox; file each input into accepted/, rejected/ or failed/.

    Reports go to ROOT/reports. Write files as NAME.tmp and rename them when
    complete (or let them settle). Stops cleanly on SIGTERM or Ctrl-C.

    \b
    Example:
        scrub watch /srv/claims --workers 2
    """
    import logging

    from scrubber.ledger import default_ledger_path

    root = root or click.get_current_context().lookup_default("root")
    if not root:
        raise click.UsageError("give ROOT, or root = ... under [watch] in scrub.toml")
    from scrubber.watch import WatchSettings, run_watch

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    ledger = None if no_ledger else str(ledger_path or default_ledger_path())
    if ledger is not None:
        try:
            Ledger.open(ledger).close()
        except LedgerError as exc:
            raise click.UsageError(str(exc)) from None
    _profile(profile_path)  # refuse a broken profile before any file is taken
    if companion is not None:
        _companion(companion)
    settings = WatchSettings(root=Path(root), settle_seconds=settle, workers=workers,
                             use_events=not poll, ledger_path=ledger,
                             profile_path=profile_path, companion=companion,
                             ncci=_ncci(ncci_ptp, ncci_ptp_837i, mue, mue_837i))
    run_watch(settings, once=once)


@main.command()
def version() -> None:
    """Print the version.

    \b
    Example:
        scrub version
    """
    click.echo(f"scrub {__version__}")


main.add_command(ledger_group, "ledger")

if __name__ == "__main__":  # pragma: no cover
    main()
