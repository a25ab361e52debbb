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
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import astuple
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
             max_body: int = 1 << 20, **changes) -> ServeSettings:
    """Settings for a test service under ``tmp_path`` with the clients acme and beta."""
    ledger = ledger if ledger is not None else str(tmp_path / "ledger.sqlite")
    return ServeSettings(data_dir=tmp_path / "serve", clients=parse_tokens(TOKEN_TEXT, "test"),
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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def running_server(folder: Path, *args: str, ready_within: float = 120.0
                   ) -> Iterator[tuple[str, Path]]:
    """A real ``scrub serve`` on 127.0.0.1 (a free port): its base URL and its log file."""
    import httpx

    tokens = folder / "tokens"
    tokens.write_text(TOKEN_TEXT)
    tokens.chmod(0o600)
    port = free_port()
    log = folder / "serve.log"
    with open(log, "wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "scrubber", "serve", "--port", str(port), "--tokens",
             str(tokens), "--data-dir", str(folder / "serve"), *args],
            stdout=err, stderr=subprocess.STDOUT, cwd=folder)
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
        yield base, log
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
