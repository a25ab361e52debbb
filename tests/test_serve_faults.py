"""``scrub serve`` against slow clients, bad HTTP, a full disk and ``kill -9``: real processes.

- 2,000 slow-loris connections against a worker limited to 1,024 file
  descriptors: ``/healthz`` keeps answering, the log stays a few lines
  (the 1 s figure is measured in bench/serve_slow_clients.py, not here:
  the clients share the machine's two cores with the server).
- A head sent a line every 4 s and a body at a byte per 0.5 s are cut off
  with a JSON 408.
- Malformed requests sent on a raw socket get JSON, whatever refused them.
- A full data folder (a 1 MiB tmpfs) answers 503 with Retry-After.
- ``kill -9`` of the supervisor of two workers leaves nobody on the port,
  and a submission killed half-way is scrubbed at once by a retry with its
  Idempotency-Key after the restart (SQLite and PostgreSQL).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from servekit import (
    FIXTURES,
    SlowClients,
    answer_of,
    auth,
    children,
    descriptors,
    generated,
    gone,
    raw_exchange,
    served,
    settings,
    stores,
)

from scrubber.serve import create_app
from scrubber.serve.settings import ClientLimits
from scrubber.serve.store import open_submissions

VALID = FIXTURES / "837p-multi.x12"
TOKEN = auth()["Authorization"]
#: a log line of the service: time, logger, message (or the CLI's own "scrub: ..." line)
LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [\w.]+ \S.*|scrub: .*)$")


def _log_is_clean(log: Path) -> list[str]:
    lines = log.read_text(errors="replace").splitlines()
    assert [line for line in lines if not LOG_LINE.match(line)] == []  # one format only
    text = "\n".join(lines)
    for never in ("Traceback", "Too many open files", "Errno 24", "Exception in"):
        assert never not in text
    return lines


def _wait_gone(pids: list[int], within: float = 30.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if all(gone(pid) for pid in pids):
            return True
        time.sleep(0.1)
    return False


# -- slow clients ------------------------------------------------------------------------------

@pytest.mark.slow
def test_slow_clients_do_not_starve_healthz_at_a_descriptor_limit_of_1024(tmp_path):
    with descriptors(2000 + 512), served(tmp_path, "--no-ledger", fd_limit=1024) as server:
        with SlowClients(server.port, 2000) as slow:
            deadline = time.monotonic() + 120
            while slow.opened < 2000 and time.monotonic() < deadline:
                time.sleep(0.1)  # every slow connection opened at least once
            assert slow.opened >= 2000
            answered = []
            for _ in range(20):
                answered.append(httpx.get(f"{server.base}/healthz", timeout=30).status_code)
                time.sleep(0.2)
        assert answered == [200] * 20
        # the slow connections the cap pushed out were told so, in JSON, and came back
        assert slow.answers[503] > 0 and slow.opened > 2000
        lines = _log_is_clean(server.log)
        assert len(lines) < 100
        assert any("evicted" in line and "cap" in line for line in lines)
        assert httpx.get(f"{server.base}/readyz", timeout=30).status_code == 200


@pytest.mark.slow
def test_a_slow_head_and_a_slow_body_are_cut_off_with_a_json_408(tmp_path):
    import socket

    with served(tmp_path, "--no-ledger", "--header-timeout", "1",
                "--body-timeout", "1") as server:
        head = socket.create_connection(("127.0.0.1", server.port), timeout=60)
        body = socket.create_connection(("127.0.0.1", server.port), timeout=60)
        head.sendall(b"POST /v1/validate HTTP/1.1\r\nHost: x\r\n")
        body.sendall(f"POST /v1/validate HTTP/1.1\r\nHost: x\r\nAuthorization: {TOKEN}\r\n"
                     "Content-Length: 1000\r\n\r\n".encode())
        said: dict[str, bytes] = {}

        def trickle(name: str, sock: socket.socket, piece: bytes, every: float) -> None:
            try:
                for _ in range(120):  # a minute at most: far past either deadline
                    sock.sendall(piece)
                    time.sleep(every)
            except OSError:
                pass

        def listen(name: str, sock: socket.socket) -> None:
            received = b""
            try:
                while chunk := sock.recv(4096):
                    received += chunk
            except OSError:
                pass
            said[name] = received

        threads = [threading.Thread(target=trickle, args=("head", head, b"X-Slow: 1\r\n", 4)),
                   threading.Thread(target=trickle, args=("body", body, b"I", 0.5)),
                   threading.Thread(target=listen, args=("head", head)),
                   threading.Thread(target=listen, args=("body", body))]
        for thread in threads:
            thread.daemon = True
            thread.start()
        for thread in threads[2:]:
            thread.join(timeout=60)
        assert set(said) == {"head", "body"}  # both closed by the server
        for name in ("head", "body"):
            status, headers, content = answer_of(said[name])
            assert status == 408 and headers["content-type"] == "application/json"
            assert json.loads(content)["error"] == "request_timeout"
        head.close()
        body.close()
        assert httpx.get(f"{server.base}/healthz", timeout=60).status_code == 200
        _log_is_clean(server.log)


@pytest.mark.slow
def test_an_answer_the_client_does_not_read_is_dropped(tmp_path):
    import socket

    config = replace(settings(tmp_path, ledger=None, max_body=64 << 20),
                     limits=ClientLimits(send_timeout=1.0))
    big = generated(tmp_path / "big.x12", 3000, 3)  # a JSON report of some MB
    with served(tmp_path, config=config) as server:
        sent = httpx.post(f"{server.base}/v1/submissions", content=big.read_bytes(),
                          headers=auth(), timeout=300)
        assert sent.status_code == 201
        with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.sendall(f"GET {sent.json()['links']['report_json']} HTTP/1.1\r\nHost: x\r\n"
                         f"Authorization: {TOKEN}\r\n\r\n".encode())  # and read nothing
            deadline = time.monotonic() + 60
            while "answer not read" not in server.log.read_text():
                assert time.monotonic() < deadline, "the unread answer was never dropped"
                time.sleep(0.2)
        assert httpx.get(f"{server.base}/healthz", timeout=60).status_code == 200
        _log_is_clean(server.log)


# -- errors before the application ---------------------------------------------------------------

MALFORMED = {
    "bad Content-Length": (b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
                           400),
    "two Content-Lengths": (b"POST /v1/validate HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                            b"Content-Length: 6\r\n\r\nhello", 400),
    "bad chunking": (b"POST /v1/validate HTTP/1.1\r\nHost: x\r\nAuthorization: " +
                     TOKEN.encode() + b"\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n"
                     b"0\r\n\r\n", 400),
    "unknown coding": (b"GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
                       501),
    "not HTTP": (b"GARBAGE SAMPLETON\r\n\r\n", 400),
    "no Host": (b"GET /healthz HTTP/1.1\r\n\r\n", 400),
    "TLS to a plain port": (bytes.fromhex("16030100a5010000a10303") + b"\0" * 40, 400),
    "huge head in one piece": (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000
                               + b"\r\n\r\n", 431),
    "huge head, unfinished": (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 300_000,
                              431),
    "huge head, over the limit": (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: "
                                  + b"a" * 20_000, 431),
}


@pytest.mark.slow
def test_malformed_requests_get_json_whatever_refused_them(tmp_path):
    with served(tmp_path, "--no-ledger") as server:
        for name, (request, expected) in MALFORMED.items():
            status, headers, body = answer_of(raw_exchange(server.port, request))
            assert status == expected, name
            assert headers["content-type"] == "application/json", name
            said = json.loads(body)
            assert set(said) == {"error", "message"} and said["message"], name
            assert "SAMPLETON" not in said["message"]  # what was sent is not echoed
        # a multipart body python-multipart cannot parse: a JSON 400, nothing printed raw
        broken = (b"POST /v1/validate HTTP/1.1\r\nHost: x\r\nAuthorization: " + TOKEN.encode()
                  + b"\r\nContent-Type: multipart/form-data; boundary=x\r\nContent-Length: 6"
                  b"\r\nConnection: close\r\n\r\n--y\r\n\r\n")
        status, _, body = answer_of(raw_exchange(server.port, broken))
        assert status == 400 and json.loads(body)["error"] == "no_file"
        assert httpx.get(f"{server.base}/healthz", timeout=60).status_code == 200
        lines = _log_is_clean(server.log)
        assert not any("boundary" in line for line in lines)


def test_a_multipart_parser_complaint_is_not_printed(tmp_path, capfd):
    config = settings(tmp_path)
    with TestClient(create_app(config)) as client:
        capfd.readouterr()
        answer = client.post("/v1/validate", content=b"--y\r\n\r\n", headers={
            **auth(), "Content-Type": "multipart/form-data; boundary=x"})
    assert answer.status_code == 400 and answer.json()["error"] == "no_file"
    assert "boundary" not in capfd.readouterr().err


# -- a full disk -------------------------------------------------------------------------------

@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs at tmp_path/small (root only), unmounted afterwards."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        if os.environ.get("CI") == "true":
            pytest.fail("a full-disk test needs root to mount a tmpfs")
        pytest.skip("a full-disk test needs root to mount a tmpfs")
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(mount)],
                   check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(folder: Path, leave: int = 0) -> Path:
    """Fill ``folder``'s file system, then free ``leave`` bytes again; the filler file."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as out:
        try:
            while out.write(b"\0" * 4096):
                pass
        except OSError:
            pass
    if leave:
        os.truncate(filler, max(0, filler.stat().st_size - leave))
    return filler


