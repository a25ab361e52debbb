"""Provider identity indexes: NPPES and PECOS in SQLite, built once per file, opened in ms.

The NPPES file is some 9 GB: it is read once, row by row, into an index in the
user's cache folder named after its sha256 (scrubber.cache.keyed_index), keeping
only what the rules read: entity type, enumeration, deactivation and reactivation
dates and the taxonomy codes of each NPI (a taxonomy as a small number; the few
hundred codes in their own table). A lookup is one integer primary-key probe,
cached for the run. Hashing 9 GB on every run would cost more than the scrub: the
digest of a file is remembered beside the index with its size, modification time
and inode, and taken from there while those are unchanged (the installed files of
``scrub data`` bring their own digests, scrubber.cache.known_digests).
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path

from scrubber.cache import (
    connect_read_only,
    default_cache_dir,
    keyed_index,
    known_digests,
    write_meta,
)
from scrubber.cmsfiles import as_date
from scrubber.providers.files import (
    PECOS_FLAGS,
    ProviderFileError,
    nppes_rows,
    nppes_snapshot,
    nucc_codes,
    nucc_version,
    pecos_rows,
    snapshot_named,
)

VERSION = 1  # of the index layouts
BATCH = 50_000


@dataclass(frozen=True, slots=True)
class NpiRecord:
    """What NPPES says of one NPI, as far as the rules need it."""

    npi: str
    entity_type: str  # "1" individual, "2" organisation, "" (a deactivated NPI's row)
    enumerated: date | None
    deactivated: date | None
    reactivated: date | None
    taxonomies: tuple[str, ...]

    def active_on(self, day: date) -> bool:
        """Enumerated on or before ``day`` and not deactivated then (or reactivated since)."""
        if self.enumerated is not None and day < self.enumerated:
            return False
        if self.deactivated is None or day < self.deactivated:
            return True
        return self.reactivated is not None and self.reactivated <= day


def _remembered_digest(path: Path, folder: Path) -> tuple[str | None, Path, list]:
    """The digest remembered for ``path`` if it is unchanged since, the memo file and the
    stat that must match."""
    stat = path.stat()
    memo = folder / "digests.json"
    mark = [os.fspath(path.resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ino]
    try:
        known = json.loads(memo.read_text())
        for entry in known:
            if entry[:4] == mark:
                return entry[4], memo, mark
    except (OSError, ValueError, TypeError, IndexError):
        pass
    return None, memo, mark


def _remember_digest(memo: Path, mark: list, digest: str) -> None:
    try:
        known = json.loads(memo.read_text()) if memo.exists() else []
    except (OSError, ValueError):
        known = []
    known = [e for e in known if e[:1] != mark[:1]][-63:] + [mark + [digest]]
    tmp = memo.with_name(f".{memo.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(known))
        os.replace(tmp, memo)
    except OSError:  # only costs hashing the file again next time
        pass


def _keyed(prefix: str, files: list[Path], build, what: str,
           cache_dir: str | os.PathLike | None) -> tuple[Path, dict, bool]:
    """keyed_index over ``files``, with their digests remembered across runs (see above)."""
    from scrubber.cache import file_sha256

    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    digests: dict[str, str] = {}
    marks = []
    for path in files:
        try:
            found, memo, mark = _remembered_digest(path, folder)
        except OSError:
            continue  # keyed_index names the file it cannot read
        if found is None:
            found = file_sha256(path, ProviderFileError, what)
            marks.append((memo, mark, found))
        digests[os.fspath(path)] = found
    with known_digests(digests):
        result = keyed_index(prefix, VERSION, {prefix: files}, build, ProviderFileError, what,
                             cache_dir)
    folder.mkdir(parents=True, exist_ok=True)
    for memo, mark, digest in marks:
        _remember_digest(memo, mark, digest)
    return result


class NppesIndex:
    """The NPPES snapshot of a run: an NPI's entity type, dates and taxonomies."""

    def __init__(self, path: Path, snapshot: date, source: str, built: bool = False):
        self.path = path
        self.snapshot = snapshot  # the day the file was drawn
        self.source = source
        self.built = built
        self._db: sqlite3.Connection | None = connect_read_only(path)
        self._taxonomies = dict(self._db.execute("SELECT id, code FROM taxonomy"))
        self._records = lru_cache(maxsize=1 << 14)(self._record)

    def __reduce__(self):
        # Worker processes reopen the same index file instead of copying it.
        return (NppesIndex, (self.path, self.snapshot, self.source))

    def __repr__(self) -> str:
        return f"NppesIndex({self.label()}; index {self.path})"

    def label(self) -> str:
        return f"NPPES as of {self.snapshot:%Y-%m-%d}"

    def record(self, npi: str) -> NpiRecord | None:
        """The NPI's record, or None when the file does not list it."""
        if len(npi) != 10 or not npi.isdigit():
            return None
        return self._records(npi)

    def _record(self, npi: str) -> NpiRecord | None:
        if self._db is None:
            raise RuntimeError("the NPPES index is closed")
        row = self._db.execute("SELECT entity, enumerated, deactivated, reactivated, "
                               "taxonomies FROM npi WHERE npi = ?", (int(npi),)).fetchone()
        if row is None:
            return None
        entity, enumerated, deactivated, reactivated, taxonomies = row
        return NpiRecord(npi, entity or "", as_date(enumerated), as_date(deactivated),
                         as_date(reactivated),
                         tuple(self._taxonomies[int(t)] for t in taxonomies.split(",") if t)
                         if taxonomies else ())

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


