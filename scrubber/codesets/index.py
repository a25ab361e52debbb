"""The code-set index: every release's codes in one SQLite file, built once per set of inputs.

The bundled ICD-10-CM release and the user's files (``--icd10cm``, ``--hcpcs``,
``--cpt``) go into one index named after the sha256 of their bytes (see
scrubber.cache), so a scrub opens it in milliseconds and never reads the
library's files again. A lookup is one primary-key probe, cached for the run:
the same few hundred codes come back on every claim.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import cache, lru_cache
from pathlib import Path

from scrubber.cache import (
    build_atomically,
    connect_read_only,
    file_sha256,
    index_folder,
    read_meta,
    touch,
)
from scrubber.codesets.files import (
    CodeSetError,
    HcpcsRow,
    Release,
    bundled_code_list,
    bundled_codes,
    bundled_release,
    cpt_file,
    hcpcs_file,
    hcpcs_modifiers_and_labs,
    icd10cm_file,
)

log = logging.getLogger(__name__)

VERSION = 3  # of the index layout: 2 added Level II modifiers and lab certifications, 3
# each HCPCS row's file (its quarter decides)
OK, UNKNOWN, NOT_BILLABLE, NOT_IN_FORCE = "ok", "unknown", "not-billable", "not-in-force"
Paths = Sequence[str | os.PathLike]


def dotted(code: str) -> str:
    """E1165 -> E11.65: how coders read a code (claims carry it without the dot)."""
    return f"{code[:3]}.{code[3:]}" if len(code) > 3 else code


@dataclass(frozen=True, slots=True)
class DxVerdict:
    """What the releases say of one diagnosis code on one date of service."""

    code: str
    day: date
    status: str  # OK, UNKNOWN, NOT_BILLABLE or NOT_IN_FORCE
    release: Release  # the release judged against
    covered: bool  # False: no release covers the date; ``release`` is the nearest
    children: tuple[str, ...] = ()  # NOT_BILLABLE: the next codes down, "E11.61-" for headers
    elsewhere: tuple[Release, ...] = ()  # NOT_IN_FORCE: the releases that have the code


@dataclass(frozen=True, slots=True)
class HcpcsVerdict:
    """What the HCPCS files say of one Level II code on one date of service."""

    code: str
    day: date
    status: str  # OK, UNKNOWN or NOT_IN_FORCE
    covered: bool  # False: the date lies outside every file's quarter
    added: date | None = None  # NOT_IN_FORCE: the code's dates
    terminated: date | None = None


class CodeSets:
    """The ICD-10-CM releases, HCPCS files and CPT list of a run, answered from the index."""

    def __init__(self, path: Path, releases: Sequence[Release],
                 hcpcs_windows: Sequence[tuple[date, date]], has_cpt: bool,
                 built: bool = False):
        self.path = path
        self.releases = tuple(releases)  # by id: releases[0] is id 1
        self.hcpcs_windows = tuple(hcpcs_windows)  # empty: no HCPCS file given
        self.has_cpt = has_cpt
        self.built = built  # True when this load built the index
        self._db: sqlite3.Connection | None = connect_read_only(path)
        self._dx = lru_cache(maxsize=1 << 14)(self._dx_rows)
        self._hcpcs = lru_cache(maxsize=1 << 12)(self._hcpcs_rows)
        self._cpt = lru_cache(maxsize=1 << 12)(self._cpt_row)
        self._modifier = lru_cache(maxsize=1 << 10)(self._modifier_rows)
        self._labs = lru_cache(maxsize=1 << 12)(self._lab_row)
        self._release_for = lru_cache(maxsize=1024)(self._judging_release)
        # a claim's codes and dates repeat across a batch: one dict probe per diagnosis
        self._verdict = lru_cache(maxsize=1 << 16)(self._diagnosis)

    def __reduce__(self):
        # Worker processes reopen the same index file instead of copying it.
        return (CodeSets, (self.path, self.releases, self.hcpcs_windows, self.has_cpt))

    def __repr__(self) -> str:
        names = ", ".join(r.name for r in self.releases)
        return (f"CodeSets({names}; {len(self.hcpcs_windows)} HCPCS files; "
                f"CPT list {'given' if self.has_cpt else 'not given'}; index {self.path})")

    @property
    def has_hcpcs(self) -> bool:
        return bool(self.hcpcs_windows)

    # -- ICD-10-CM -------------------------------------------------------------------------

    def release_for(self, day: date) -> tuple[Release, bool]:
        """The release a date of service is judged by, and whether it covers the date.

        Of the releases covering the date, the one that took effect last (an
        April update over its fiscal year; a user's file over the bundled copy
        of the same release); without one, the nearest.
        """
        return self._release_for(day)

    def diagnosis(self, code: str, day: date) -> DxVerdict:
        """The verdict on ``code`` (no dot) for a service on ``day``."""
        return self._verdict(code, day)

    def _diagnosis(self, code: str, day: date) -> DxVerdict:
        code = code.upper().replace(".", "")
        release, covered = self.release_for(day)
        rows = dict(self._dx(code))
        rid = self.releases.index(release) + 1
        if rid in rows:
            if not rows[rid]:
                return DxVerdict(code, day, OK, release, covered)
            return DxVerdict(code, day, NOT_BILLABLE, release, covered,
                             children=self._children(code, rid))
        if rows:
            return DxVerdict(code, day, NOT_IN_FORCE, release, covered,
                             elsewhere=tuple(sorted((self.releases[r - 1] for r in rows),
                                                    key=lambda r: (r.start, r.end))))
        return DxVerdict(code, day, UNKNOWN, release, covered)

    def _judging_release(self, day: date) -> tuple[Release, bool]:
        covering = [r for r in self.releases if r.covers(day)]
        if covering:  # later start wins; on a tie, the later given (a user's file)
            return max(reversed(covering), key=lambda r: r.start), True
        return min(self.releases, key=lambda r: r.distance(day)), False

    def _dx_rows(self, code: str) -> tuple[tuple[int, bool], ...]:
        rows = self._query("SELECT release, header FROM dx WHERE code = ?", (code,))
        return tuple((release, bool(header)) for release, header in rows)

    def _children(self, code: str, rid: int) -> tuple[str, ...]:
        """The codes one level below ``code`` in the release, headers marked with "-"."""
        rows = self._query("SELECT code, header FROM dx WHERE code > ? AND code < ? "
                           "AND release = ? ORDER BY code", (code, code + "~", rid)).fetchall()
        known = {c for c, _ in rows} | {code}
        out = []
        for child, header in rows:
            parent = next(child[:n] for n in range(len(child) - 1, 0, -1) if child[:n] in known)
            if parent == code:
                out.append(dotted(child) + ("-" if header else ""))
        return tuple(out)

    # -- HCPCS and CPT ---------------------------------------------------------------------

    def hcpcs(self, code: str, day: date) -> HcpcsVerdict | None:
        """The verdict on a Level II code on ``day``; None when no HCPCS file was given."""
        if not self.hcpcs_windows:
            return None
        return self._hcpcs_verdict(code, day, self._hcpcs(code.upper()))

    def modifier(self, code: str, day: date) -> HcpcsVerdict | None:
        """The verdict on a Level II modifier on ``day``; None when no HCPCS file was given."""
        if not self.hcpcs_windows:
            return None
        return self._hcpcs_verdict(code, day, self._modifier(code.upper()))

    def lab_certification(self, code: str) -> tuple[str, ...]:
        """The CLIA certification codes (HCPCS LABCERT) of ``code``; () when it has none."""
        if not self.hcpcs_windows:
            return ()
        return self._labs(code.upper())

    def _hcpcs_verdict(self, code: str, day: date, rows: tuple) -> HcpcsVerdict:
        covered = any(start <= day <= end for start, end in self.hcpcs_windows)
        if not rows:
            return HcpcsVerdict(code, day, UNKNOWN, covered)
        rows = self._of_quarter(rows, day)
        for _, added, effective, ended in rows:
            began = added or effective
            if (began is None or began <= day) and (ended is None or day <= ended):
                return HcpcsVerdict(code, day, OK, covered)
        _, added, _, ended = max(rows, key=lambda r: r[1] or date.min)
        return HcpcsVerdict(code, day, NOT_IN_FORCE, covered, added, ended)

    def _of_quarter(self, rows: tuple, day: date) -> tuple:
        """The rows of the file that decides ``day``: of the files that list the code, the
        newest whose quarter starts on or before the day (its termination date wins over an
        older quarter's file that lists the code without one); failing that, the oldest.
        Files of the same quarter: the one given last."""
        files = {row[0] for row in rows}
        if len(files) < 2:
            return rows
        start = {n: self.hcpcs_windows[n - 1][0] for n in files}
        before = [n for n in files if start[n] <= day]
        chosen = (max(before, key=lambda n: (start[n], n)) if before
                  else min(files, key=lambda n: (start[n], -n)))
        return tuple(row for row in rows if row[0] == chosen)

    def cpt_known(self, code: str) -> bool | None:
        """True when the CPT list has the code; None when no list was given."""
        if not self.has_cpt:
            return None
        return self._cpt(code.upper())

    def _hcpcs_rows(self, code: str) -> tuple[tuple, ...]:
        """(file number, added, effective, terminated) of every file that lists ``code``."""
        return self._dated_rows("hcpcs", code)

    def _modifier_rows(self, code: str) -> tuple[tuple, ...]:
        """The same for a Level II modifier (record id 7)."""
        return self._dated_rows("modifier", code)

    def _dated_rows(self, table: str, code: str) -> tuple[tuple, ...]:
        rows = self._query(f"SELECT file, added, effective, terminated FROM {table} "
                           "WHERE code = ?", (code,))
        return tuple((row[0], *(_day(v) for v in row[1:])) for row in rows)

    def _lab_row(self, code: str) -> tuple[str, ...]:
        row = self._query("SELECT certs FROM labcert WHERE code = ?", (code,)).fetchone()
        return tuple(row[0].split(",")) if row else ()

    def _cpt_row(self, code: str) -> bool:
        return self._query("SELECT 1 FROM cpt WHERE code = ?", (code,)).fetchone() is not None

    def _query(self, sql: str, args: tuple) -> sqlite3.Cursor:
        if self._db is None:
            raise RuntimeError("the code-set index is closed")
        return self._db.execute(sql, args)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def _number(day: date | None) -> int | None:
    return day.year * 10000 + day.month * 100 + day.day if day else None


def _day(value: int | None) -> date | None:
    return date(value // 10000, value // 100 % 100, value % 100) if value else None


# -- loading ------------------------------------------------------------------------------

def load_codesets(icd10cm: Paths = (), hcpcs: Paths = (), cpt: Paths = (), *,
                  cache_dir: str | os.PathLike | None = None) -> CodeSets:
    """The bundled ICD-10-CM release plus the user's CMS files, from the index (built once).

    ``icd10cm``: CMS "code descriptions in tabular order" files (or their zips),
    one per release; ``hcpcs``: CMS HCPCS quarterly files; ``cpt``: plain code
    lists. The index lives in ``cache_dir`` (default: the user's cache folder,
    scrubber.cache.default_cache_dir). Raises ``CodeSetError`` for a file that
    is missing or not in its layout.
    """
    bundled, version = bundled_code_list()
    given = {"icd10cm": [Path(p) for p in icd10cm], "hcpcs": [Path(p) for p in hcpcs],
             "cpt": [Path(p) for p in cpt]}
    what = "the CMS file (.zip or .txt)"
    digests = {p: file_sha256(p, CodeSetError, what) for paths in given.values() for p in paths}
    key = hashlib.sha256(json.dumps({
        "version": VERSION, "bundled": [version, file_sha256(bundled, CodeSetError, what)],
        # the name says the release's dates, so it is part of what was given
        **{table: [[digests[p], p.name] for p in paths] for table, paths in given.items()},
    }, sort_keys=True).encode()).hexdigest()
    path = index_folder(cache_dir) / f"codesets-{key[:40]}.sqlite"
    found = read_meta(path, key, VERSION, "contents")
    built = found is None
    if found is None:
        found = _build(path, key, bundled, version, given)
    else:
        touch(path)
    releases = tuple(Release(name, date.fromisoformat(start), date.fromisoformat(end), source)
                     for name, start, end, source in found["releases"])
    windows = tuple((date.fromisoformat(a), date.fromisoformat(b)) for a, b in found["hcpcs"])
    return CodeSets(path, releases, windows, found["cpt"], built)


@cache
def bundled() -> CodeSets | None:
    """The bundled release alone, opened once per process; None when it cannot be had.

    Rules fall back to it when the run was given no code-set files, so
    ICD-10-CM is checked out of the box. When the cache folder cannot be
    written, the index is built in a new private temporary folder (not a shared
    one, where another user could have put an index under the expected name).
    """
    try:
        try:
            return load_codesets()
        except OSError as exc:
            log.warning("cannot write the code-set index to the cache folder (%s); building "
                        "it in a temporary folder", exc.strerror or exc)
            return load_codesets(cache_dir=tempfile.mkdtemp(prefix="scrubber-codesets-"))
    except (CodeSetError, OSError) as exc:
        log.warning("ICD-10-CM codes are checked by form only: %s", exc)
        return None


_SCHEMA = """
CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT);
CREATE TABLE dx (code TEXT, release INTEGER, header INTEGER,
                 PRIMARY KEY (code, release)) WITHOUT ROWID;
