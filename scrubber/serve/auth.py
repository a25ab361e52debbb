"""Bearer tokens: each names its client; a client sees only its own submissions.

Tokens come from a file (one ``client:token`` a line, ``#`` comments; the
file must not be readable by others, like an ssh key) or from an environment
variable (``client:token`` entries separated by commas or white space). They
are compared in constant time, against every known token, so neither the
match nor its position leaks through timing.
"""

from __future__ import annotations

import hmac
import os
import re
import stat
from dataclasses import dataclass

_CLIENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MIN_TOKEN = 16  # characters; a short token can be guessed


class TokenError(Exception):
    """The tokens cannot be used; the message names the file or variable and the entry."""


@dataclass(frozen=True, slots=True)
class Clients:
    """The known (client, token) pairs."""

    tokens: tuple[tuple[str, str], ...]

    def client_for(self, token: str) -> str | None:
        """The client a presented token belongs to, or None; constant time per token."""
        found = None
        presented = token.encode("utf-8", "surrogateescape")
        for client, known in self.tokens:
            if hmac.compare_digest(presented, known.encode("utf-8")):
                found = client
        return found

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(sorted({client for client, _ in self.tokens}))


def parse_tokens(text: str, where: str) -> Clients:
    """``client:token`` entries (one per line or separated by commas/spaces) into Clients."""
    pairs = []
    for number, line in enumerate(text.splitlines(), 1):
        for entry in re.split(r"[,\s]+", line.split("#", 1)[0].strip()):
            if not entry:
                continue
            client, sep, token = entry.partition(":")
            if not sep or not _CLIENT.match(client):
                raise TokenError(f"{where}, line {number}: an entry must be client:token "
                                 "(client: letters, digits, . _ -)")
            if len(token) < MIN_TOKEN:
                raise TokenError(f"{where}, line {number}: the token of {client!r} is shorter "
                                 f"than {MIN_TOKEN} characters")
            pairs.append((client, token))
    if not pairs:
        raise TokenError(f"{where}: no client:token entries")
    tokens = [token for _, token in pairs]
    if len(set(tokens)) != len(tokens):
        raise TokenError(f"{where}: two entries share a token; each client needs its own")
    return Clients(tuple(pairs))


def load_tokens(path: str | None = None, env: str | None = None) -> Clients:
    """The tokens of ``path`` and of the environment variable ``env``, together."""
    found: list[tuple[str, str]] = []
    if path:
        try:
            mode = os.stat(path).st_mode
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise TokenError(f"{path}: the token file is readable by others; "
                                 f"chmod 600 {path}")
            with open(path, encoding="utf-8") as handle:
                found += parse_tokens(handle.read(), path).tokens
        except OSError as exc:
            raise TokenError(f"{path}: {exc.strerror or exc}") from None
    if env and os.environ.get(env):
        found += parse_tokens(os.environ[env], f"${env}").tokens
    if not found:
        raise TokenError("no bearer tokens: give --tokens FILE or set "
                         f"${env or 'SCRUB_SERVE_TOKENS'} (client:token entries)")
    tokens = [token for _, token in found]
    if len(set(tokens)) != len(tokens):
        raise TokenError("two entries share a token; each client needs its own")
    return Clients(tuple(found))
