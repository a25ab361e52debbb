"""What ``scrub serve`` is configured with, in one frozen object every worker receives."""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path

from scrubber.options import ScrubOptions
from scrubber.paths import private_dir
from scrubber.serve.auth import Clients

#: the environment variable naming the pickled settings a worker process starts from
SETTINGS_ENV = "SCRUBBER_SERVE_SETTINGS"


@dataclass(frozen=True, slots=True)
class ClientLimits:
    """How long and how many: what keeps slow or half-open clients from starving the others.

    Enforced below the application, per worker process (``serve.guard``):
    a request head must arrive whole within ``header_timeout`` of the
    connection (or of the previous answer on it); a body must keep up
    ``body_min_rate`` bytes a second after a ``body_timeout`` allowance
    (time the service itself does not read is not counted); an answer the
    client does not read for ``send_timeout`` is dropped. At
    ``max_connections`` the connection that has waited longest without a
    request head is closed for the new one; when every connection is busy
    with a request, the new one is answered 503.
    """

    max_connections: int = 1000  # per worker; lowered to fit its file-descriptor limit
    header_timeout: float = 10.0  # seconds
    body_timeout: float = 20.0  # seconds of allowance before body_min_rate counts
    body_min_rate: int = 1024  # bytes a second
    send_timeout: float = 60.0  # seconds an answer may sit unread
    head_limit: int = 16 * 1024  # bytes: a larger request head is answered 431


@dataclass(frozen=True, slots=True)
class ServeSettings:
    """The service's settings; ``options`` decide verdicts exactly as ``scrub check`` would.

    ``data_dir`` holds the spool of request bodies and every submission's
    reports and acknowledgements (all owner-only: they carry PHI).
    ``store`` is where submissions and idempotency keys are kept: a SQLite
    path or a ``postgresql://`` URL shared by every worker; None keeps it in
    ``data_dir``.
    """

    data_dir: Path
    clients: Clients
    options: ScrubOptions = field(default_factory=ScrubOptions)
    store: str | None = None
    max_body: int = 64 * 1024 * 1024  # bytes; a larger body is answered with 413
    retention_days: int = 30  # a submission's reports are removed after this; 0 keeps them
    idempotency_wait: float = 120.0  # seconds a retry waits for the first request's answer
    lease: float = 30.0  # seconds a claimed key holds unless its worker renews it
    limits: ClientLimits = field(default_factory=ClientLimits)
    host: str = "127.0.0.1"
    port: int = 8837
    workers: int = 1

    @property
    def store_target(self) -> str:
        return self.store or str(self.data_dir / "submissions.sqlite")

    @property
    def spool_dir(self) -> Path:
        return self.data_dir / "spool"

    @property
    def submissions_dir(self) -> Path:
        return self.data_dir / "submissions"

    def prepare(self) -> None:
        """Create the data folders, owner-only."""
        for folder in (self.data_dir, self.spool_dir, self.submissions_dir):
            private_dir(folder)

    def save(self) -> Path:
        """Write these settings owner-only for worker processes to load (they hold tokens)."""
        self.prepare()
        path = self.data_dir / "serve-settings.pickle"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            pickle.dump(self, out, protocol=pickle.HIGHEST_PROTOCOL)
        return path

    @staticmethod
    def load(path: str | os.PathLike) -> ServeSettings:
        with open(path, "rb") as handle:
            settings = pickle.load(handle)
        if not isinstance(settings, ServeSettings):
            raise TypeError(f"{path} does not hold serve settings")
        return settings
