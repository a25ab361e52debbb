"""A real ``scrub serve`` (two uvicorn workers) driven by 16 concurrent HTTP clients.

200 requests mix valid, rejected, broken and oversized files with repeated
idempotency keys. Every request must get the status a sequential ``scrub
check`` of its file implies, no submission may be scrubbed twice, and the
ledger afterwards must hold what a sequential ``scrub check --record`` of
the same files puts in a ledger of its own.
"""

from __future__ import annotations

import json
import threading
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from servekit import (
    FIXTURES,
    auth,
    generated,
    ledger_lines,
    running_server,
    stores,
)

import scrubber
from scrubber.cli import main

REQUESTS = 200
CLIENTS = 16
MAX_BODY = 64 * 1024


def _files(folder: Path) -> list[Path]:
    folder.mkdir()
    files = [generated(folder / f"gen-{seed}.x12", 3 + seed, seed) for seed in range(1, 7)]
    for name in ("broken-binary.bin", "broken-empty.x12", "broken-no-isa.x12",
                 "broken-control-mismatch.x12", "broken-truncated.x12"):
        (folder / name).write_bytes((FIXTURES / name).read_bytes())
        files.append(folder / name)
    files.append(generated(folder / "oversized.x12", 400, 99))
    assert files[-1].stat().st_size > MAX_BODY
    return files


def _sequential(files: list[Path], ledger: Path) -> dict[str, tuple[int, str]]:
    """(status, verdict) per file as `scrub check --record`, one after the other, implies."""
    expected = {}
    for path in files:
        if path.stat().st_size > MAX_BODY:
            expected[path.name] = (413, "")
            continue
        result = CliRunner().invoke(main, ["check", str(path), "--record", "--ledger",
                                           str(ledger), "--format", "json"])
        verdict = {0: "accepted", 1: "rejected", 2: "failed"}[result.exit_code]
        expected[path.name] = (400 if verdict == "failed" else 201, verdict)
    return expected


@pytest.fixture(params=["sqlite", "postgresql"])
def backends(request, tmp_path, monkeypatch):
    """(store, ledger) targets: SQLite files, or one fresh PostgreSQL database for both."""
    with stores(request.param, tmp_path, monkeypatch) as targets:
        yield targets


def test_concurrent_clients_get_the_sequential_answers(tmp_path, backends):
    store, ledger = backends
    files = _files(tmp_path / "in")
    readable = [p for p in files if p.stat().st_size <= MAX_BODY]
    expected = _sequential(files, tmp_path / "sequential.sqlite")
    assert Counter(status for status, _ in expected.values()) == {201: 8, 400: 3, 413: 1}
    # request i sends file i % n; every third has no key, the others reuse one of 3 keys
    plan = []
    for i in range(REQUESTS):
        path = files[i % len(files)]
        key = None if i % 3 == 0 else f"{path.stem}-{i % 4}"
        plan.append((path, key))
    local = threading.local()

    with running_server(tmp_path, "--workers", "2", "--max-body", str(MAX_BODY),
                        "--store", store, "--ledger", ledger) as (base, log):
        def send(item: tuple[Path, str | None]) -> tuple[int, dict]:
            path, key = item
            if not hasattr(local, "client"):
                local.client = httpx.Client(base_url=base, timeout=120)
            headers = {**auth(), "Content-Type": "application/edi-x12"}
            if key:
                headers["Idempotency-Key"] = key
            answer = local.client.post("/v1/submissions", content=path.read_bytes(),
                                       headers=headers)
            return answer.status_code, answer.json()

        with ThreadPoolExecutor(CLIENTS) as pool:
            answers = list(pool.map(send, plan))
        report_ok = httpx.get(f"{base}{answers[1][1]['links']['self']}", headers=auth(),
                              timeout=60)
        assert report_ok.status_code == 200

    by_key: dict[str, set[str]] = defaultdict(set)
    unkeyed = set()
    for (path, key), (status, body) in zip(plan, answers, strict=True):
        want_status, want_verdict = expected[path.name]
        assert status == want_status, (path.name, key, body)
        if status == 413:
            assert body["error"] == "too_large"
            continue
        assert body["verdict"] == want_verdict, path.name
        (by_key[key] if key else unkeyed).add(body["id"])
    assert all(len(ids) == 1 for ids in by_key.values()), by_key  # one answer per key
    scrubbed = {p.name for p in (tmp_path / "serve" / "submissions").iterdir()}
    assert scrubbed == set().union(*by_key.values()) | unkeyed  # nothing scrubbed twice
    assert ledger_lines(ledger, readable) == ledger_lines(str(tmp_path / "sequential.sqlite"),
                                                          readable)
    assert ledger_lines(ledger, readable)  # something was recorded at all
    # the access log of both workers carries no member id, name or birth date
    text = log.read_text()
    assert text.count("POST /v1/submissions") == REQUESTS
    for path in readable:
        for claim in scrubber.iter_claims(path, conformance=False):
            subscriber = claim.record.subscriber
            if subscriber is not None and subscriber.member_id:
                assert subscriber.member_id not in text
                assert f" {subscriber.last_name} " not in text


def test_the_served_openapi_schema_is_the_apps(tmp_path):
    with running_server(tmp_path, "--no-ledger") as (base, _):
        schema = httpx.get(f"{base}/openapi.json", timeout=60).json()
    assert json.dumps(schema).count("/v1/") >= 4
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
