"""Reference data kept current: CMS's files installed once, used by every front end.

``scrub data add FILE|ZIP...`` tells each file as its publisher ships it (every
registered resource option's ``recognize``, scrubber.rules.resources), keeps it
in a store (the user's data folder, or a folder or PostgreSQL database named in
scrub.toml's ``[data] store``) with the release it is and the dates it is in
force for, and indexes it once. Every run then uses what is installed, without
flags: the scrub core fills each kind of data a run was not given from the
store (``with_installed``); a run's own ``--icd10cm``/``--hcpcs``/... files add
to the installed ones of their option (``installed_files``). See docs/data.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import TYPE_CHECKING

from scrubber.cache import known_digests
from scrubber.data.releases import Coverage, UnrecognizedFile, coverage, looks, recognize
from scrubber.data.store import DataError, DataStore, Installed, open_data_store
from scrubber.rules.resources import (
    Release,
    ResourceError,
    Resources,
    load_resources,
    resource_options,
)

if TYPE_CHECKING:
    from scrubber.options import ScrubOptions

__all__ = ["Coverage", "DataError", "DataStore", "Freshness", "Installed", "UnrecognizedFile",
           "coverage", "freshness", "freshness_report", "freshness_words", "installed_files",
           "installed_resources", "looks", "open_data_store", "recognize", "with_installed"]


def installed_files(store: str | None = None) -> dict[str, tuple[str, ...]]:
    """The installed files per option name (``{option: (paths...)}``), oldest release first.

    ``store``: a folder or ``postgresql://`` URL; None: the user's data folder.
    What a front end merges with the files a run names, before loading
    (``load_resources(given, installed=installed_files(store))``).
    """
    return open_data_store(store).local().files


# the last resources loaded from each store, with the store's state and the kinds left out
_LOADED: dict[str, tuple[tuple[object, tuple[str, ...]], Resources]] = {}


def installed_resources(store: str | None = None, besides: Resources | None = None
                        ) -> Resources:
    """``besides`` with every kind it lacks loaded from the files installed in ``store``.

    Loaded once per process while the store does not change (its catalog is
    looked at on each call: a stat for a folder, one query for PostgreSQL), so
    a long-running service picks up what ``scrub data add`` installs. The
    indexes are the content-keyed caches of each kind; the stored files are
    not hashed again (their digests were recorded when they were added).
    Raises ``ResourceError`` (``DataError``) when the store or a file cannot be used.
    """
    data = open_data_store(store)
    besides = besides or Resources()
    names = tuple(sorted(name for name, _ in besides.named))
    state = (data.state(), names)
    found = _LOADED.get(data.location)
    if found is None or found[0] != state:
        local = data.local()
        with known_digests(local.digests):
            loaded = load_resources({}, installed=local.files, leave_out=names)
        found = _LOADED[data.location] = (state, loaded)
    return found[1].merged(besides)


def with_installed(options: ScrubOptions) -> ScrubOptions:
    """``options`` with the installed data of ``options.data`` in its resources (the kinds
    it was given stay as given), and ``data`` None: resolved once, so worker processes
    get the very same data."""
    if options.data is None:
        return options
    return replace(options, resources=installed_resources(options.data, options.resources),
                   data=None)


@dataclass(frozen=True, slots=True)
class Freshness:
    """Whether the releases of one option (installed and bundled) cover a day."""

    option: str
    releases: tuple[Release, ...]
    coverage: Coverage
    day: date

    @property
    def covered(self) -> bool:
        """True when the day is covered, or the option's releases say no dates at all."""
        return self.coverage.covers(self.day) or not self.coverage.dated

    @property
    def installed(self) -> bool:
        return bool(self.releases)


def freshness(store: str | None = None, day: date | None = None,
              entries: Sequence[Installed] | None = None) -> tuple[Freshness, ...]:
    """For every registered option that can be installed, whether ``day`` (default today)
    is covered by its installed and bundled releases."""
    day = day or date.today()
    if entries is None:
        entries = open_data_store(store).entries()
    out = []
    for option in resource_options():
        if option.recognize is None and option.bundled is None:
            continue
        releases = tuple(option.bundled() if option.bundled else ()) + tuple(
            e.release() for e in entries if e.option == option.name)
        out.append(Freshness(option.name, releases, coverage(option.name, releases), day))
    return tuple(out)


def freshness_report(store: str | None = None, day: date | None = None) -> dict:
    """Whether the installed data covers ``day`` (default today), fit for a probe or a log:
    options and dates only, never a path. ``ok`` is False when an option with dated
    releases does not cover the day, or when the store cannot be read."""
    day = day or date.today()
    try:
        found = freshness(store, day)
    except ResourceError:
        return {"date": day.isoformat(), "ok": False, "error": "the data store cannot be read"}
    installed = [f for f in found if f.installed]
    return {"date": day.isoformat(),
            "ok": all(f.covered for f in installed),
            "covered": [f.option for f in installed if f.coverage.covers(day)],
            "not_covered": [f.option for f in installed if not f.covered],
            "undated": [f.option for f in installed if not f.coverage.dated],
            "not_installed": [f.option for f in found if not f.installed]}


def freshness_words(store: str | None = None, day: date | None = None) -> str:
    """One line for a log: which installed kinds of data cover ``day`` (default today)."""
    report = freshness_report(store, day)
    if "error" in report:
        return f"reference data: {report['error']}"
    said = []
    if report["not_covered"]:
        said.append(f"NOT covering {report['date']}: {', '.join(report['not_covered'])} "
                    "(scrub data status says what to add)")
    if report["covered"]:
        said.append(f"covering {report['date']}: {', '.join(report['covered'])}")
    if report["undated"]:
        said.append(f"without dates: {', '.join(report['undated'])}")
    if report["not_installed"]:
        said.append(f"not installed: {', '.join(report['not_installed'])}")
    return "reference data " + "; ".join(said)