_NPPES_SCHEMA = """
CREATE TABLE npi (npi INTEGER PRIMARY KEY, entity TEXT, enumerated INTEGER,
                  deactivated INTEGER, reactivated INTEGER, taxonomies TEXT);
CREATE TABLE taxonomy (id INTEGER PRIMARY KEY, code TEXT UNIQUE);
"""


def _batches(rows: Iterator, size: int = BATCH) -> Iterator[list]:
    batch = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def load_nppes(paths: Sequence[str | os.PathLike], *,
               cache_dir: str | os.PathLike | None = None) -> NppesIndex:
    """The newest of the NPPES files given (each is a full snapshot), indexed once.

    ProviderFileError for a file that is missing or not in the layout.
    """
    files = [Path(p) for p in paths]
    if not files:
        raise ProviderFileError("no NPPES file given")
    dated = sorted(((nppes_snapshot(p), n, p) for n, p in enumerate(files)),
                   key=lambda t: (t[0], t[1]))
    snapshot, _, source = dated[-1]

    def build(db: sqlite3.Connection, key: str) -> dict:
        db.executescript(_NPPES_SCHEMA)
        ids: dict[str, int] = {}

        def coded(rows):
            for npi, entity, enumerated, deactivated, reactivated, taxonomies in rows:
                codes = ",".join(str(ids.setdefault(t, len(ids) + 1)) for t in taxonomies)
                yield npi, entity or None, enumerated, deactivated, reactivated, codes or None

        count = 0
        for batch in _batches(coded(nppes_rows(source))):
            db.executemany("INSERT OR REPLACE INTO npi VALUES (?,?,?,?,?,?)", batch)
            count += len(batch)
        db.executemany("INSERT INTO taxonomy VALUES (?, ?)", ((n, t) for t, n in ids.items()))
        if not count:
            raise ProviderFileError(f"{source}: holds no NPPES rows")
        return write_meta(db, key, VERSION, {"snapshot": snapshot.isoformat(),
                                             "source": str(source), "rows": count})

    path, contents, built = _keyed("nppes", [source], build, "the NPPES file "
                                   "(NPPES_Data_Dissemination zip, or the npidata_pfile CSV)",
                                   cache_dir)
    return NppesIndex(path, date.fromisoformat(contents["snapshot"]), contents["source"],
                      built)


# -- PECOS Order and Referring ---------------------------------------------------------------

