"""Indexes of reference data in the user's cache folder: keyed by content, built once, atomic.

The NCCI tables (scrubber.ncci) and the code sets (scrubber.codesets) are read
from big files into SQLite indexes named after the sha256 of what went in, so
the same inputs open the same index in milliseconds and a changed file builds
a new one. An index is written to a temporary file beside its final name and
renamed into place, so two processes never see a half-built one; afterwards
it is only opened read-only. One module so both packs share the same care.

The folder is owner-only (0700) whatever the umask, and an index is opened
only when it is a plain file of this user that nobody else can write (a file
another user planted could hold tables that wave every claim through): any
other is built over. A folder that belongs to someone else is not used at
all: the indexes are then built in a private temporary folder.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import hashlib
import json
import logging
import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import TypeVar

from scrubber.paths import cache_dir, is_trusted, private_dir

T = TypeVar("T")
log = logging.getLogger(__name__)
STALE_DAYS = 30  # an index nobody opened for this long is removed after the next build


def default_cache_dir() -> Path:
    """The per-user cache folder (scrubber.paths.cache_dir), where the indexes live."""
    return cache_dir()


def index_folder(given: str | os.PathLike | None = None) -> Path:
    """The folder indexes go in: ``given`` (else the cache folder) made owner-only; a
    private temporary folder of this process when that one is another user's or cannot be
    made."""
    folder = Path(given) if given is not None else default_cache_dir()
    try:
        return private_dir(folder)
    except OSError as exc:
        log.warning("not using %s for indexes (%s); building them in a private temporary "
                    "folder", folder, exc.strerror or exc)
        return _scratch()


@functools.cache
def _scratch() -> Path:
    folder = tempfile.mkdtemp(prefix="scrubber-cache-")  # 0700
    atexit.register(shutil.rmtree, folder, True)
    return Path(folder)


# digests a caller already holds for files that cannot have changed (the files
# `scrub data add` installed: content-addressed, checked by size and time): see known_digests
_KNOWN: ContextVar[Mapping[str, str] | None] = ContextVar("scrubber_known_digests",
                                                          default=None)


@contextlib.contextmanager
def known_digests(digests: Mapping[str, str]) -> Iterator[None]:
    """Within the block, ``file_sha256`` of these paths is the digest given, not read again.

    For the installed reference data (scrubber.data), whose store recorded each
    file's digest when it was added and checks its size and modification time:
    opening a run's indexes then costs no hashing of hundreds of megabytes.
    """
    token = _KNOWN.set({**(_KNOWN.get() or {}), **digests})
    try:
        yield
    finally:
        _KNOWN.reset(token)


def file_sha256(path: Path, error: type[Exception], what: str) -> str:
    """The sha256 of the file's bytes; ``error`` (naming the file) when it cannot be read.

    ``what`` names the file the user should give instead of a folder.
    """
    known = (_KNOWN.get() or {}).get(os.fspath(path))
    if known is not None:
        return known
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except IsADirectoryError:
        raise error(f"{path}: is a folder; give {what}") from None
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror}") from None
    return digest.hexdigest()


def connect_read_only(path: Path) -> sqlite3.Connection:
    """An index opened read-only, shareable by threads.

    immutable: the file never changes once renamed into place (a rebuild
    replaces it), so SQLite may skip locking.
    """
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True,
                           check_same_thread=False)


def read_meta(path: Path, key: str, version: int, field: str) -> dict | None:
    """The JSON ``field`` of a complete index for ``key`` at ``path``, or None (build it).

    None too for an index of another layout ``version``, one that cannot be
    read, or one not to be trusted (scrubber.paths.is_trusted): a rebuild replaces it.
    """
    if not os.path.lexists(path):
        return None
    if not is_trusted(path):
        log.warning("rebuilding the index %s: not a file of this user that only it can "
                    "write", path)
        return None
    try:
        db = connect_read_only(path)
        try:
            meta = dict(db.execute("SELECT name, value FROM meta"))
        finally:
            db.close()
        if meta.get("key") != key or meta.get("version") != str(version):
            return None
        return json.loads(meta[field])
    except (sqlite3.DatabaseError, KeyError, ValueError):
        log.warning("rebuilding the unreadable index %s", path)
        return None


def touch(path: Path) -> None:
    """Record that the index was used (its modification time; see ``remove_stale``)."""
    try:
        os.utime(path)
    except OSError:
        pass


def build_atomically(path: Path, prefix: str, fill: Callable[[sqlite3.Connection], T]) -> T:
    """Run ``fill`` on a new database in a temporary file, then rename it to ``path``.

    ``prefix`` names the family of indexes ("ncci", "codesets"): stale files of
    the family are removed afterwards. Returns what ``fill`` returns.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{prefix}-", suffix=".tmp")  # 0600
    os.close(fd)
    try:
        db = sqlite3.connect(tmp)
        try:
            for pragma in ("journal_mode = OFF", "synchronous = OFF", "cache_size = -16384",
                           "locking_mode = EXCLUSIVE"):
                db.execute(f"PRAGMA {pragma}")
            result = fill(db)
            db.commit()
        finally:
            db.close()
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    remove_stale(path, prefix)
    return result


def remove_stale(keep: Path, prefix: str) -> None:
    """Remove ``prefix`` indexes unused for STALE_DAYS and temporary files of dead builds."""
    now = time.time()
    for entry in keep.parent.iterdir():
        name = entry.name
        if name.startswith(f"{prefix}-") and name.endswith(".sqlite") and entry != keep:
            limit = STALE_DAYS * 86400
        elif name.startswith(f".{prefix}-") and name.endswith(".tmp"):
            limit = 86400
        else:
            continue
        try:
            if now - entry.stat().st_mtime > limit:
                entry.unlink()
        except OSError:  # gone already, or not ours to remove: only costs disk
            pass


def keyed_index(prefix: str, version: int, inputs: dict[str, list[Path]],
                build: Callable[[sqlite3.Connection, str], dict],
                error: type[Exception], what: str,
                cache_dir: str | os.PathLike | None = None) -> tuple[Path, dict, bool]:
    """The index of ``inputs`` ({role: files}) in the cache folder, built by ``build`` once.

    The index is named after the sha256 of the files' bytes and names (a CMS name
    says a file's quarter), ``prefix`` and ``version``; ``build(db, key)`` fills a
    new one and returns what its "contents" meta row holds (it must write the meta
    rows "version", "key" and "contents"). Returns (path, contents, built).
    ``error``/``what``: raised, and named, for a file that cannot be read.
    """
    digests = {p: file_sha256(p, error, what) for paths in inputs.values() for p in paths}
    key = hashlib.sha256(json.dumps(
        {"version": version, **{role: [[digests[p], p.name] for p in paths]
                                for role, paths in inputs.items()}},
        sort_keys=True).encode()).hexdigest()
    path = index_folder(cache_dir) / f"{prefix}-{key[:40]}.sqlite"
    found = read_meta(path, key, version, "contents")
    if found is not None:
        touch(path)
        return path, found, False
    started = time.monotonic()
    contents = build_atomically(path, prefix, lambda db: build(db, key))
    log.info("built the %s index %s in %.1f s", prefix, path, time.monotonic() - started)
    return path, contents, True


def write_meta(db: sqlite3.Connection, key: str, version: int, contents: dict) -> dict:
    """The meta rows ``read_meta`` and ``keyed_index`` look for; returns ``contents``."""
    db.execute("CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT)")
    db.executemany("INSERT INTO meta VALUES (?, ?)", [
        ("version", str(version)), ("key", key), ("contents", json.dumps(contents))])
    return contents
