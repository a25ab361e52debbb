"""Where installed reference data lives: a folder, or a PostgreSQL database workers share.

A store keeps every file as it was downloaded, under its sha256 (the same file
is kept once, and ``scrub data verify`` can tell a changed byte), with a
catalog of what each file is: the option it feeds, its release and the dates
it is in force for, its name, where it came from and when it was added.

- ``FolderStore``: ``files/<sha256>/<name>`` and ``catalog.json`` in a folder
  (default: the user's data folder, scrubber.paths.data_dir). The catalog is
  written to a temporary file and renamed, under a lock, so a reader never sees
  half of it; the files are read-only once in place.
- ``PostgresDataStore``: the catalog and the files' bytes (in chunks) in a
  database many hosts share; each host mirrors it into a folder store in its
  cache folder and reads the files from there. When the database cannot be
  reached, the mirror of the last good look is used (with a warning).

``open_data_store(target)`` picks the store from the target, as the ledger's
``open_store`` does.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from scrubber.paths import cache_dir, data_dir, private_dir
from scrubber.rules.resources import Release, ResourceError

log = logging.getLogger(__name__)

CATALOG = "catalog.json"
FORMAT = 1  # of the catalog
CHUNK = 8 << 20  # bytes per row when a file goes into PostgreSQL: flat memory, few rows


class DataError(ResourceError):
    """The data store cannot be used, or a file cannot be installed; the message says why."""


@dataclass(frozen=True, slots=True)
class Installed:
    """One installed file: what it is, the dates it is in force for, where it came from."""

    sha256: str  # of its bytes: the file's identity in the store
    option: str  # the resource option it feeds: "icd10cm", "hcpcs", "ncci-ptp" ...
    label: str  # its release, for people: "ICD-10-CM FY2027"
    effective_from: date | None  # first day in force; None: the file does not say
    effective_to: date | None  # last day in force; None: until a later release
    name: str  # its name as downloaded (CMS's names say the release)
    size: int  # bytes
    added: str  # when it was added (ISO 8601, UTC)
    source: str  # the path it was added from
    mtime_ns: int = 0  # of the stored copy, with its size the check that it did not change

    @property
    def id(self) -> str:
        """What ``scrub data remove`` takes: the first 12 hex digits of the sha256."""
        return self.sha256[:12]

    def release(self) -> Release:
        return Release(self.option, self.label, self.effective_from, self.effective_to)

    def period(self) -> str:
        """The dates in force, in words."""
        return period(self.effective_from, self.effective_to)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("effective_from", "effective_to"):
            out[key] = out[key].isoformat() if out[key] else None
        return out

    @classmethod
    def from_dict(cls, item: dict[str, Any]) -> Installed:
        values = dict(item)
        for key in ("effective_from", "effective_to"):
            values[key] = date.fromisoformat(values[key]) if values.get(key) else None
        return cls(**values)


def period(start: date | None, end: date | None) -> str:
    """The dates a release is in force, in words."""
    if start is None:
        return "dates not stated"
    return f"{start:%Y-%m-%d} to {f'{end:%Y-%m-%d}' if end else 'a later release'}"


def in_order(entries: Iterable[Installed]) -> list[Installed]:
    """Oldest release first; of one date, the one added first (a later one wins a tie)."""
    return sorted(entries, key=lambda e: (e.effective_from or date.min, e.added, e.sha256))


@dataclass(frozen=True, slots=True)
class Local:
    """The installed files as paths on this host, by option, with their known digests."""

    files: dict[str, tuple[str, ...]]  # {option: paths}, oldest release first
    digests: dict[str, str]  # {path: sha256} of the files that did not change since added
    paths: dict[str, str]  # {sha256: path} of every installed file


class DataStore(Protocol):
    """What ``scrub data`` and the front ends need of a store."""

    @property
    def location(self) -> str:
        """Where the store is, fit for messages (no password)."""

    def entries(self) -> tuple[Installed, ...]: ...

    def state(self) -> object:
        """Something that changes whenever the catalog does (cheap to ask)."""

    def local(self) -> Local: ...

    def add(self, files: Sequence[tuple[Path, Installed]]) -> list[Installed]:
        """Install each (path, what it is); those already installed are passed over."""

    def remove(self, entries: Sequence[Installed]) -> None: ...

    def read(self, entry: Installed) -> Iterator[bytes]:
        """The stored bytes of ``entry``, in chunks (``verify`` hashes them again)."""


def open_data_store(target: str | os.PathLike | None = None) -> DataStore:
    """The store at ``target``: None (the user's data folder), a folder, or a
    ``postgresql://`` URL."""
    text = os.fspath(target) if target is not None else None
    if text and text.startswith(("postgresql://", "postgres://")):
        return PostgresDataStore(text)
    if text and "://" in text:
        raise DataError(f"unknown data store URL scheme in {text.split('://')[0]}://...; use "
                        "a folder or postgresql://user@host/db")
    # the user's own folder is private; a folder named (a site's store) may be shared
    return FolderStore(Path(text) if text else data_dir(), private=not text)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# -- a folder -----------------------------------------------------------------------------

class FolderStore:
    """Installed files in a folder: ``files/<sha256>/<name>`` and ``catalog.json``."""

    def __init__(self, root: Path, *, private: bool = False):
        # private: the user's own store or a mirror in the cache folder, owner-only (0700)
        self.root, self.private = root, private

    def _make(self, folder: Path) -> None:
        """Make ``folder``: owner-only when private; else writable by its owner alone,
        whatever the umask (others could swap the tables every run trusts)."""
        if self.private:
            private_dir(folder)
            return
        missing = [f for f in (folder, *folder.parents) if not f.exists()]
        folder.mkdir(parents=True, exist_ok=True)
        for made in missing:
            mode = stat.S_IMODE(made.stat().st_mode)
            if mode & 0o022:
                made.chmod(mode & ~0o022)

    @property
    def location(self) -> str:
        return str(self.root)

    def _file(self, sha256: str, name: str) -> Path:
        return self.root / "files" / sha256 / name

    def entries(self) -> tuple[Installed, ...]:
        path = self.root / CATALOG
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return ()
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: the catalog of installed data cannot be read: {exc}"
                            ) from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise DataError(f"{path}: not a catalog this scrubber reads (format "
                            f"{data.get('format') if isinstance(data, dict) else '?'})")
        try:
            return tuple(Installed.from_dict(item) for item in data["releases"])
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{path}: a catalog entry cannot be read: {exc}") from None

    def state(self) -> object:
        try:
            found = os.stat(self.root / CATALOG)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise DataError(f"{self.root}: cannot be read: {exc.strerror}") from None
        return found.st_ino, found.st_size, found.st_mtime_ns

    def local(self) -> Local:
        files: dict[str, list[str]] = {}
        digests: dict[str, str] = {}
        paths: dict[str, str] = {}
        for entry in in_order(self.entries()):
            path = self._file(entry.sha256, entry.name)
            try:
                found = path.stat()
            except OSError:
                raise DataError(f"{path}: the installed file of {entry.label} is missing; "
                                f"remove it (scrub data remove {entry.id}) or add it again"
                                ) from None
            if (found.st_size, found.st_mtime_ns) == (entry.size, entry.mtime_ns):
                digests[str(path)] = entry.sha256
            else:  # hashed again when loaded, and `scrub data verify` says it
                log.warning("%s changed since it was added; run scrub data verify", path)
            files.setdefault(entry.option, []).append(str(path))
            paths[entry.sha256] = str(path)
        return Local({option: tuple(found) for option, found in files.items()}, digests, paths)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self._make(self.root)
        fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # and the lock with it

    def _write(self, entries: Sequence[Installed]) -> None:
        text = json.dumps({"format": FORMAT, "releases": [e.as_dict() for e in entries]},
                          indent=1)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".catalog-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text + "\n")
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, self.root / CATALOG)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def _place(self, entry: Installed, write: Callable[[BinaryIO], str], changed: str
               ) -> None:
        """Put ``entry``'s file in place whole or not at all: ``write(out)`` writes its bytes
        and returns their sha256, which must be the entry's (else DataError ``changed``)."""
        target = self._file(entry.sha256, entry.name)
        if target.is_file():
            return
        self._make(target.parent)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".new-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                digest = write(out)
                out.flush()
                os.fsync(out.fileno())
            if digest != entry.sha256:
                raise DataError(changed)
            os.chmod(tmp, 0o444)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def _stamped(self, entry: Installed) -> Installed:
        found = self._file(entry.sha256, entry.name).stat()
        return Installed(**{**asdict(entry), "size": found.st_size,
                            "mtime_ns": found.st_mtime_ns})

    def add(self, files: Sequence[tuple[Path, Installed]]) -> list[Installed]:
        try:
            with self._locked():
                entries = list(self.entries())
                known = {e.sha256 for e in entries}
                added = []
                for path, entry in files:
                    if entry.sha256 in known:
                        continue
                    self._place(entry, partial(_copy, path),
                                f"{path}: changed while it was being added; add it again")
                    added.append(self._stamped(entry))
                    known.add(entry.sha256)
                self._write(entries + added)
                return added
        except OSError as exc:
            raise DataError(f"{self.root}: cannot install: {exc}") from None

    def adopt(self, entries: Sequence[Installed],
              fetch: Callable[[Installed, BinaryIO], str]) -> None:
        """Make this folder hold exactly ``entries``: ``fetch(entry, out)`` writes a missing
        file's bytes and returns their sha256 (a mirror of a PostgreSQL store)."""
        with self._locked():
            kept = []
            for entry in entries:
                self._place(entry, partial(fetch, entry),
                            f"{entry.name}: the bytes from the database do not match their "
                            "sha256; scrub data verify")
                kept.append(self._stamped(entry))
            self._write(kept)
            self._sweep({e.sha256 for e in kept})

    def remove(self, entries: Sequence[Installed]) -> None:
        gone = {e.sha256 for e in entries}
        with self._locked():
            kept = [e for e in self.entries() if e.sha256 not in gone]
            self._write(kept)
            self._sweep({e.sha256 for e in kept})

    def _sweep(self, kept: set[str]) -> None:
        """Delete the stored files no catalog entry names (after a remove)."""
        folder = self.root / "files"
        if not folder.is_dir():
            return
        for entry in folder.iterdir():
            if entry.name not in kept:
                shutil.rmtree(entry, ignore_errors=True)

    def read(self, entry: Installed) -> Iterator[bytes]:
        with open(self._file(entry.sha256, entry.name), "rb") as fh:
            while chunk := fh.read(1 << 20):
                yield chunk