CREATE TABLE hcpcs (code TEXT, file INTEGER, added INTEGER, effective INTEGER,
                    terminated INTEGER);
CREATE TABLE cpt (code TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE modifier (code TEXT, file INTEGER, added INTEGER, effective INTEGER,
                       terminated INTEGER);
CREATE TABLE labcert (code TEXT PRIMARY KEY, certs TEXT) WITHOUT ROWID;
"""


def _build(path: Path, key: str, bundled: Path, version: str,
           given: dict[str, list[Path]]) -> dict:
    """Read every input once into a new index; returns what the index holds."""
    started = time.monotonic()
    releases: list[Release] = [bundled_release(bundled, version)]
    icd = [list(bundled_codes(bundled))]
    for source in given["icd10cm"]:
        release, rows = icd10cm_file(source)
        releases.append(release)
        icd.append(rows)
    windows: list[tuple[date, date]] = []
    hcpcs_rows: list[tuple[int, HcpcsRow]] = []  # (file number, row): the file's quarter
    modifier_rows: list[tuple[int, HcpcsRow]] = []
    lab_rows: dict[str, str] = {}  # a later file's certifications win
    for number, source in enumerate(given["hcpcs"], 1):
        window, records = hcpcs_file(source)
        windows.append(window)
        hcpcs_rows += ((number, record) for record in records)
        found_modifiers, found_labs = hcpcs_modifiers_and_labs(source)
        modifier_rows += ((number, modifier) for modifier in found_modifiers)
        lab_rows.update(found_labs)
    cpt_codes = sorted({c for source in given["cpt"] for c in cpt_file(source)})
    contents = {"releases": [[r.name, r.start.isoformat(), r.end.isoformat(), r.source]
                             for r in releases],
                "hcpcs": [[a.isoformat(), b.isoformat()] for a, b in windows],
                "cpt": bool(given["cpt"])}

    def fill(db: sqlite3.Connection) -> None:
        db.executescript(_SCHEMA)
        for rid, rows in enumerate(icd, 1):
            db.executemany("INSERT OR IGNORE INTO dx VALUES (?, ?, ?)",
                           ((code, rid, int(header)) for code, header in rows))
        db.executemany("INSERT INTO hcpcs VALUES (?, ?, ?, ?, ?)",
                       ((code, number, *(_number(d) for d in days))
                        for number, (code, *days) in hcpcs_rows))
        db.execute("CREATE INDEX hcpcs_code ON hcpcs (code)")
        db.executemany("INSERT INTO cpt VALUES (?)", ((c,) for c in cpt_codes))
        db.executemany("INSERT INTO modifier VALUES (?, ?, ?, ?, ?)",
                       ((code, number, *(_number(d) for d in days))
                        for number, (code, *days) in modifier_rows))
        db.execute("CREATE INDEX modifier_code ON modifier (code)")
        db.executemany("INSERT INTO labcert VALUES (?, ?)", sorted(lab_rows.items()))
        db.executemany("INSERT INTO meta VALUES (?, ?)", [
            ("version", str(VERSION)), ("key", key), ("contents", json.dumps(contents))])

    build_atomically(path, "codesets", fill)
    log.info("built the code-set index %s (%d releases, %d HCPCS rows, %d CPT codes) in "
             "%.1f s", path, len(releases), len(hcpcs_rows), len(cpt_codes),
             time.monotonic() - started)
    return contents
