"""NCCI add-on code edits from the user's CMS file: which primaries each add-on code needs.

CMS publishes the Medicare add-on code (AOC) edits quarterly (AOC_V2026Q1-MCR:
a fixed-width text copy and an Excel copy, zipped). A row pairs an add-on code
with one primary code: the add-on's deletion date, the primary's deletion date,
the edit type (1: only the primaries listed; 2: CMS lists none, "CCCCC"; 3: some
listed, the contractor may allow others), the edit's effective and deletion
dates, and notes. A path is the zip or the text in it; the text may be fixed
width (each column starts where its heading starts) or tab-delimited or CSV, with
headings "Add-on Code", "Primary Code", "AOC Edit Type", "AOC Edit Eff Dt",
"AOC Edit Del Dt", "AOC Del Dt", "Primary Code Del Dt". Dates are YYYYMMDD; "*"
or blank: none. ``load_addons`` indexes the rows once (scrubber.cache.keyed_index).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path

from scrubber.cache import connect_read_only, keyed_index, write_meta
from scrubber.cmsfiles import (
    CODE,
    as_number,
    day_number,
    headed_rows,
    member_text,
    quarter_label,
    quarter_named,
    zip_names,
)

VERSION = 1  # of the index layout
MEMBER = r"^AOC.*\.(txt|csv)$"
NO_PRIMARY = "CCCCC"  # a type 2 add-on: CMS lists no primary
COLUMNS = {  # our name -> (headings, reduced by cmsfiles.normal; required)
    "addon": (("ADDONCODE", "AOC"), True),
    "primary": (("PRIMARYCODE",), True),
    "type": (("AOCEDITTYPE", "EDITTYPE"), True),
    "edit_from": (("AOCEDITEFFDT", "AOCEDITEFFECTIVEDATE"), True),
    "edit_to": (("AOCEDITDELDT", "AOCEDITDELETIONDATE"), False),
    "addon_to": (("AOCDELDT", "AOCDELETIONDATE"), False),
    "primary_to": (("PRIMARYCODEDELDT", "PRIMARYCODEDELETIONDATE"), False),
}
# (add-on, primary or "", type, edit effective, edit deleted, add-on deleted, primary deleted)
AocRow = tuple[str, str, int, int, int | None, int | None, int | None]


class AddonError(Exception):
    """An add-on code file that cannot be used: the message names the file and line."""


@dataclass(frozen=True, slots=True)
class AddonEdit:
    """What the edits in force on a date say of one add-on code."""

    code: str
    type: int  # 1 primaries listed, 2 none listed, 3 some listed
    primaries: frozenset[str]  # the listed primaries in force on the date


def addon_file(path: Path) -> tuple[date | None, list[AocRow]]:
    """The quarter a CMS name says (None: it does not) and the rows of an AOC file or zip."""
    member, text = member_text(path, MEMBER, "add-on code file (AOC*.txt)", AddonError)
    headings, rows = headed_rows(text, "Add-on Code")
    if not headings:
        headings, rows = headed_rows(text, "Add-on Code", fixed=True)
    if not headings:
        raise AddonError(f"{path}: no column headings starting with 'Add-on Code' in the "
                         "first 100 lines; is this CMS's add-on code edit file?")
    where: dict[str, int | None] = {}
    for name, (names, required) in COLUMNS.items():
        found = [n for n, heading in enumerate(headings) if heading in names]
        if not found and required:
            raise AddonError(f"{path}: no {name.replace('_', ' ')} column (headings: "
                             f"{', '.join(h for h in headings if h)})")
        where[name] = found[0] if found else None
    out = list(_rows(path, rows, where))
    if not out:
        raise AddonError(f"{path}: holds no add-on code rows")
    return quarter_named(member, path.name), out


def _rows(path: Path, rows: Iterator[tuple[int, list[str]]], where: dict[str, int | None]
          ) -> Iterator[AocRow]:
    for number, cells in rows:
        def cell(name: str, cells: list[str] = cells) -> str:
            at = where[name]
            return cells[at].strip().upper() if at is not None and at < len(cells) else ""
        try:
            addon, primary, kind = cell("addon"), cell("primary"), cell("type")
            if not CODE.fullmatch(addon):
                raise ValueError(f"the add-on code is {addon!r}")
            if primary == NO_PRIMARY:
                primary = ""
            elif primary and not CODE.fullmatch(primary):
                raise ValueError(f"the primary code is {primary!r}")
            if kind not in ("1", "2", "3"):
                raise ValueError(f"the edit type is {kind!r}, expected 1, 2 or 3")
            effective = day_number(cell("edit_from"))
            if effective is None:
                raise ValueError("the edit has no effective date")
            yield (addon, primary, int(kind), effective, day_number(cell("edit_to")),
                   day_number(cell("addon_to")), day_number(cell("primary_to")))
        except ValueError as exc:
            raise AddonError(f"{path}: line {number} is not an add-on code row: {exc}") from None


def looks_like(path: Path) -> bool:
    """True for an AOC zip (one holding AOC*.txt) or a file CMS named AOC*."""
    import re

    names = zip_names(path)
    if names:
        return any(re.search(MEMBER, n, re.IGNORECASE) for n in names)
    return bool(re.match(r"AOC", path.name, re.IGNORECASE))


def release_label(start: date | None) -> str:
    return f"NCCI add-on code edits, {quarter_label(start)}" if start else \
        "NCCI add-on code edits"


class AddonEdits:
    """The add-on code edits of a run, answered from the index by code and date."""

    def __init__(self, path: Path, counts: dict, built: bool = False):
        self.path = path
        self.counts = dict(counts)
        self.built = built
        self._db: sqlite3.Connection | None = connect_read_only(path)
        self._rows = lru_cache(maxsize=1 << 12)(self._code_rows)
        self._edit = lru_cache(maxsize=1 << 14)(self._edit_on)
        self._addons: frozenset[str] | None = None

    def __reduce__(self):
        return (AddonEdits, (self.path, self.counts))

    def __repr__(self) -> str:
        return f"AddonEdits({self.counts.get('rows', 0)} rows, index {self.path})"

    def edit(self, code: str, day: date) -> AddonEdit | None:
        """What the edits in force on ``day`` say of ``code``; None when it is no add-on."""
        return self._edit(code.upper(), day)

    def addons(self) -> frozenset[str]:
        """Every code some edit lists as an add-on, whatever its dates: a code not among them
        is no add-on on any day (one set lookup, where ``edit`` is one per code and date)."""
        if self._addons is None:
            if self._db is None:
                raise RuntimeError("the add-on code index is closed")
            self._addons = frozenset(row[0] for row in self._db.execute(
                "SELECT DISTINCT addon FROM aoc"))
        return self._addons

    def _edit_on(self, code: str, day: date) -> AddonEdit | None:
        on = as_number(day)
        live = [row for row in self._rows(code)
                if row[2] <= on and (row[3] is None or on < row[3])
                and (row[4] is None or on < row[4])]
        if not live:
            return None
        kind = max(kind for _, kind, *_ in live)  # 3 over 2 over 1: the milder rule wins
        primaries = frozenset(primary for primary, _, _, _, _, ended in live
                              if primary and (ended is None or on < ended))
        return AddonEdit(code, kind, primaries)

    def _code_rows(self, code: str) -> tuple[tuple, ...]:
        if self._db is None:
            raise RuntimeError("the add-on code index is closed")
        return tuple(self._db.execute(
            "SELECT primary_code, type, edit_from, edit_to, addon_to, primary_to FROM aoc "
            "WHERE addon = ?", (code,)).fetchall())

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def load_addons(paths: Sequence[str | os.PathLike], *,
                cache_dir: str | os.PathLike | None = None) -> AddonEdits:
    """The user's AOC files (zips or text), indexed once; AddonError for one that does not fit."""
    files = [Path(p) for p in paths]

    def build(db: sqlite3.Connection, key: str) -> dict:
        db.execute("CREATE TABLE aoc (addon TEXT, primary_code TEXT, type INTEGER, "
                   "edit_from INTEGER, edit_to INTEGER, addon_to INTEGER, primary_to INTEGER)")
        rows = 0
        quarters = []
        for source in files:
            start, found = addon_file(source)
            quarters.append(start.isoformat() if start else None)
            db.executemany("INSERT INTO aoc VALUES (?,?,?,?,?,?,?)", found)
            rows += len(found)
        db.execute("CREATE INDEX aoc_addon ON aoc (addon)")
        return write_meta(db, key, VERSION, {"rows": rows, "quarters": quarters})

    path, contents, built = keyed_index("ncci-aoc", VERSION, {"aoc": files}, build, AddonError,
                                        "the add-on code file (AOC*.zip or .txt)", cache_dir)
    return AddonEdits(path, contents, built)


