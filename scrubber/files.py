"""Creating the files we write (reports, acknowledgements, exports): whole or absent.

Every report, acknowledgement and export goes through ``open_private``, so that:

- **No partial file ever sits under its final name.** The content is written to
  a hidden temporary name in the same folder (``.<name>.<random>.part``), made
  durable with ``fsync``, and renamed over the final name when the file is
  closed. A failure midway (a full disk, a kill, an exception in the writer)
  leaves the earlier file, if any, or nothing: the temporary file is removed.
- **A failure names the file.** A write that fails raises ``OutputError`` (an
  ``OSError``, errno kept) whose message is one line naming the final path,
  for a front end to print and exit 2 on.
- **Never through a link.** Reports and acknowledgements carry PHI and land in
  folders other people may be able to write to (a shared drop folder, an
  acknowledgement directory). The temporary file is created with
  ``O_CREAT | O_EXCL | O_NOFOLLOW`` and owner-only (0600), and a rename
  replaces whatever holds the final name (a planted link is replaced, never
  followed).
"""

from __future__ import annotations

import errno
import io
import os
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, Literal, TextIO, overload

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | \
    getattr(os, "O_CLOEXEC", 0)
_ATTEMPTS = 3  # a name planted again between unlink and open this often is an attack
PART = ".part"  # the ending of a temporary name (hidden: it begins with a dot)


class OutputError(OSError):
    """A file we write could not be written; ``str()`` is one line naming its final path."""

    def __str__(self) -> str:
        return f"cannot write {self.filename}: {self.strerror or 'failed'}"


def output_error(exc: OSError, path: str | os.PathLike) -> OutputError:
    """``exc`` as an OutputError naming ``path`` (the final name, not a temporary one)."""
    if isinstance(exc, OutputError):
        return exc
    return OutputError(exc.errno or errno.EIO, exc.strerror or str(exc), os.fspath(path))


def writable_folder(path: str | os.PathLike) -> None:
    """Raise OutputError unless the folder a file ``path`` goes into exists and can be written.

    A front end calls it before the run, so that a mistyped folder is one line
    up front, not a scrub thrown away at its end.
    """
    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    if not os.path.isdir(folder):
        raise OutputError(errno.ENOENT, f"no such folder {folder}", os.fspath(path))
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(errno.EACCES, f"the folder {folder} cannot be written",
                          os.fspath(path))
    if os.path.isdir(path):
        raise OutputError(errno.EISDIR, "a folder has this name", os.fspath(path))


def ack_folder(path: str | os.PathLike) -> None:
    """Make the acknowledgements folder ``path`` (owner-only) if missing; OutputError if it
    cannot be made or written."""
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
    except OSError as exc:
        raise output_error(exc, path) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise OutputError(errno.EACCES, "the folder cannot be written", os.fspath(path))


def create_private(path: str | os.PathLike) -> int:
    """A new, empty, owner-only (0600) file at ``path``, as a raw descriptor.

    Whatever held the name before (a file of an earlier run, a planted link)
    is replaced, not written through. A directory at ``path`` raises
    IsADirectoryError; a name that keeps coming back raises FileExistsError.
    For a file with content, use ``open_private`` (whole or absent).
    """
    for _ in range(_ATTEMPTS):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        try:
            fd = os.open(path, _CREATE, 0o600)
        except FileExistsError:
            continue
        os.fchmod(fd, 0o600)  # the umask may have taken bits; never more than the owner's
        return fd
    raise FileExistsError(errno.EEXIST, "the name keeps being taken while we write it",
                          os.fspath(path))


def _temporary(final: str) -> tuple[str, int]:
    """A fresh owner-only temporary file beside ``final``: its name and descriptor."""
    folder, name = os.path.split(final)
    stem = name.encode("utf-8", "surrogateescape")[:160].decode("utf-8", "ignore")
    for _ in range(_ATTEMPTS):
        temp = os.path.join(folder, f".{stem}.{secrets.token_hex(4)}{PART}")
        try:
            fd = os.open(temp, _CREATE, 0o600)
        except FileExistsError:
            continue
        os.fchmod(fd, 0o600)
        return temp, fd
    raise FileExistsError(errno.EEXIST, "no free temporary name", final)


