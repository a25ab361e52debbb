"""The NCCI index: the user's CMS PTP and MUE rows in one SQLite file, built once.

The file is named after the sha256 of the input files' bytes (and of this
layout's version), so the same files open the same index in milliseconds and a
changed file builds a new one. It is built into a temporary file beside its
final name and renamed into place, so two processes never see a half-built
index; afterwards it is only opened read-only. Rows are streamed into it in
batches and the lookup index is made once at the end, so memory stays flat
however many millions of rows the files hold.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from itertools import islice
from pathlib import Path
from typing import TypeVar

from scrubber.cache import (
    build_atomically,
    connect_read_only,
    file_sha256,
    index_folder,
    read_meta,
    touch,
)
from scrubber.model.claims import KINDS
from scrubber.ncci.files import (
    NO_DELETION,
    NcciError,
    mue_rows,
    ptp_rows,
    recognize,
    release_start,
)

log = logging.getLogger(__name__)

VERSION = 3  # of the index layout: a new layout never opens an old file
BATCH = 20_000  # rows per executemany: large enough to be fast, small enough to stay flat

Paths = str | os.PathLike | Sequence[str | os.PathLike]
Files = Paths | Mapping[str, Paths] | None


@dataclass(frozen=True, slots=True)
class PtpEdit:
    """One CMS PTP edit: column 2 is not paid with column 1 on the same day."""

    column1: str
    column2: str
    effective: date
    deletion: date | None  # None: the edit is in force ("*")
    modifier: int  # 0 no modifier allows both, 1 an NCCI-associated modifier may, 9 no edit
    rationale: str  # CMS's PTP edit rationale, as in the file
    prior_1996: bool  # "*=in existence prior to 1996"
    # the quarter of the CMS file it came from (None: not said); not part of the edit itself
    release: date | None = field(default=None, compare=False)

    def active(self, on: date) -> bool:
        """In force on ``on``: effective on or before it, deleted (if ever) after it."""
        return self.effective <= on and (self.deletion is None or on < self.deletion)


@dataclass(frozen=True, slots=True)
class MueLimit:
    """The MUE of one code: at most ``units`` per line (1) or per day of service (2, 3)."""

    code: str
    units: int
    indicator: int  # 1 line edit, 2 date of service edit: policy, 3 ...: clinical
    rationale: str
    release: date | None = field(default=None, compare=False)  # the file's quarter


class NcciTables:
    """The PTP and MUE tables of each claim kind, answered from the index.

    ``kind`` is "837P" (practitioner files) or "837I" (hospital outpatient
    files); a kind without files has no edits. Lookups are cached for the run;
    the sqlite3 module keeps their statements prepared.
    """

    def __init__(self, path: Path | None, ptp_sets: Mapping[str, int],
                 mue_sets: Mapping[str, int], counts: Mapping[str, int], built: bool = False,
                 releases: Sequence[str] = ()):
        self.path = path  # the index file; None when no file was given
        self.counts = dict(counts)  # {"ptp": rows, "mue": rows}
        self.built = built  # True when this load built the index
        self.releases = tuple(releases)  # the files' releases, for people ("NCCI ... 2026 ...")
        self._ptp_sets, self._mue_sets = dict(ptp_sets), dict(mue_sets)
        self._db = connect_read_only(path) if path is not None else None
        self._pair = lru_cache(maxsize=1 << 16)(self._pair_rows)
        self._code = lru_cache(maxsize=1 << 14)(self._mue_rows)

    def __reduce__(self):
        # Worker processes reopen the same index file instead of copying tables.
        return (NcciTables, (self.path, self._ptp_sets, self._mue_sets, self.counts, False,
                             self.releases))

    def __repr__(self) -> str:
        return (f"NcciTables({self.counts.get('ptp', 0)} PTP rows, "
                f"{self.counts.get('mue', 0)} MUE rows, index {self.path})")

    def kinds(self, table: str) -> tuple[str, ...]:
        """The claim kinds that have ``table`` ("ptp" or "mue") files."""
        return tuple(k for k in KINDS if k in (self._ptp_sets if table == "ptp"
                                               else self._mue_sets))

    def ptp(self, column1: str, column2: str, on_date: date, kind: str = "837P"
            ) -> PtpEdit | None:
        """The edit of (column 1, column 2) in force on ``on_date``, or None.

        With several quarters' files, the newest quarter on or before the date
        that lists the pair decides (a deletion date in a newer file wins over an
        older file that lists the edit in force); of its rows in force, the one
        that took effect last.
        """
        edits = _of_release(self.ptp_edits(column1, column2, kind), on_date)
        found = None
        for edit in edits:
            if edit.active(on_date) and (found is None or edit.effective >= found.effective):
                found = edit
        return found

    def ptp_edits(self, column1: str, column2: str, kind: str = "837P"
                  ) -> tuple[PtpEdit, ...]:
        """Every row of the pair, whatever its dates."""
        set_id = self._ptp_sets.get(kind)
        if set_id is None or self._db is None:
            return ()
        return self._pair(set_id, column1.upper(), column2.upper())

    def mue(self, code: str, kind: str = "837P", on_date: date | None = None
            ) -> MueLimit | None:
        """The MUE of ``code`` on ``on_date`` (None: the newest), or None.

        The newest quarter on or before the date that lists the code decides; the
        lowest value when it lists the code twice.
        """
        set_id = self._mue_sets.get(kind)
        if set_id is None or self._db is None:
            return None
        limits = _of_release(self._code(set_id, code.upper()), on_date)
        return min(limits, key=lambda limit: limit.units) if limits else None

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _query(self, sql: str, args: tuple) -> sqlite3.Cursor:
        # the callers check for an index first; a closed one is the caller's error
        if self._db is None:
            raise RuntimeError("the NCCI index is closed")
        return self._db.execute(sql, args)

    def _pair_rows(self, set_id: int, column1: str, column2: str) -> tuple[PtpEdit, ...]:
        rows = self._query(
            "SELECT effective, deletion, modifier, prior, text, release FROM ptp "
            "JOIN rationale ON rationale.id = ptp.rationale "
            "WHERE set_id = ? AND col1 = ? AND col2 = ?", (set_id, column1, column2))
        return tuple(PtpEdit(column1, column2, _day(effective), _deletion(deletion), modifier,
                             text, bool(prior), _release(release))
                     for effective, deletion, modifier, prior, text, release in rows)

    def _mue_rows(self, set_id: int, code: str) -> tuple[MueLimit, ...]:
        rows = self._query(
            "SELECT units, indicator, text, release FROM mue JOIN rationale ON rationale.id = "
            "mue.rationale WHERE set_id = ? AND code = ?", (set_id, code))
        return tuple(MueLimit(code, units, indicator, text, _release(release))
                     for units, indicator, text, release in rows)


def _day(value: int) -> date:
    return date(value // 10000, value // 100 % 100, value % 100)


def _deletion(value: int) -> date | None:
    return None if value == NO_DELETION else _day(value)


def _release(value: int) -> date | None:
    return _day(value) if value else None


R = TypeVar("R", PtpEdit, MueLimit)


def _of_release(rows: Sequence[R], on_date: date | None) -> Sequence[R]:
    """The rows of the newest release on or before ``on_date`` (None: the newest) that has
    any; failing that, of the oldest release after it. A file whose quarter is not known
    counts as the oldest."""
    releases = {row.release or date.min for row in rows}
    if len(releases) < 2:
        return rows
    before = [r for r in releases if on_date is None or r <= on_date]
    chosen = max(before) if before else min(releases)
    return [row for row in rows if (row.release or date.min) == chosen]



# -- loading ------------------------------------------------------------------------------

def load_tables(ptp: Files = None, mue: Files = None, *,
                cache_dir: str | os.PathLike | None = None) -> NcciTables:
    """The tables of the user's CMS files, from the index (built on first use).

    ``ptp`` and ``mue`` are each a path or a list of paths used for both claim
    kinds, or a mapping ``{"837P": [...], "837I": [...]}`` (practitioner files
    for 837P, hospital outpatient files for 837I); a kind left out has no edits.
    The index lives in ``cache_dir`` (default ``$XDG_CACHE_HOME/scrubber`` or
    ``~/.cache/scrubber``). Raises ``NcciError`` for a missing or unreadable
    file, or a row that does not fit its layout.
    """
    plans = {"ptp": _per_kind(ptp, "ptp"), "mue": _per_kind(mue, "mue")}
    if not any(plans.values()):
        return NcciTables(None, {}, {}, {"ptp": 0, "mue": 0})
    digests = {path: _sha256(path) for plan in plans.values() for paths in plan.values()
               for path in paths}
    sets = {table: _sets(plan, digests) for table, plan in plans.items()}
    # the name says the file's quarter, so the quarter is part of what was given
    quarters = {path: _number(release_start(path)) for path in digests}
    key = hashlib.sha256(json.dumps(
        {"version": VERSION, **{table: {kind: [[digests[p], quarters[p]] for p in paths]
                                        for kind, paths in plan.items()}
                                for table, plan in plans.items()}},
        sort_keys=True).encode()).hexdigest()
    path = index_folder(cache_dir) / f"ncci-{key[:40]}.sqlite"
    found = read_meta(path, key, VERSION, "contents")
    built = found is None
    if found is None:
        found = _build(path, key, sets, digests)
    else:
        touch(path)
    return NcciTables(path, {k: s for k, (s, _) in sets["ptp"].items()},
                      {k: s for k, (s, _) in sets["mue"].items()}, found["counts"], built,
                      found["releases"])



def _per_kind(files: Files, table: str) -> dict[str, tuple[Path, ...]]:
    """{kind: paths}: one list for both kinds, or a mapping per kind."""
    if files is None:
        return {}
    if isinstance(files, Mapping):
        unknown = sorted(set(files) - set(KINDS))
        if unknown:
            raise NcciError(f"{table} files are given for {', '.join(map(str, unknown))}; "
                            f"the claim kinds are {' and '.join(KINDS)}")
        return {kind: paths for kind in KINDS if (paths := _paths(files.get(kind)))}
    paths = _paths(files)
    return {kind: paths for kind in KINDS} if paths else {}


def _paths(files: Paths | None) -> tuple[Path, ...]:
    if files is None:
        return ()
    if isinstance(files, (str, os.PathLike)):
        files = (files,)
    return tuple(Path(f) for f in files)



def _sha256(path: Path) -> str:
    return file_sha256(path, NcciError, "the CMS file (.zip, .txt or .csv)")


def _sets(plan: Mapping[str, tuple[Path, ...]], digests: Mapping[Path, str]
          ) -> dict[str, tuple[int, tuple[Path, ...]]]:
    """{kind: (set id, paths)}: kinds given the same files share one set of rows."""
    ids: dict[tuple[str, ...], int] = {}
    out = {}
    for kind, paths in plan.items():
        set_id = ids.setdefault(tuple(digests[p] for p in paths), len(ids) + 1)
        out[kind] = (set_id, paths)
    return out


# -- building -----------------------------------------------------------------------------

_SCHEMA = """
CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT);
CREATE TABLE source (tab TEXT, set_id INTEGER, path TEXT, sha256 TEXT, rows INTEGER);
CREATE TABLE rationale (id INTEGER PRIMARY KEY, text TEXT UNIQUE);
CREATE TABLE ptp (set_id INTEGER, col1 TEXT, col2 TEXT, release INTEGER, effective INTEGER,
                  deletion INTEGER, modifier INTEGER, prior INTEGER, rationale INTEGER,
                  PRIMARY KEY (set_id, col1, col2, release, effective, deletion, modifier))
                  WITHOUT ROWID;
