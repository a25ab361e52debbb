"""Test helpers for the HTTP intake: settings, 837 bodies, ledger contents, PostgreSQL.

The 837 bodies come from our own fixtures and from bench/gen837.py (fictional
people and providers, valid NPI check digits); ``renumbered`` gives each
generated file its own interchange control number, so every file is its own
submission in the ledger.
"""

from __future__ import annotations

import importlib.util
import os
import re
import resource
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import astuple, dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

import scrubber
from scrubber.core import ScrubOptions
from scrubber.ledger import open_store
from scrubber.model.keys import patient_identity
from scrubber.rules.context import service_date
from scrubber.serve.auth import parse_tokens
from scrubber.serve.settings import ServeSettings

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
TOKENS = {"acme": "acme-token-0123456789abcdef", "beta": "beta-token-0123456789abcdef"}
TOKEN_TEXT = "".join(f"{client}:{token}\n" for client, token in TOKENS.items())
PG_URL = os.environ.get("SCRUBBER_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def auth(client: str = "acme") -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[client]}"}


def settings(tmp_path: Path, *, ledger: str | None = None, store: str | None = None,
             max_body: int = 1 << 20, data_dir: Path | None = None, **changes
             ) -> ServeSettings:
    """Settings for a test service under ``tmp_path`` with the clients acme and beta."""
    ledger = ledger if ledger is not None else str(tmp_path / "ledger.sqlite")
    return ServeSettings(data_dir=data_dir or tmp_path / "serve",
                         clients=parse_tokens(TOKEN_TEXT, "test"),
                         options=ScrubOptions(ledger=ledger, record=True), store=store,
                         max_body=max_body, **changes)


def generator():
    """bench/gen837.py as a module (bench/ is not a package)."""
    spec = importlib.util.spec_from_file_location("gen837", ROOT / "bench" / "gen837.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def renumbered(data: bytes, control: int) -> bytes:
    """``data`` with its (single) interchange's ISA13 and IEA02 set to ``control``."""
    number = f"{control:09d}".encode()
    data, isa = re.subn(rb"(\*\d{6}\*\d{4}\*.\*00501\*)\d{9}", rb"\g<1>" + number, data, count=1)
    data, iea = re.subn(rb"IEA\*(\d+)\*\d{9}", rb"IEA*\1*" + number, data, count=1)
    assert isa == iea == 1
    return data


def generated(path: Path, claims: int, seed: int) -> Path:
    """A generated 837P of ``claims`` claims with its own control number, at ``path``."""
    generator().generate(path, claims, "P", seed=seed)
    path.write_bytes(renumbered(path.read_bytes(), 1000 + seed))
    return path


def ledger_lines(target: str, files: Iterable[Path]) -> list[tuple]:
    """Every ledger line on a day of a claim in ``files``: the ledger seen through its API."""
    days = set()
    for path in files:
        for claim in scrubber.iter_claims(path, conformance=False):
            for line in claim.record.claim.lines:
                day = service_date(claim.record, line)
                if day is not None:
                    days.add((patient_identity(claim.record), day))
    ledger = open_store(target)
    try:
        return sorted((identity, line) for identity, day in days
                      for line in map(astuple, ledger.lines_for(identity, day)))
    finally:
        ledger.close()


@contextmanager
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database at $SCRUBBER_TEST_PG_URL's server, dropped afterwards.

    Without a server the test is skipped, except under CI=true, where it fails.
    """
    psycopg = pytest.importorskip("psycopg")
    try:
        admin = psycopg.connect(PG_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"no PostgreSQL server at {PG_URL}: {exc}")
        pytest.skip(f"no PostgreSQL server at {PG_URL}")
    name = f"scrubber_test_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield urlunsplit(urlsplit(PG_URL)._replace(path=f"/{name}"))
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def stores(kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, str]]:
    """(submission store, ledger) targets of ``kind``: SQLite files, or one fresh
    PostgreSQL database for both.

    A PostgreSQL ledger takes its key from the site's environment, the same for every
    worker (and for the test, which reads the ledger afterwards).
    """
    if kind == "sqlite":
        yield str(tmp_path / "store.sqlite"), str(tmp_path / "ledger.sqlite")
        return
    monkeypatch.setenv("SCRUBBER_LEDGER_KEY", "5e" * 32)
    with pg_database() as url:
        yield url, url


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Served:
    """A ``scrub serve`` started by ``served``: its process, port, base URL and log file."""

    process: subprocess.Popen
    port: int
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _limit_descriptors(count: int):
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (count, count))
    return limit


@contextmanager
def served(folder: Path, *args: str, port: int | None = None, ready_within: float = 600.0,
           fd_limit: int | None = None, log_name: str = "serve.log",
           config: ServeSettings | None = None) -> Iterator[Served]:
    """A real ``scrub serve`` on 127.0.0.1 (a free port unless given), ready; stopped after.

    ``fd_limit`` sets its soft and hard file-descriptor limit (the service may raise
    its soft limit to its hard one, so both). With ``config``, the service runs
    those settings (what the command line cannot say, e.g. ``ClientLimits``) through
    ``run_server`` instead of the command. Stopped with SIGTERM, then SIGKILL; a
    test may kill it first.
    """
    from dataclasses import replace

    import httpx

    tokens = folder / "tokens"
    tokens.write_text(TOKEN_TEXT)
    tokens.chmod(0o600)
    port = port or free_port()
    log = folder / log_name
    command = [sys.executable, "-m", "scrubber", "serve", "--port", str(port), "--tokens",
               str(tokens), "--data-dir", str(folder / "serve"), *args]
    if config is not None:
        saved = replace(config, port=port).save()
        command = [sys.executable, "-c", "import sys; from scrubber.serve.server import "
                   "run_server; from scrubber.serve.settings import ServeSettings; "
                   "sys.exit(run_server(ServeSettings.load(sys.argv[1])))", str(saved)]
    with open(log, "wb") as err:
        process = subprocess.Popen(
            command, stdout=err, stderr=subprocess.STDOUT, cwd=folder,
            preexec_fn=_limit_descriptors(fd_limit) if fd_limit else None)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + ready_within
        while True:
            if process.poll() is not None:
                raise AssertionError(f"scrub serve exited: {log.read_text()}")
            try:
                if httpx.get(f"{base}/readyz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"scrub serve not ready: {log.read_text()}")
            time.sleep(0.3)
        yield Served(process, port, log)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def running_server(folder: Path, *args: str, ready_within: float = 600.0
                   ) -> Iterator[tuple[str, Path]]:
    """A real ``scrub serve`` on 127.0.0.1 (a free port): its base URL and its log file."""
    with served(folder, *args, ready_within=ready_within) as server:
        yield server.base, server.log


def children(pid: int) -> list[int]:
    """The pids of ``pid``'s child processes (Linux /proc)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        found += [int(child) for child in task.read_text().split()]
    return found


def gone(pid: int) -> bool:
    """Has ``pid`` ended (a zombie has)?"""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rfind(")") + 2] in "ZX"