class _Pending(io.FileIO):
    """The temporary file: renamed over the final name when closed whole, else removed."""

    def __init__(self, fd: int, temp: str, final: str, durable: bool):
        super().__init__(fd, "wb", closefd=True)
        self.temp, self.final, self.durable = temp, final, durable
        self.keep = True  # False once a write failed or the writer gave the file up

    def write(self, data: Any) -> int:
        if not self.keep:  # given up: what is still buffered goes nowhere
            return len(memoryview(data))
        try:
            return super().write(data)
        except OSError as exc:
            self.keep = False
            raise output_error(exc, self.final) from None

    def close(self) -> None:
        if self.closed:
            return
        try:
            if self.keep and self.durable:
                os.fsync(self.fileno())
        except OSError as exc:
            self.keep = False
            super().close()
            _remove(self.temp)
            raise output_error(exc, self.final) from None
        super().close()
        if not self.keep:
            _remove(self.temp)
            return
        try:
            os.replace(self.temp, self.final)
        except OSError as exc:
            _remove(self.temp)
            raise output_error(exc, self.final) from None
        if self.durable:
            _sync_folder(self.final)

    def __del__(self) -> None:  # dropped without close: the file was never finished
        self.keep = False
        super().__del__()


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _sync_folder(path: str) -> None:
    """fsync the folder holding ``path``, so that the rename itself survives a crash."""
    try:
        fd = os.open(os.path.dirname(os.path.abspath(path)) or ".", os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class _Finish:
    """What the text and binary files ``open_private`` gives have in common."""

    buffer: Any

    def _pending(self) -> _Pending:
        raw = self if isinstance(self, _Pending) else getattr(self, "raw", None)
        if raw is None:
            raw = self.buffer.raw
        return raw  # type: ignore[no-any-return]

    def discard(self) -> None:
        """Give the file up: nothing is written under its final name."""
        self._pending().keep = False
        self.close()  # type: ignore[attr-defined]

    def __exit__(self, kind: Any, value: Any, traceback: Any) -> None:
        if kind is not None:  # the writer failed: the file is not whole
            self._pending().keep = False
        self.close()  # type: ignore[attr-defined]

    def __del__(self) -> None:
        if not self.closed:  # type: ignore[attr-defined]
            self._pending().keep = False
        try:
            self.close()  # type: ignore[attr-defined]
        except OSError:
            pass


class _Text(_Finish, io.TextIOWrapper):
    pass


class _Binary(_Finish, io.BufferedWriter):
    pass


@overload
def open_private(path: str | os.PathLike, mode: Literal["w"] = "w", *,
                 durable: bool = True) -> TextIO: ...
@overload
def open_private(path: str | os.PathLike, mode: Literal["wb"], *,
                 durable: bool = True) -> BinaryIO: ...


def open_private(path: str | os.PathLike, mode: str = "w", *,
                 durable: bool = True) -> TextIO | BinaryIO:
    """A new owner-only file for ``path``, whole or absent: a file object in ``mode``.

    ``mode`` is "w" (UTF-8 text) or "wb". The content goes to a temporary name
    beside ``path`` and replaces ``path`` when the file is closed (``close()``
    or the end of a ``with`` block); leaving a ``with`` block by an exception,
    calling ``discard()`` or dropping the object unclosed leaves ``path`` as it
    was. ``durable``: fsync the file and its folder (off for scratch files).
    A write, fsync or rename that fails raises ``OutputError`` naming ``path``;
    a folder at ``path`` raises IsADirectoryError at once.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"open_private writes new files only, not mode {mode!r}")
    final = os.fspath(path)
    try:
        if stat.S_ISDIR(os.lstat(final).st_mode):
            raise IsADirectoryError(errno.EISDIR, "a folder has this name", final)
    except FileNotFoundError:
        pass
    try:
        temp, fd = _temporary(final)
    except OSError as exc:
        if isinstance(exc, FileExistsError):
            raise
        raise output_error(exc, final) from None
    raw = _Pending(fd, temp, final, durable)
    binary = _Binary(raw, io.DEFAULT_BUFFER_SIZE)
    if mode == "wb":
        return binary  # type: ignore[return-value]
    return _Text(binary, encoding="utf-8")  # type: ignore[return-value]


def write_private(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path``, owner-only, whole or absent (see ``open_private``)."""
    with open_private(path, "wb") as out:
        out.write(data)


@contextmanager
def staged(target: str | os.PathLike) -> Iterator[tuple[Path, list[bool]]]:
    """A new owner-only file beside ``target`` to write, renamed onto it when the block
    ends well (fsynced first): the file is whole or absent, never half written.

    The block sets ``keep[0]`` False to have nothing at ``target`` instead (a file of an
    earlier run there is removed too). A failure removes the temporary file.
    """
    path = Path(target)
    stage = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    os.close(create_private(stage))
    keep = [True]
    try:
        yield stage, keep
    except BaseException:
        stage.unlink(missing_ok=True)
        raise
    if keep[0]:
        with open(stage, "rb+") as done:
            os.fsync(done.fileno())
        os.replace(stage, path)
    else:
        stage.unlink(missing_ok=True)
        path.unlink(missing_ok=True)


class SharedReader:
    """Reads a seekable file from a position of its own, whatever else reads the same
    handle: a tokenizer streams through it while its caller reads byte ranges."""

    def __init__(self, handle: BinaryIO):
        self.handle = handle
        self.position = handle.tell()

    def read(self, size: int = -1) -> bytes:
        here = self.handle.tell()
        self.handle.seek(self.position)
        data = self.handle.read(size)
        self.position = self.handle.tell()
        self.handle.seek(here)
        return data