# 0: the spool fails; 8 KiB: the store; 16 KiB: the reports, and then the store's abandon
# (the retry takes the row over at once); 96 KiB: room enough
@pytest.mark.parametrize("leave", [0, 8 << 10, 16 << 10, 40 << 10, 96 << 10])
def test_a_full_data_folder_answers_503_and_keeps_nothing_partial(tmp_path, small_disk, leave):
    config = settings(tmp_path, data_dir=small_disk / "serve", idempotency_wait=1.0)
    body = VALID.read_bytes()
    headers = {**auth(), "Idempotency-Key": "full-disk", "Content-Type": "application/edi-x12"}
    with TestClient(create_app(config)) as client:
        filler = _fill(small_disk, leave)
        statuses = []
        for url in ("/v1/validate", "/v1/submissions"):
            answer = client.post(url, content=body, headers=headers)
            statuses.append(answer.status_code)
            if answer.status_code == 503:
                assert answer.headers["retry-after"]
                assert answer.json()["error"] in ("storage_full", "unavailable")
            else:  # there was room after all: the whole answer
                assert answer.status_code in (200, 201), answer.text
        if leave == 0:
            assert statuses == [503, 503]
        # nothing partial is left: no spool file, no submission folder without its answer
        assert list(config.spool_dir.iterdir()) == []
        store = open_submissions(config.store_target)
        kept = {p.name for p in config.submissions_dir.iterdir()}
        found = store.by_key("acme", "full-disk")
        assert kept == ({found.id} if found is not None and found.done else set())
        # with room again, the retry with the same key is scrubbed (or replayed) at once
        filler.unlink()
        again = client.post("/v1/submissions", content=body, headers=headers)
        assert again.status_code == 201 and again.json()["verdict"] == "accepted"