-- rows land here first, in file order: a private temporary database, gone on close
ATTACH '' AS stage;
CREATE TABLE stage.ptp AS SELECT * FROM main.ptp WHERE 0;
CREATE TABLE mue (set_id INTEGER, code TEXT, units INTEGER, indicator INTEGER,
                  rationale INTEGER, release INTEGER);
"""


def _build(path: Path, key: str, sets: Mapping[str, Mapping[str, tuple[int, tuple]]],
           digests: Mapping[Path, str]) -> dict:
    """Write the index to a temporary file beside ``path`` and rename it into place."""
    started = time.monotonic()

    def fill(db: sqlite3.Connection) -> dict:
        db.executescript(_SCHEMA)
        counts, releases = _fill(db, sets, digests)
        # Sorted once into the clustered table: a smaller file than a table plus an
        # index, and a lookup reads one b-tree. Exact duplicate edits collapse.
        db.execute("INSERT OR IGNORE INTO main.ptp SELECT * FROM stage.ptp ORDER BY "
                   "set_id, col1, col2, release, effective, deletion, modifier")
        db.execute("CREATE INDEX mue_code ON mue (set_id, code)")
        contents = {"counts": counts, "releases": releases}
        db.executemany("INSERT INTO meta VALUES (?, ?)", [
            ("version", str(VERSION)), ("key", key), ("contents", json.dumps(contents))])
        return contents

    contents = build_atomically(path, "ncci", fill)
    log.info("built the NCCI index %s (%d PTP, %d MUE rows) in %.1f s", path,
             contents["counts"]["ptp"], contents["counts"]["mue"], time.monotonic() - started)
    return contents


def _fill(db: sqlite3.Connection, sets, digests) -> tuple[dict[str, int], list[str]]:
    """Stream every file's rows into the tables: each distinct set of files once.

    Each row keeps the quarter of its file (from CMS's name, 0 when not said), so
    that a newer quarter's row decides over an older one's. Returns the rows per
    table and the files' releases, in words.
    """
    rationale = _Rationales(db)
    counts = {"ptp": 0, "mue": 0}
    releases: dict[str, None] = {}
    for table, read, insert, shape in (
            ("ptp", ptp_rows, "INSERT INTO stage.ptp VALUES (?,?,?,?,?,?,?,?,?)", _ptp_values),
            ("mue", mue_rows, "INSERT INTO mue VALUES (?,?,?,?,?,?)", _mue_values)):
        done = set()
        for set_id, paths in sets[table].values():
            if set_id in done:
                continue
            done.add(set_id)
            for source in paths:
                try:
                    told = recognize(source)
                except NcciError:
                    told = None
                release = _number(told.start) if told is not None else 0
                releases[told.label() if told is not None else
                         f"NCCI {table.upper()} file {source.name}"] = None
                rows = 0
                for batch in _batches(shape(set_id, row, rationale, release)
                                      for row in read(source)):
                    db.executemany(insert, batch)
                    rows += len(batch)
                db.execute("INSERT INTO source VALUES (?, ?, ?, ?, ?)",
                           (table, set_id, str(source), digests[source], rows))
                counts[table] += rows
    return counts, list(releases)


def _number(day: date | None) -> int:
    return day.year * 10000 + day.month * 100 + day.day if day else 0


def _ptp_values(set_id: int, row, rationale: _Rationales, release: int) -> tuple:
    column1, column2, prior, effective, deletion, modifier, text = row
    return (set_id, column1, column2, release, effective, deletion, modifier, int(prior),
            rationale.id(text))


def _mue_values(set_id: int, row, rationale: _Rationales, release: int) -> tuple:
    code, units, indicator, text = row
    return set_id, code, units, indicator, rationale.id(text), release


def _batches(rows: Iterable[tuple]) -> Iterator[list[tuple]]:
    rows = iter(rows)
    while batch := list(islice(rows, BATCH)):
        yield batch


class _Rationales:
    """Rationale texts stored once each (CMS uses a few dozen over millions of rows)."""

    LIMIT = 10_000  # texts kept in memory; beyond, looked up in the table (flat memory)

    def __init__(self, db: sqlite3.Connection):
        self.db = db
        self.known: dict[str, int] = {}

    def id(self, text: str) -> int:
        found = self.known.get(text)
        if found is not None:
            return found
        self.db.execute("INSERT OR IGNORE INTO rationale (text) VALUES (?)", (text,))
        found = self.db.execute("SELECT id FROM rationale WHERE text = ?", (text,)).fetchone()[0]
        if len(self.known) < self.LIMIT:
            self.known[text] = found
        return found