def _copy(source: Path, out: BinaryIO) -> str:
    """Copy ``source`` into ``out``; the sha256 of what was copied."""
    digest = hashlib.sha256()
    with open(source, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def new_entry(path: Path, release: Release, sha256: str, added: str | None = None
              ) -> Installed:
    """What ``path`` will be once installed: ``release``, added now (or at ``added``)."""
    return Installed(sha256, release.option, release.label, release.effective_from,
                     release.effective_to, path.name, path.stat().st_size, added or now(),
                     str(path.resolve()))


# -- PostgreSQL -----------------------------------------------------------------------------

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS scrub_data_releases (sha256 TEXT PRIMARY KEY, "
    "option TEXT NOT NULL, label TEXT NOT NULL, effective_from DATE, effective_to DATE, "
    "name TEXT NOT NULL, size BIGINT NOT NULL, added TEXT NOT NULL, source TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS scrub_data_chunks (sha256 TEXT NOT NULL, n INTEGER NOT NULL, "
    "bytes BYTEA NOT NULL, PRIMARY KEY (sha256, n))",
    "CREATE TABLE IF NOT EXISTS scrub_data_state (one INTEGER PRIMARY KEY CHECK (one = 1), "
    "generation BIGINT NOT NULL)",
    "INSERT INTO scrub_data_state VALUES (1, 0) ON CONFLICT DO NOTHING",
)
_SCHEMA_LOCK = 0x5C12_DA7A  # advisory lock held while the tables are created


class PostgresDataStore:
    """Installed files in a PostgreSQL database, mirrored into this host's cache folder."""

    def __init__(self, url: str):
        from scrubber.ledger.postgres import safe_url

        self.url = url
        self.safe = safe_url(url)
        name = hashlib.sha256(self.safe.encode()).hexdigest()[:16]
        self.mirror = FolderStore(cache_dir() / f"data-{name}", private=True)

    @property
    def location(self) -> str:
        return self.safe

    @contextlib.contextmanager
    def _db(self) -> Iterator[Any]:
        try:
            import psycopg
        except ImportError:
            raise DataError("a PostgreSQL data store needs psycopg 3: "
                            "python3 -m pip install 'psycopg[binary]>=3'") from None
        try:
            db = psycopg.connect(self.url, connect_timeout=10)
        except psycopg.Error as exc:
            raise DataError(f"{self.safe}: cannot connect: {_first_line(exc)}") from None
        try:
            with db.transaction():
                db.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                for statement in _SCHEMA:
                    db.execute(statement)
            yield db
        except psycopg.Error as exc:
            raise DataError(f"{self.safe}: {_first_line(exc)}") from None
        finally:
            db.close()

    def entries(self) -> tuple[Installed, ...]:
        with self._db() as db:
            return _pg_entries(db)

    def state(self) -> object:
        try:
            with self._db() as db:
                return db.execute("SELECT generation FROM scrub_data_state").fetchone()[0]
        except DataError as exc:
            if self.mirror.state() is None:
                raise
            log.warning("%s; using this host's copy of the installed data as last seen", exc)
            return ("mirror", self.mirror.state())

    def local(self) -> Local:
        """Bring the mirror up to the database (downloading new files), then read it."""
        try:
            with self._db() as db:
                entries = _pg_entries(db)

                def fetch(entry: Installed, out: Any) -> str:
                    digest = hashlib.sha256()
                    for (chunk,) in db.execute(
                            "SELECT bytes FROM scrub_data_chunks WHERE sha256 = %s ORDER BY n",
                            (entry.sha256,)):
                        digest.update(chunk)
                        out.write(chunk)
                    return digest.hexdigest()

                self.mirror.adopt(entries, fetch)
        except DataError as exc:
            if self.mirror.state() is None:
                raise
            log.warning("%s; using this host's copy of the installed data as last seen", exc)
        return self.mirror.local()

    def add(self, files: Sequence[tuple[Path, Installed]]) -> list[Installed]:
        added = []
        with self._db() as db, db.transaction():
            known = {row[0] for row in db.execute("SELECT sha256 FROM scrub_data_releases")}
            for path, entry in files:
                sha256 = entry.sha256
                if sha256 in known:
                    continue
                digest = hashlib.sha256()
                with open(path, "rb") as fh:
                    n = 0
                    while chunk := fh.read(CHUNK):
                        digest.update(chunk)
                        db.execute("INSERT INTO scrub_data_chunks VALUES (%s, %s, %s) "
                                   "ON CONFLICT DO NOTHING", (sha256, n, chunk))
                        n += 1
                if digest.hexdigest() != sha256:
                    raise DataError(f"{path}: changed while it was being added; add it again")
                values = entry.as_dict()
                db.execute("INSERT INTO scrub_data_releases VALUES (%s, %s, %s, %s, %s, %s, "
                           "%s, %s, %s)", tuple(values[k] for k in _COLUMNS))
                added.append(entry)
                known.add(sha256)
            db.execute("UPDATE scrub_data_state SET generation = generation + 1")
        return added

    def remove(self, entries: Sequence[Installed]) -> None:
        with self._db() as db, db.transaction():
            for entry in entries:
                db.execute("DELETE FROM scrub_data_releases WHERE sha256 = %s", (entry.sha256,))
                db.execute("DELETE FROM scrub_data_chunks WHERE sha256 = %s", (entry.sha256,))
            db.execute("UPDATE scrub_data_state SET generation = generation + 1")

    def read(self, entry: Installed) -> Iterator[bytes]:
        with self._db() as db:
            for (chunk,) in db.execute("SELECT bytes FROM scrub_data_chunks WHERE sha256 = %s "
                                       "ORDER BY n", (entry.sha256,)):
                yield bytes(chunk)


_COLUMNS = ("sha256", "option", "label", "effective_from", "effective_to", "name", "size",
            "added", "source")


def _pg_entries(db: Any) -> tuple[Installed, ...]:
    rows = db.execute(f"SELECT {', '.join(_COLUMNS)} FROM scrub_data_releases").fetchall()
    return tuple(in_order(Installed(*row) for row in rows))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
