"""``scrub data``: install CMS's reference files as downloaded, list them, say what is covered.

Options in, one library call per file, an exit code out: 0 done, 1 ``status``
found today not covered (or ``verify`` a problem), 2 a file that cannot be
installed (nothing of the call is added) or a usage error.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any, NoReturn

import click

from scrubber.cache import file_sha256, known_digests
from scrubber.data import (
    Coverage,
    DataError,
    Freshness,
    Installed,
    UnrecognizedFile,
    freshness,
    installed_resources,
    open_data_store,
    recognize,
)
from scrubber.data.store import DataStore, in_order, new_entry, now, period
from scrubber.rules.resources import (
    ResourceError,
    load_resources,
    resource_kinds,
    resource_options,
)

STORE_HELP = ("Where the installed data lives: a folder, or a postgresql:// URL that many "
              "workers share (default: [data] store in scrub.toml, else $XDG_DATA_HOME/scrubber).")


@click.group("data", short_help="Install CMS's reference files; list them; say what is covered.")
@click.option("--store", metavar="PATH|URL", help=STORE_HELP)
@click.pass_context
def data_group(ctx: click.Context, store: str | None) -> None:
    """The reference data every run uses without flags: CMS's ICD-10-CM, HCPCS, NCCI
    files and your CPT list, kept with the dates each release is in force for.

    \b
    Examples:
        scrub data add icd10cm-Code-Descriptions-2027.zip HCPC2026_OCT_ANWEB.zip
        scrub data list
        scrub data status          # exit 1 when today is not covered
        scrub data remove 1a2b3c4d5e6f
        scrub data verify
    """
    ctx.meta["scrubber.data.store"] = store


def _store(ctx: click.Context) -> DataStore:
    try:
        return open_data_store(ctx.meta.get("scrubber.data.store"))
    except ResourceError as exc:
        raise click.UsageError(str(exc)) from None


def _fail(message: str) -> NoReturn:
    click.echo(f"scrub data: {message}", err=True)
    sys.exit(2)


@data_group.command("add", short_help="Install files as downloaded (zip or text).")
@click.argument("files", nargs=-1, required=True, type=click.Path())
@click.pass_context
def add(ctx: click.Context, files: tuple[str, ...]) -> None:
    """Install FILES (zips or text files, as CMS publishes them) for every run to use.

    Each file's kind and release are told from the file itself: a CMS ICD-10-CM
    order file or zip (with its addenda), a HCPCS quarterly zip (with its record
    layout and readme), NCCI PTP and MUE files, a CPT list. It is checked and
    indexed now; a file that cannot be used stops the call and nothing is added.

    \b
    Example:
        scrub data add 2027-code-descriptions-tabular-order.zip
    """
    store = _store(ctx)
    try:
        entries = store.entries()
        new = _recognized([Path(name) for name in files], entries)
        if not new:
            return
        _index(store, entries, new)
        added = store.add(new)
        installed_resources(ctx.meta.get("scrubber.data.store"))  # what runs now open
    except (UnrecognizedFile, ResourceError) as exc:
        _fail(f"{exc}; nothing was added")
        return
    for entry in added:
        when = f"in force {entry.period()}" if entry.effective_from else entry.period()
        click.echo(f"added {entry.option}: {entry.label} ({when}) from {entry.name} "
                   f"[id {entry.id}]")


def _recognized(paths: Sequence[Path], entries: Sequence[Installed]
                ) -> list[tuple[Path, Installed]]:
    """Each new file with what it will be once installed; those installed are said."""
    known = {e.sha256: e for e in entries}
    stamp = now()
    out: dict[str, tuple[Path, Installed]] = {}
    for path in paths:
        release = recognize(path)
        sha256 = file_sha256(path, DataError, "the file or zip as downloaded")
        if sha256 in known:
            click.echo(f"already installed: {path.name} is {known[sha256].label} "
                       f"[id {known[sha256].id}]")
            continue
        out.setdefault(sha256, (path, new_entry(path, release, sha256, stamp)))
    return list(out.values())


def _index(store: DataStore, entries: Sequence[Installed],
           new: Sequence[tuple[Path, Installed]]) -> None:
    """Load the kinds the new files feed, with what is installed, as runs will once they are
    in: a file whose rows do not fit raises here, and the indexes are built now."""
    local = store.local()
    where = {**local.paths, **{entry.sha256: str(path) for path, entry in new}}
    files: dict[str, list[str]] = {}
    for entry in in_order([*entries, *(entry for _, entry in new)]):
        files.setdefault(entry.option, []).append(where[entry.sha256])
    options = {entry.option for _, entry in new}
    untouched = [k.name for k in resource_kinds()
                 if not any(o.name in options for o in k.options)]
    digests = {**local.digests, **{str(path): entry.sha256 for path, entry in new}}
    with known_digests(digests):
        load_resources({}, installed=files, leave_out=untouched)


@data_group.command("list", short_help="What is installed: kind, release, dates, file, added.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@click.pass_context
def list_(ctx: click.Context, fmt: str) -> None:
    """List the installed releases (and the bundled one): option, release, the dates it
    is in force for, the file it came from and when it was added.

    \b
    Example:
        scrub data list --format json
    """
    store = _store(ctx)
    entries = _entries(store)
    bundled = [r for f in freshness(entries=entries) for r in f.releases
               if not any(e.release() == r for e in entries)]
    if fmt == "json":
        click.echo(json.dumps({"store": store.location,
                               "releases": [{**e.as_dict(), "id": e.id} for e in entries],
                               "bundled": [{"option": r.option, "label": r.label,
                                            "effective_from": _iso(r.effective_from),
                                            "effective_to": _iso(r.effective_to)}
                                           for r in bundled]}, indent=1))
        return
    rows = [("ID", "OPTION", "RELEASE", "IN FORCE", "FILE", "ADDED")]
    rows += [(e.id, e.option, e.label, e.period(), e.name, e.added[:10]) for e in entries]
    rows += [("-", r.option, r.label, period(r.effective_from, r.effective_to), "(bundled)",
              "-") for r in bundled]
    widths = [max(len(row[n]) for row in rows) for n in range(5)]
    for row in rows:
        click.echo("  ".join(f"{cell:<{w}}" for cell, w in zip(row, widths, strict=False))
                   + "  " + row[5])
    click.echo(f"store: {store.location}")


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


def _entries(store: DataStore) -> tuple[Installed, ...]:
    """The installed files, option by option (in the registry's order), oldest first."""
    try:
        entries = in_order(store.entries())
    except ResourceError as exc:
        _fail(str(exc))
    rank = {option.name: n for n, option in enumerate(resource_options())}
    return tuple(sorted(entries, key=lambda e: rank.get(e.option, len(rank))))


@data_group.command("status", short_help="Periods covered and gaps; exit 1 if today is not.")
@click.option("--date", "day", type=click.DateTime(["%Y-%m-%d"]),
              help="Judge this date instead of today (YYYY-MM-DD).")
@click.option("--ledger", "ledger_path", metavar="PATH|URL",
              help="Claim ledger whose recent dates of service to check (default: the "
                   "per-user ledger, when there is one).")
@click.option("--no-ledger", is_flag=True, help="Do not look at the ledger's dates.")
@click.option("--days", type=click.IntRange(1), default=90, show_default=True,
              help="How far back 'recently recorded' claims go.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@click.pass_context
def status(ctx: click.Context, day: Any, ledger_path: str | None, no_ledger: bool, days: int,
           fmt: str) -> None:
    """For each kind of data: the periods its releases cover, the gaps, whether today is
    covered and whether the dates of service of recently recorded claims are.

    Exit status 1 when today lies outside the releases of a kind that has any
    (a kind with nothing installed is listed, not counted).

    \b
    Example:
        scrub data status || echo "install this quarter's files"
    """
    today = day.date() if day is not None else date.today()
    entries = _entries(_store(ctx))
    found = freshness(day=today, entries=entries)
    recent = [] if no_ledger else _recent_dates(ledger_path, today - timedelta(days=days))
    if fmt == "json":
        click.echo(json.dumps({"date": today.isoformat(), "kinds": [
            {"option": f.option, "installed": f.installed, "covered": f.covered,
             "releases": [r.label for r in f.releases],
             "periods": [[_iso(a), _iso(b)] for a, b in f.coverage.periods],
             "gaps": [[_iso(a), _iso(b)] for a, b in f.coverage.gaps()],
             "recent_uncovered_lines": _outside(f.coverage, recent)[0]} for f in found]},
            indent=1))
    else:
        for f in found:
            click.echo(_status_line(f, recent))
        if recent:
            click.echo(f"(recent: {sum(n for _, n in recent)} service lines recorded in the "
                       f"ledger since {today - timedelta(days=days):%Y-%m-%d})")
    if any(f.installed and not f.covered for f in found):
        sys.exit(1)


def _status_line(f: Freshness, recent: list[tuple[date, int]]) -> str:
    if not f.installed:
        return f"{f.option}: nothing installed"
    cover = f.coverage
    if not cover.dated:
        return f"{f.option}: {len(f.releases)} release(s), without dates (always used)"
    periods = ", ".join(f"{a:%Y-%m-%d} to {b:%Y-%m-%d}" if b else f"{a:%Y-%m-%d} on"
                        for a, b in cover.periods)
    gaps = "; gaps " + ", ".join(f"{a:%Y-%m-%d} to {b:%Y-%m-%d}" for a, b in cover.gaps()) \
        if cover.gaps() else ""
    today = "covered" if f.covered else "NOT covered"
    text = (f"{f.option}: {len(f.releases)} release(s) cover {periods}{gaps}; "
            f"{f.day:%Y-%m-%d} {today}")
    lines, first, last = _outside(cover, recent)
    if lines:
        text += (f"; {lines} recently recorded service line(s) dated outside them "
                 f"({first:%Y-%m-%d} to {last:%Y-%m-%d})")
    return text


def _outside(cover: Coverage, recent: list[tuple[date, int]]) -> tuple[int, Any, Any]:
    """(lines, first date, last date) of the recent dates of service ``cover`` misses."""
    if not cover.dated:
        return 0, None, None
    missed = [(d, n) for d, n in recent if not cover.covers(d)]
    if not missed:
        return 0, None, None
    return sum(n for _, n in missed), missed[0][0], missed[-1][0]


def _recent_dates(target: str | None, since: date) -> list[tuple[date, int]]:
    """The ledger's dates of service of claims recorded since ``since`` (none without one).

    The per-user ledger is only looked at when it exists, and one that cannot be read
    is said and passed over; a ledger named with --ledger must be readable.
    """
    from scrubber.ledger import LedgerError, default_ledger_path, open_store

    named = target is not None
    if target is None:
        path = default_ledger_path()
        if not path.is_file():
            return []
        target = str(path)
    try:
        with open_store(target) as ledger:
            return ledger.service_dates(since)
    except LedgerError as exc:
        if named:
            raise click.UsageError(str(exc)) from None
        click.echo(f"(the ledger's dates of service are not looked at: {exc})", err=True)
        return []


@data_group.command("remove", short_help="Remove installed files by id or file name.")
@click.argument("which", nargs=-1, required=True, metavar="ID|FILE...")
@click.pass_context
def remove(ctx: click.Context, which: tuple[str, ...]) -> None:
    """Remove installed files, named by the id `scrub data list` shows (or its start) or by
    their file name.

    \b
    Example:
        scrub data remove 1a2b3c4d5e6f
    """
    store = _store(ctx)
    entries = _entries(store)
    chosen: dict[str, Installed] = {}
    for name in which:
        found = [e for e in entries if e.name == name or (len(name) >= 4 and
                                                          e.sha256.startswith(name.lower()))]
        if len(found) != 1:
            _fail(f"{name}: {'no' if not found else 'more than one'} installed file has this "
                  "id or name (scrub data list shows them); nothing was removed")
        chosen[found[0].sha256] = found[0]
    try:
        store.remove(list(chosen.values()))
    except ResourceError as exc:
        _fail(str(exc))
    for entry in chosen.values():
        click.echo(f"removed {entry.option}: {entry.label} ({entry.name}) [id {entry.id}]")


@data_group.command("verify", short_help="Check every installed file is whole and usable.")
@click.pass_context
def verify(ctx: click.Context) -> None:
    """Read every installed file again: its bytes must match the sha256 recorded when it
    was added, it must still be told as the same release, and every kind must load.
    Exit status 1 when something does not.

    \b
    Example:
        scrub data verify
    """
    import hashlib

    store = _store(ctx)
    entries = _entries(store)
    problems = []
    for entry in entries:
        digest = hashlib.sha256()
        try:
            for chunk in store.read(entry):
                digest.update(chunk)
        except (OSError, ResourceError) as exc:
            problems.append(f"{entry.name} [id {entry.id}]: cannot be read: {exc}")
            continue
        if digest.hexdigest() != entry.sha256:
            problems.append(f"{entry.name} [id {entry.id}]: its bytes changed since it was "
                            "added; remove it and add the file again")
    if not problems:
        try:
            local = store.local()
            for option, paths in local.files.items():
                for path in paths:
                    told = recognize(Path(path))
                    if told.option != option:
                        problems.append(f"{Path(path).name}: now told as {told.option}, "
                                        f"installed as {option}")
            load_resources({}, installed=local.files)
        except (UnrecognizedFile, ResourceError) as exc:
            problems.append(str(exc))
    for problem in problems:
        click.echo(f"problem: {problem}")
    click.echo(f"{len(entries)} installed file(s) checked in {store.location}: "
               f"{'ok' if not problems else f'{len(problems)} problem(s)'}")
    if problems:
        sys.exit(1)