@contextmanager
def descriptors(needed: int) -> Iterator[None]:
    """This process's soft file-descriptor limit raised to ``needed`` if it is lower."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        yield
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        pytest.skip(f"needs {needed} file descriptors; the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def raw_exchange(port: int, data: bytes, timeout: float = 30.0) -> bytes:
    """Send ``data`` on a new connection and read until the server closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
        except OSError:  # answered and closed before all of it was sent
            pass
        received = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                return received
            if not chunk:
                return received
            received += chunk


def answer_of(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of one raw HTTP/1.1 answer."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body


class SlowClients:
    """``count`` connections that send a request head one line at a time and never finish it.

    Every ``every`` seconds each gets one more header line; one the server
    closed is opened again, so ``count`` are held from this side the whole
    time (the slow-loris attack). ``answers`` counts the statuses the server
    said on closing them. Runs in a thread; use as a context manager.
    """

    def __init__(self, port: int, count: int, every: float = 1.0):
        self.port, self.count, self.every = port, count, every
        self.answers: Counter[int] = Counter()
        self.opened = 0
        self.failed_connects = 0
        self._selector = selectors.DefaultSelector()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _open(self) -> None:
        try:
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=2)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: slow\r\n")
        except OSError:
            self.failed_connects += 1
            return
        sock.setblocking(False)
        self._selector.register(sock, selectors.EVENT_READ)
        self.opened += 1

    def _close(self, sock: socket.socket) -> None:
        self._selector.unregister(sock)
        sock.close()

    def held(self) -> int:
        return len(self._selector.get_map())

    def _run(self) -> None:
        while not self._stop.is_set():
            for _ in range(self.count - self.held()):
                self._open()
            tick = time.monotonic() + self.every
            while not self._stop.is_set() and time.monotonic() < tick:
                for key, _ in self._selector.select(timeout=0.1):
                    sock = key.fileobj
                    try:
                        said = sock.recv(4096)
                    except OSError:
                        said = b""
                    if said.startswith(b"HTTP/1.1 "):
                        self.answers[int(said.split()[1])] += 1
                    self._close(sock)
            for key in list(self._selector.get_map().values()):
                try:
                    key.fileobj.send(b"X-Slow: 1\r\n")
                except OSError:
                    self._close(key.fileobj)

    def __enter__(self) -> SlowClients:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        for key in list(self._selector.get_map().values()):
            self._close(key.fileobj)
        self._selector.close()
