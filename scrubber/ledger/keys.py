"""The ledger's HMAC key: where it comes from, and how a wrong one is caught.

Patients are stored only as HMAC-SHA256 of their identity, so the key decides
who "the same patient" is. It never sits in the database it protects: it comes
from the caller, the environment (``SCRUBBER_LEDGER_KEY``, 64 hex digits, or
``SCRUBBER_LEDGER_KEY_FILE``) or a key file, owner-only. Every worker of a site
must use the same key. The database keeps a check value of its key (an HMAC of
a fixed text, which reveals nothing of the key) so that a missing or wrong key
is refused instead of silently starting a new, unmatchable history.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
import time
from pathlib import Path

KEY_BYTES = 32
ENV_KEY = "SCRUBBER_LEDGER_KEY"
ENV_KEY_FILE = "SCRUBBER_LEDGER_KEY_FILE"
_CHECK_TEXT = b"scrubber ledger key check v1"


class LedgerError(Exception):
    """The ledger cannot be used: unreachable, not a ledger, or its key is missing or wrong."""


def key_check(key: bytes) -> str:
    """A value the database keeps to recognise its key without holding it."""
    return hmac.new(key, _CHECK_TEXT, hashlib.sha256).hexdigest()[:32]


def _decode(data: bytes, where: str) -> bytes:
    """Raw 32 bytes (the file SQLite ledgers have always written) or 64 hex digits."""
    if len(data) == KEY_BYTES:
        return data
    text = data.strip()
    if len(text) == 2 * KEY_BYTES:
        try:
            return bytes.fromhex(text.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            pass
    raise LedgerError(f"the ledger key {where} is not a key ({len(data)} bytes; want "
                      f"{KEY_BYTES} raw bytes or {2 * KEY_BYTES} hex digits)")


def read_key_file(path: Path) -> bytes:
    """The key in ``path``, refused when others may read it: the key un-hashes patients."""
    for _ in range(50):
        try:
            mode = path.stat().st_mode
            data = path.read_bytes()
        except OSError as exc:
            raise LedgerError(f"the ledger key {path} cannot be read ({exc.strerror}); "
                              "without it earlier patients cannot be matched") from None
        if stat.S_IMODE(mode) & 0o077:
            raise LedgerError(f"the ledger key {path} is readable by others; make it "
                              f"owner-only (chmod 600 {path})")
        if len(data) >= KEY_BYTES:
            return _decode(data, str(path))
        time.sleep(0.01)  # its creator may still be writing it
    return _decode(data, str(path))


def write_new_key(path: Path) -> bytes:
    """Create ``path`` with a new random key, owner-only; never overwrite one (two racers agree)."""
    key = os.urandom(KEY_BYTES)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return read_key_file(path)
    with os.fdopen(fd, "wb") as out:
        out.write(key)
        out.flush()
        os.fsync(out.fileno())
    return key


def resolve_key(key: bytes | str | os.PathLike | None, default_file: Path | None, *,
                may_create: bool) -> bytes:
    """The key to use: ``key`` (bytes, or a key file), the environment, else ``default_file``.

    ``default_file`` is created only when ``may_create`` (a brand-new embedded
    ledger): an existing ledger whose key is gone is an error, never a new key.
    """
    if isinstance(key, bytes):
        return _decode(key, "given")
    if key is not None:
        return read_key_file(Path(key))
    if os.environ.get(ENV_KEY):
        return _decode(os.environ[ENV_KEY].encode(), f"in ${ENV_KEY}")
    if os.environ.get(ENV_KEY_FILE):
        return read_key_file(Path(os.environ[ENV_KEY_FILE]))
    if default_file is None:
        raise LedgerError(f"no ledger key: set {ENV_KEY} (64 hex digits) or {ENV_KEY_FILE} "
                          "(an owner-only key file), the same for every worker of the site; "
                          "`scrub ledger new-key FILE` makes one")
    if default_file.exists() or not may_create:
        return read_key_file(default_file)
    return write_new_key(default_file)
