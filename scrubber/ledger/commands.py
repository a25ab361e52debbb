"""`scrub ledger ...`: look into, trim and move the claim history.

Each command is options plus one call on the store; ``--format json`` gives
the same content for a script. No command prints a patient: submissions and
claims are named by their ids, patients only ever exist as keyed hashes.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Any, TextIO

import click

from scrubber.files import OutputError, open_private, writable_folder
from scrubber.ledger.keys import LedgerError, write_new_key
from scrubber.ledger.store import LedgerStore, open_store


def _options(command: Callable) -> Callable:
    command = click.option("--format", "fmt", type=click.Choice(["text", "json"]),
                           default="text", show_default=True,
                           help="text for a person, json for a script.")(command)
    return click.option("--ledger", "target", metavar="PATH|URL",
                        help="The ledger: a SQLite file or postgresql://user@host/db "
                             "(default: the per-user ledger under $XDG_STATE_HOME/scrubber)."
                        )(command)


@contextmanager
def _store(target: str | None) -> Iterator[LedgerStore]:
    """The ledger, with any failure to use it said in one line (exit 2), never a traceback.

    Without --ledger: $SCRUBBER_LEDGER, else the ledger scrub.toml gives `scrub check`,
    else the per-user default, so that these commands look where checks record.
    """
    if not target:
        ctx = click.get_current_context(silent=True)
        check = ((ctx.find_root().default_map or {}) if ctx else {}).get("check") or {}
        target = os.environ.get("SCRUBBER_LEDGER") or check.get("ledger") \
            or check.get("ledger_path")
    try:
        store = open_store(target)
    except LedgerError as exc:
        raise _Unusable(str(exc)) from None
    try:
        yield store
    except LedgerError as exc:
        raise _Unusable(str(exc)) from None
    finally:
        store.close()


def _dry_run(command: Callable) -> Callable:
    return click.option("--dry-run", is_flag=True,
                        help="Say how many claims would go; remove nothing.")(command)


class _Unusable(click.ClickException):
    exit_code = 2


def _emit(fmt: str, data: Any, text: str) -> None:
    click.echo(json.dumps(data, indent=2) if fmt == "json" else text)


@click.group("ledger", short_help="The claim history: list, show, forget, prune, export, import.")
def ledger_group() -> None:
    """The claim history: what was sent, for the day and duplicate checks (docs/ledger.md).

    \b
    Example:
        scrub ledger list
        scrub ledger show MLT-0003 --ledger postgresql://scrub@db.example/claims
        scrub ledger prune --before 2025-11-01
    """


@ledger_group.command("list")
@_options
def list_submissions(target: str | None, fmt: str) -> None:
    """Submissions with recorded claims: when, sender, counts, sent or held (no patients).

    A submission's claims are sent once its run's outputs are written; until then
    they are held by the run's recording (listed apart, with the recording), and
    a run that died leaves nothing: the next start discards what it held.

    \b
    Example:
        scrub ledger list --format json
    """
    with _store(target) as store:
        rows = store.submissions()
        recordings = store.recordings()
    lines = [f"{'submission':<32} {'recorded (UTC)':<25} {'claims':>7} {'lines':>7}  state"]
    lines += [f"{r.submission:<32} {r.last_recorded:<25} {r.claims:>7} {r.lines:>7}  "
              f"{r.state}" for r in rows]
    lines += [f"recording {r.id[:12]} ({r.state}, by {r.owner} since {r.started_at}): "
              f"{r.held} claim(s) held" for r in recordings]
    _emit(fmt, {"submissions": [asdict(r) for r in rows],
                "recordings": [asdict(r) for r in recordings]},
          "\n".join(lines) if rows or recordings else "the ledger holds no submissions")


@ledger_group.command("show")
@click.argument("claim_id")
@_options
def show(claim_id: str, target: str | None, fmt: str) -> None:
    """The recorded claim(s) with CLM01 CLAIM_ID and their service lines.

    \b
    Example:
        scrub ledger show MLT-0003
    """
    with _store(target) as store:
        entries = store.claims(claim_id)
    if not entries:
        raise click.ClickException(f"no claim {claim_id} in the ledger")
    data = [{**asdict(e.sent), "lines": [
        {"line_number": x.line_number, "procedure": x.procedure, "modifiers": list(x.modifiers),
         "units": str(x.units) if x.units is not None else None,
         "service_date": x.service_date.isoformat()} for x in e.lines]} for e in entries]
    text = []
    for item in data:
        text.append(f"claim {item['claim_id']}  billing NPI {item['billing_npi']}  payer "
                    f"{item['payer'] or '-'}  frequency {item['frequency']}  submission "
                    f"{item['submission']}  recorded {item['recorded_at']}")
        text += [f"  line {x['line_number']}: {x['procedure']}"
                 f"{''.join(':' + m for m in x['modifiers'])} x{x['units']} on "
                 f"{x['service_date']}" for x in item["lines"]]
    _emit(fmt, {"claims": data}, "\n".join(text))


@ledger_group.command("forget")
@click.argument("submission", required=False)
@click.option("--claim", "claim_id", metavar="CLM01", help="Forget this claim instead.")
@click.option("--npi", help="With --claim: only the claim of this billing provider.")
@click.option("--payer", help="With --claim: only the claim sent to this payer id.")
@_dry_run
@_options
def forget(submission: str | None, claim_id: str | None, npi: str | None, payer: str | None,
           dry_run: bool, target: str | None, fmt: str) -> None:
    """Remove a submission (SENDER:ISA13) or, with --claim, a claim that was never sent.

    \b
    Example:
        scrub ledger forget SCRUBTESTSUBM:000000102 --dry-run
        scrub ledger forget SCRUBTESTSUBM:000000102
        scrub ledger forget --claim MLT-0003 --npi 1728394655
    """
    if (submission is None) == (claim_id is None):
        raise click.UsageError("name a SUBMISSION or --claim CLM01 (one of the two)")
    with _store(target) as store:
        if claim_id is not None:
            count = store.forget_claim(claim_id, npi=npi, payer=payer, dry_run=dry_run)
        else:
            count = store.forget_submission(submission or "", dry_run=dry_run)
    what = f"claim {claim_id}" if claim_id is not None else f"submission {submission}"
    _emit(fmt, {"forgotten_claims": count, "dry_run": dry_run},
          f"{'would forget' if dry_run else 'forgot'} {count} claim(s) of {what}"
          + (" (dry run: nothing removed)" if dry_run else ""))


@ledger_group.command("release")
@click.argument("submission")
@_options
def release(submission: str, target: str | None, fmt: str) -> None:
    """Mark the claims held for SUBMISSION as sent, once the intake has forwarded them.

    \b
    Example:
        scrub ledger release SCRUBTESTSUBM:000000102
    """
    with _store(target) as store:
        count = store.release(submission)
    _emit(fmt, {"released_claims": count},
          f"released {count} held claim(s) of submission {submission} as sent")


def _date(ctx: click.Context, param: click.Parameter, value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None


@ledger_group.command("prune")
@click.option("--before", required=True, callback=_date, metavar="YYYY-MM-DD",
              help="Remove the claims recorded before this date (UTC).")
@_dry_run
@_options
def prune(before: date, dry_run: bool, target: str | None, fmt: str) -> None:
    """Retention: remove what was recorded before a date, so the ledger does not grow forever.

    \b
    Example:
        scrub ledger prune --before 2025-11-01 --dry-run
        scrub ledger prune --before 2025-11-01
    """
    with _store(target) as store:
        count = store.prune(before, dry_run=dry_run)
    _emit(fmt, {"pruned_claims": count, "before": before.isoformat(), "dry_run": dry_run},
          f"{'would prune' if dry_run else 'pruned'} {count} claim(s) recorded before "
          f"{before.isoformat()}" + (" (dry run: nothing removed)" if dry_run else ""))


@ledger_group.command("stats")
@_options
def stats(target: str | None, fmt: str) -> None:
    """Counts, dates and schema version of the ledger.

    \b
    Example:
        scrub ledger stats --format json
    """
    with _store(target) as store:
        data = store.stats()
    _emit(fmt, data, "\n".join(f"{k}: {'-' if v is None else v}" for k, v in data.items()))


@ledger_group.command("export")
@click.option("-o", "--output", type=click.Path(dir_okay=False, allow_dash=True), default="-",
              help="File to write (owner-only, whole or absent); default: standard output.")
@_options
def export(output: str, target: str | None, fmt: str) -> None:
    """Every recorded claim as JSON lines (patients stay hashed): to move or back up a ledger.

    \b
    Example:
        scrub ledger export -o ledger.jsonl
    """
    try:
        if output != "-":
            writable_folder(output)
        with _store(target) as store:
            if output == "-":
                count = _write_lines(store, sys.stdout)
            else:  # whole or absent: a reader never takes half an export for a backup
                with open_private(output) as out:
                    count = _write_lines(store, out)
    except OutputError as exc:
        raise _Unusable(str(exc)) from None
    if output != "-":
        _emit(fmt, {"exported_claims": count, "output": output},
              f"exported {count} claim(s) to {output}")


def _write_lines(store: LedgerStore, out: TextIO) -> int:
    count = -1
    for item in store.export():
        out.write(json.dumps(item, separators=(",", ":")) + "\n")
        count += 1
    return count


@ledger_group.command("import")
@click.argument("source", type=click.Path(dir_okay=False, allow_dash=True))
@_options
def import_(source: str, target: str | None, fmt: str) -> None:
    """Load an export into this ledger (made under the same key): SQLite to PostgreSQL, say.

    \b
    Example:
        SCRUBBER_LEDGER_KEY_FILE=~/.local/state/scrubber/ledger.sqlite.key \\
            scrub ledger import ledger.jsonl --ledger postgresql://scrub@db.example/claims
    """
    handle = sys.stdin if source == "-" else None
    try:
        handle = handle or open(source, encoding="utf-8")
    except OSError as exc:
        raise _Unusable(f"{source}: {exc.strerror}") from None
    with handle, _store(target) as store:
        count = store.import_(_parsed(handle, source))
    _emit(fmt, {"imported_claims": count}, f"imported {count} claim(s)")


def _parsed(handle: TextIO, source: str) -> Iterator[dict]:
    for number, text in enumerate(handle, 1):
        if not text.strip():
            continue
        try:
            item = json.loads(text)
        except json.JSONDecodeError as exc:
            raise LedgerError(f"{source} line {number} is not JSON ({exc.msg})") from None
        if not isinstance(item, dict):
            raise LedgerError(f"{source} line {number} is not a ledger entry")
        yield item


@ledger_group.command("new-key")
@click.argument("path", type=click.Path(dir_okay=False))
def new_key(path: str) -> None:
    """Write a new ledger key to PATH (owner-only, never over an existing file).

    Give every worker of a site the same key: SCRUBBER_LEDGER_KEY_FILE=PATH.

    \b
    Example:
        scrub ledger new-key /etc/scrubber/ledger.key
    """
    if Path(path).exists():
        raise _Unusable(f"{path} exists; a ledger key is never overwritten")
    write_new_key(Path(path))
    click.echo(f"wrote a new ledger key to {path}; set SCRUBBER_LEDGER_KEY_FILE={path} for "
               "every worker of the site")
