"""The RVU index: the user's PPRRVU files in one SQLite file, built once per set of files.

Named after the files' sha256 and names (scrubber.cache.keyed_index), built to a
temporary file and renamed, then opened read-only; a lookup is one primary-key
probe, cached for the run. Only the policy indicators the rules read are kept:
no RVU amounts, no CPT descriptions.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path

from scrubber.cache import connect_read_only, keyed_index, write_meta
from scrubber.pfs.files import RvuError, RvuRelease, rvu_file

VERSION = 1  # of the index layout


@dataclass(frozen=True, slots=True)
class RvuEntry:
    """One row of the RVU file: a code (and modifier) with its payment policy indicators."""

    code: str
    modifier: str  # "" for the code itself; 26, TC or 53 for a component's own row
    status: str  # A active, B/P bundled, I not valid for Medicare, N/X/E not covered ...
    pctc: str  # PC/TC indicator 0-9
    global_days: str  # 000, 010, 090, MMM, XXX, YYY, ZZZ
    bilateral: str  # 0, 1, 2, 3, 9
    assistant: str  # 0 documentation, 1 never paid, 2 paid, 9 n/a
    cosurgeons: str  # 0 not permitted, 1 documentation, 2 permitted, 9 n/a
    team: str  # 0 not permitted, 1 documentation, 2 permitted, 9 n/a
    nonfacility_na: bool  # "NA": rarely or never done outside a facility
    facility_na: bool
    release: RvuRelease


class RvuTable:
    """The RVU releases of a run, each judging the dates of service it is in force for."""

    def __init__(self, path: Path, releases: Sequence[RvuRelease], built: bool = False):
        self.path = path
        self.releases = tuple(releases)  # by id: releases[0] is id 1
        self.built = built
        self._db: sqlite3.Connection | None = connect_read_only(path)
        self._rows = lru_cache(maxsize=1 << 14)(self._code_rows)
        self._release = lru_cache(maxsize=2048)(self._release_for)
        self._entry = lru_cache(maxsize=1 << 14)(self._entry_on)

    def __reduce__(self):
        # Worker processes reopen the same index file instead of copying it.
        return (RvuTable, (self.path, self.releases))

    def __repr__(self) -> str:
        return f"RvuTable({', '.join(r.label() for r in self.releases)}; index {self.path})"

    def release_for(self, day: date) -> RvuRelease | None:
        """The release in force on ``day``: the latest that started on or before it, within
        its calendar year (the fee schedule's); None when no release given covers the date."""
        return self._release(day)

    def _release_for(self, day: date) -> RvuRelease | None:
        started = [r for r in self.releases if r.start <= day]
        if not started:
            return None
        latest = max(reversed(started), key=lambda r: r.start)  # a tie: the later given
        return latest if day.year == latest.start.year else None

    def entries(self, code: str, day: date) -> tuple[RvuEntry, ...]:
        """The rows of ``code`` (the code's own first, then its components') on ``day``."""
        release = self.release_for(day)
        if release is None:
            return ()
        return self._rows(code.upper(), self.releases.index(release) + 1)

    def entry(self, code: str, day: date) -> RvuEntry | None:
        """The code's own row (no modifier) on ``day``, else its first; None when absent."""
        return self._entry(code, day)  # every line of every claim asks, by code and date

    def _entry_on(self, code: str, day: date) -> RvuEntry | None:
        rows = self.entries(code, day)
        return rows[0] if rows else None

    def _code_rows(self, code: str, rid: int) -> tuple[RvuEntry, ...]:
        if self._db is None:
            raise RuntimeError("the RVU index is closed")
        release = self.releases[rid - 1]
        rows = self._db.execute(
            "SELECT modifier, status, pctc, global, bilateral, assistant, cosurgeons, team, "
            "nonfacility_na, facility_na FROM rvu WHERE code = ? AND release = ? "
            "ORDER BY modifier", (code, rid)).fetchall()
        return tuple(RvuEntry(code, modifier, status, pctc, glob, bilat, asst, cosurg, team,
                              bool(nonfac), bool(fac), release)
                     for modifier, status, pctc, glob, bilat, asst, cosurg, team, nonfac, fac
                     in rows)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


_SCHEMA = """
CREATE TABLE rvu (code TEXT, modifier TEXT, release INTEGER, status TEXT, pctc TEXT,
                  global TEXT, bilateral TEXT, assistant TEXT, cosurgeons TEXT, team TEXT,
                  nonfacility_na INTEGER, facility_na INTEGER,
                  PRIMARY KEY (code, release, modifier)) WITHOUT ROWID;
"""


def load_rvu(paths: Sequence[str | os.PathLike], *,
             cache_dir: str | os.PathLike | None = None) -> RvuTable:
    """The user's PPRRVU files (zips as downloaded, or the CSV/text in them), indexed once.

    RvuError for a file that is missing or not in the layout.
    """
    files = [Path(p) for p in paths]

    def build(db: sqlite3.Connection, key: str) -> dict:
        db.executescript(_SCHEMA)
        releases = []
        for rid, source in enumerate(files, 1):
            release, rows = rvu_file(source)
            releases.append([release.start.isoformat(), release.source])
            db.executemany("INSERT OR REPLACE INTO rvu VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                           ((code, modifier, rid, *rest) for code, modifier, *rest in rows))
        return write_meta(db, key, VERSION, {"releases": releases})

    path, contents, built = keyed_index("pfs-rvu", VERSION, {"rvu": files}, build, RvuError,
                                        "the RVU file (RVUyyA.zip, or PPRRVU*.csv/.txt)",
                                        cache_dir)
    return RvuTable(path, [RvuRelease(date.fromisoformat(start), source)
                           for start, source in contents["releases"]], built)