# -- kill -9 -------------------------------------------------------------------------------------

@pytest.mark.slow
def test_serving_on_is_said_only_for_a_port_this_service_holds(tmp_path):
    with served(tmp_path, "--no-ledger") as server:
        other = tmp_path / "other"
        other.mkdir()
        (other / "tokens").write_bytes((tmp_path / "tokens").read_bytes())
        (other / "tokens").chmod(0o600)
        result = subprocess.run(
            [sys.executable, "-m", "scrubber", "serve", "--port", str(server.port), "--tokens",
             str(other / "tokens"), "--data-dir", str(other / "serve"), "--no-ledger",
             "--workers", "2"], capture_output=True, text=True, timeout=120)
        assert result.returncode == 2
        assert "serving on" not in result.stderr
        assert f"cannot listen on 127.0.0.1:{server.port}" in result.stderr
        assert "Traceback" not in result.stderr
        assert httpx.get(f"{server.base}/healthz", timeout=60).status_code == 200


@pytest.fixture(params=["sqlite", "postgresql"])
def backends(request, tmp_path, monkeypatch):
    """(store, ledger) targets: SQLite files, or one fresh PostgreSQL database for both."""
    with stores(request.param, tmp_path, monkeypatch) as targets:
        yield targets


@pytest.mark.slow
def test_kill_9_of_the_supervisor_mid_submission_then_a_prompt_retry(tmp_path, backends):
    store, ledger = backends
    big = generated(tmp_path / "big.x12", 3000, 7)  # seconds of scrubbing
    args = ("--workers", "2", "--store", store, "--ledger", ledger)
    headers = {**auth(), "Idempotency-Key": "killed-batch",
               "Content-Type": "application/edi-x12"}
    with served(tmp_path, *args) as server:
        workers = children(server.process.pid)
        assert len(workers) == 2
        threading.Thread(target=_send_and_forget, args=(server.base, big, headers),
                         daemon=True).start()
        held = _pending(store, "killed-batch")
        server.process.send_signal(signal.SIGKILL)
        server.process.wait()
        # the workers end with their supervisor: nobody is left serving on the port
        assert _wait_gone(workers), "a worker outlived its supervisor"
        row = open_submissions(store).by_key("acme", "killed-batch")
        assert row is not None and row.id == held and not row.done  # killed half-way
        port = server.port
    with served(tmp_path, *args, port=port, log_name="restart.log") as again:
        assert open_submissions(store).by_key("acme", "killed-batch") is None  # swept at start
        started = time.monotonic()
        retry = httpx.post(f"{again.base}/v1/submissions", content=big.read_bytes(),
                           headers=headers, timeout=60)  # the old wait alone was 120 s
        assert retry.status_code == 201, retry.text
        assert retry.json()["id"] != held and "idempotent-replayed" not in retry.headers
        took = time.monotonic() - started
        row = open_submissions(store).by_key("acme", "killed-batch")
        assert row is not None and row.done and row.id == retry.json()["id"]
        kept = {p.name for p in (tmp_path / "serve" / "submissions").iterdir()}
        assert held not in kept  # what the killed worker wrote is gone
        replay = httpx.post(f"{again.base}/v1/submissions", content=big.read_bytes(),
                            headers=headers, timeout=60)
        assert replay.json()["id"] == retry.json()["id"]
        _log_is_clean(again.log)
    print(f"retry after restart answered in {took:.1f} s")


def _send_and_forget(base: str, path: Path, headers: dict[str, str]) -> None:
    try:
        httpx.post(f"{base}/v1/submissions", content=path.read_bytes(), headers=headers,
                   timeout=120)
    except httpx.TransportError:
        pass  # the server is killed under it


def _pending(store: str, key: str, within: float = 120.0) -> str:
    """The id of the submission with ``key`` once it is pending in the store."""
    deadline = time.monotonic() + within
    submissions = open_submissions(store)
    while time.monotonic() < deadline:
        found = submissions.by_key("acme", key)
        if found is not None:
            assert not found.done, "scrubbed before it could be killed: use a larger file"
            return found.id
        time.sleep(0.05)
    raise AssertionError("the submission never started")
