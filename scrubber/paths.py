"""Where scrubber keeps things on disk, decided in one place (XDG base directories).

- ``cache_dir()``: what can be rebuilt at any time (compiled guides, NCCI indexes):
  $XDG_CACHE_HOME/scrubber, else ~/.cache/scrubber.
- ``state_dir()``: what must survive (the claim ledger, acknowledgement control
  numbers): $XDG_STATE_HOME/scrubber, else ~/.local/state/scrubber.
- ``data_dir()``: the reference data the user installs (``scrub data add``: CMS
  code sets, NCCI tables): $XDG_DATA_HOME/scrubber, else ~/.local/share/scrubber.
- ``maps_dir()``: the X12 maps, schemas and default profile we ship (x12_maps/).

Every folder scrubber makes here is owner-only (0700) whatever the umask
(``private_dir``), and what it reads back from a cache is trusted only when it is
the user's own and nobody else can write it or its folder (``open_trusted``,
``is_trusted``): a file planted by another user is ignored and rebuilt.

A leaf module: it imports nothing of scrubber, so any layer may use it.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import sys
from pathlib import Path

log = logging.getLogger(__name__)


def cache_dir() -> Path:
    """$XDG_CACHE_HOME/scrubber, else ~/.cache/scrubber."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "scrubber"


def state_dir() -> Path:
    """$XDG_STATE_HOME/scrubber, else ~/.local/state/scrubber."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "scrubber"


def data_dir() -> Path:
    """$XDG_DATA_HOME/scrubber, else ~/.local/share/scrubber."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "scrubber"


def maps_dir() -> Path:
    """x12_maps/ beside the package (a checkout), else where ``pip install`` put the data."""
    here = Path(__file__).resolve().parent.parent / "x12_maps"
    if (here / "profile.xsd").is_file():
        return here
    return Path(sys.prefix) / "share" / "scrubber" / "x12_maps"


class UnsafeFolder(OSError):
    """A folder scrubber would keep private files in belongs to another user."""


def private_dir(path: str | os.PathLike, *, own: bool = True) -> Path:
    """``path`` as an owner-only folder (0700), made with its missing parents.

    The umask does not matter: a folder we make is 0700, and so is one of ours
    that is open to others. Raises UnsafeFolder when the folder belongs to
    another user (its files could be swapped under us), OSError when it cannot
    be made. With ``own=False`` (a folder the user named, such as a site's
    ledger folder) an existing folder is left as it is.
    """
    path = Path(path)
    missing = []
    for folder in (path, *path.parents):
        if os.path.lexists(folder):
            break
        missing.append(folder)
    for folder in reversed(missing):  # XDG: "create it with permission 0700"
        try:
            os.mkdir(folder, 0o700)
        except FileExistsError:
            continue  # a racing run made it: checked below like any other
        os.chmod(folder, 0o700)  # a umask such as 0o200 takes bits mkdir's mode keeps
    if not own:
        return path
    found = os.stat(path)
    if not stat.S_ISDIR(found.st_mode):
        raise NotADirectoryError(f"{path} is not a folder")
    if found.st_uid != os.geteuid():
        raise UnsafeFolder(f"{path} belongs to another user (uid {found.st_uid})")
    if found.st_mode & 0o077:
        os.chmod(path, 0o700)
    return path


def _trusted(found: os.stat_result) -> bool:
    """Ours, and writable by nobody else."""
    return found.st_uid == os.geteuid() and not found.st_mode & 0o022


def is_trusted(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a regular file (not a link, FIFO or device) of this user that
    nobody else can write, in a folder nobody else can write."""
    try:
        found = os.lstat(path)
        folder = os.stat(os.path.dirname(os.path.abspath(path)))
    except OSError:
        return False
    return stat.S_ISREG(found.st_mode) and _trusted(found) and _trusted(folder)


_READ = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | \
    getattr(os, "O_CLOEXEC", 0)


class UntrustedFile(OSError):
    """A file scrubber would read back (a cache, the serve settings) may have been planted:
    a link, a FIFO, another user's, or writable by others (or in a folder they can write)."""


def open_private(path: str | os.PathLike) -> int:
    """``path`` opened for reading, as a descriptor, when it is a plain file of this user
    that nobody else can write, in a folder nobody else can write.

    Raises UntrustedFile naming the path and what is wrong, FileNotFoundError when
    it is absent, OSError when it cannot be opened. O_NOFOLLOW refuses a planted
    link and O_NONBLOCK a planted FIFO's wait for a writer; the checks are made on
    the opened file (fstat), so nothing can be swapped in between.
    """
    try:
        fd = os.open(path, _READ)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UntrustedFile(exc.errno, "a symbolic link", str(path)) from None
        raise
    try:
        found = os.fstat(fd)
        folder = os.stat(os.path.dirname(os.path.abspath(path)))
        if not stat.S_ISREG(found.st_mode):
            why = "not a regular file"
        elif found.st_uid != os.geteuid():
            why = f"owned by uid {found.st_uid}, not by this user (uid {os.geteuid()})"
        elif found.st_mode & 0o022:
            why = f"writable by others (mode {stat.S_IMODE(found.st_mode):04o})"
        elif not _trusted(folder):
            why = "in a folder another user owns or others can write"
        else:
            os.set_blocking(fd, True)
            return fd
    except BaseException:
        os.close(fd)
        raise
    os.close(fd)
    raise UntrustedFile(errno.EPERM, why, str(path))


def open_trusted(path: str | os.PathLike) -> int | None:
    """A cache file opened for reading, as a descriptor; None when it is absent or not to
    be trusted (``open_private``: a link, a FIFO, another user's, writable by others),
    which is logged: the caller rebuilds it."""
    try:
        return open_private(path)
    except FileNotFoundError:
        return None
    except UntrustedFile as exc:
        log.warning("ignoring the cache file %s: %s", path, exc.strerror)
    except OSError as exc:  # EACCES; ENXIO
        log.warning("ignoring the cache file %s (%s)", path, exc.strerror)
    return None