class OrderReferring:
    """The PECOS Order and Referring file of a run: who may order or refer what, for Medicare."""

    def __init__(self, path: Path, as_of: date | None, source: str, built: bool = False):
        self.path = path
        self.as_of = as_of
        self.source = source
        self.built = built
        self._db: sqlite3.Connection | None = connect_read_only(path)
        self._flags = lru_cache(maxsize=1 << 12)(self._lookup)

    def __reduce__(self):
        return (OrderReferring, (self.path, self.as_of, self.source))

    def label(self) -> str:
        when = f" as of {self.as_of:%Y-%m-%d}" if self.as_of else ""
        return f"PECOS Order and Referring{when}"

    def eligible(self, npi: str) -> frozenset[str] | None:
        """The service kinds (PARTB, DME, HHA, PMD, HOSPICE) the NPI may order or refer for;
        None when the file does not list it at all."""
        if len(npi) != 10 or not npi.isdigit():
            return None
        return self._flags(npi)

    def _lookup(self, npi: str) -> frozenset[str] | None:
        if self._db is None:
            raise RuntimeError("the Order and Referring index is closed")
        row = self._db.execute("SELECT flags FROM pecos WHERE npi = ?", (int(npi),)).fetchone()
        if row is None:
            return None
        return frozenset(name for bit, name in enumerate(PECOS_FLAGS) if row[0] >> bit & 1)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def pecos_as_of(path: Path) -> date | None:
    from scrubber.cmsfiles import zip_names

    return snapshot_named(*zip_names(path), path.name)


def load_pecos(paths: Sequence[str | os.PathLike], *,
               cache_dir: str | os.PathLike | None = None) -> OrderReferring:
    """The newest Order and Referring file given (each is a whole list), indexed once."""
    files = [Path(p) for p in paths]
    if not files:
        raise ProviderFileError("no Order and Referring file given")
    dated = sorted(((pecos_as_of(p) or date.min, n, p) for n, p in enumerate(files)),
                   key=lambda t: (t[0], t[1]))
    as_of, _, source = dated[-1]

    def build(db: sqlite3.Connection, key: str) -> dict:
        db.execute("CREATE TABLE pecos (npi INTEGER PRIMARY KEY, flags INTEGER)")
        count = 0
        for batch in _batches(pecos_rows(source)):
            db.executemany("INSERT OR REPLACE INTO pecos VALUES (?, ?)", batch)
            count += len(batch)
        if not count:
            raise ProviderFileError(f"{source}: holds no Order and Referring rows")
        return write_meta(db, key, VERSION, {"source": str(source), "rows": count})

    path, contents, built = _keyed("pecos", [source], build, "the PECOS Order and Referring "
                                   "file (CSV)", cache_dir)
    return OrderReferring(path, None if as_of == date.min else as_of, contents["source"],
                          built)


# -- NUCC taxonomy ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class TaxonomyRelease:
    """One version of the NUCC code set: its codes, and the first day it is in force."""

    version: str  # "25.1"; "" when the name does not say
    start: date | None  # None: used for every date (the name does not say)
    codes: frozenset[str]
    source: str

    def label(self) -> str:
        return f"NUCC taxonomy {self.version}" if self.version else "NUCC taxonomy"


class TaxonomySet:
    """The NUCC versions of a run, each judging the dates it is in force for."""

    def __init__(self, releases: Sequence[TaxonomyRelease]):
        self.releases = tuple(sorted(releases, key=lambda r: r.start or date.min))

    def release_for(self, day: date) -> TaxonomyRelease | None:
        """The latest version in force on ``day``; None when ``day`` is before every one."""
        started = [r for r in self.releases if r.start is None or r.start <= day]
        return started[-1] if started else None

    def label(self) -> str:
        return ", ".join(r.label() for r in self.releases)


def load_nucc(paths: Sequence[str | os.PathLike]) -> TaxonomySet:
    """NUCC taxonomy CSVs (a few hundred rows each: read at once, no index needed)."""
    releases = []
    for given in paths:
        path = Path(given)
        version = nucc_version(path.name)
        releases.append(TaxonomyRelease(version[0] if version else "",
                                        version[1] if version else None, nucc_codes(path),
                                        str(path)))
    return TaxonomySet(releases)
