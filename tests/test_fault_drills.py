"""Fault drills: a run that dies, a disk that fills, a ledger that goes away record nothing.

A claim is in the ledger as sent only once the submission it came in is done:
``scrub check --record`` killed at random moments leaves each submission's
claims recorded all or none (all only when the run got to its end), nothing
held behind, and a resend under a new ISA13 is a duplicate only of what was
sent. ``scrub watch --split`` killed before each of its steps splits its file once
and sends the accepted batch's claims once. Each drill runs on SQLite and on PostgreSQL.

With SCRUBBER_TEST_NO_HOLD=1 the scrubber's processes write a recording's
claims as sent at once (the behaviour before recordings, kept only to show
that these drills catch it): the drills then fail.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from servekit import auth, children, gone, pg_database, renumbered, served, stores

from scrubber.api import scrub
from scrubber.ledger import open_store
from scrubber.serve.store import open_submissions

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
KILLS = 12
CLAIMS = 2500
SUBMITTER = "SYNTHSUBMIT"


def scrub_command() -> list[str]:
    """The command line of a scrubber process."""
    return [sys.executable, "-m", "scrubber"]


@pytest.fixture(autouse=True)
def holds(tmp_path_factory, monkeypatch):
    """With SCRUBBER_TEST_NO_HOLD=1, every scrubber process of the drill (this one, and those
    it starts, through a sitecustomize on their path) records as sent at once: the proof
    that the drills fail without the hold."""
    if os.environ.get("SCRUBBER_TEST_NO_HOLD") != "1":
        return
    from scrubber.ledger.sqlbase import SqlStore

    site = tmp_path_factory.mktemp("no-hold")
    (site / "sitecustomize.py").write_text(
        "import scrubber.ledger.sqlbase as s\ns.SqlStore._hold = False\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(site), *filter(None, [os.environ.get("PYTHONPATH")])]))
    monkeypatch.setattr(SqlStore, "_hold", False)


def generated(path: Path, claims: int, seed: int) -> Path:
    """A generated 837P of ``claims`` claims (its own claims by seed) at ``path``."""
    from servekit import generated as make

    return make(path, claims, seed)


def recorded(target: str, patience: float = 120.0) -> dict[str, int]:
    """Claims per submission in the ledger, sent ones only, after a look for dead runs.

    PostgreSQL lets a killed client's leases go when the server ends its session, a
    moment after the process is gone (SQLite's file locks go with the process): the
    sweep on opening is tried again until it finds the dead run's recording free. The
    wait is a hang guard, not a speed limit: a sweep that never comes still fails."""
    deadline = time.monotonic() + patience
    while True:
        with open_store(target) as store:  # opening sweeps what dead runs held
            left = store.recordings()
            if not left:
                assert store.stats()["held_claims"] == 0
                return {s.submission: s.claims for s in store.submissions()
                        if s.state == "sent"}
        assert time.monotonic() < deadline, f"a dead run's held claims are left behind: {left}"
        time.sleep(0.2)


def accepted_claims(report: dict) -> int:
    return sum(1 for file in report["files"] for ic in file["interchanges"]
               for group in ic["groups"] for txn in group["transactions"]
               for claim in txn["claims"] if claim["status"] == "accepted")


def test_check_record_killed_at_random_moments_records_each_submission_whole_or_not(
        ledger_target, tmp_path):
    env = {**os.environ}
    first = generated(tmp_path / "first.x12", CLAIMS, seed=7)
    started = time.monotonic()
    done = subprocess.run([*scrub_command(), "check", str(first), "--record", "--ledger",
                           ledger_target, "--format", "json"], capture_output=True,
                          text=True, env=env, timeout=600)
    took = time.monotonic() - started
    assert done.returncode in (0, 1), done.stderr
    before = recorded(ledger_target)
    assert before == {_submission(first): accepted_claims(json.loads(done.stdout))}

    rng = random.Random(23)
    killed = 0
    for k in range(1, KILLS + 1):
        path = generated(tmp_path / f"run-{k}.x12", CLAIMS, seed=100 + k)  # its own claims
        whole = sum(1 for c in scrub(path, no_ledger=True).claims if not c.rejected)
        process = subprocess.Popen([*scrub_command(), "check", str(path), "--record",
                                    "--ledger", ledger_target, "-q", "--277ca",
                                    str(tmp_path / "acks")], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            process.wait(timeout=rng.uniform(0.05, 1.1) * took)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            process.wait()
        submission = _submission(path)
        now = recorded(ledger_target)
        # every earlier submission as it was; this one whole if its run ended, else absent
        # or whole (killed after its commit)
        if process.returncode in (0, 1):
            assert now == {**before, submission: whole}, (submission, now)
        else:
            killed += 1
            assert now in (before, {**before, submission: whole}), (submission, now, before)
        before = now
    assert killed, "every run ended before its kill: no moment was tried"
    sent = set(before)

    # a resend of every run under a new ISA13 is a duplicate of what was sent, only of that
    for k in range(1, KILLS + 1):
        resend = tmp_path / f"resend-{k}.x12"
        resend.write_bytes(renumbered((tmp_path / f"run-{k}.x12").read_bytes(), 5000 + k))
        again = subprocess.run([*scrub_command(), "check", str(resend), "--ledger",
                                ledger_target, "--format", "json"], capture_output=True,
                               text=True, env=env, timeout=600)
        report = json.loads(again.stdout)
        named = {related.rpartition("(submission ")[2].rstrip(")")
                 for file in report["files"] for ic in file["interchanges"]
                 for group in ic["groups"] for txn in group["transactions"]
                 for claim in txn["claims"] for finding in claim["findings"]
                 if finding["rule"] == "duplicate-claim" for related in finding["related"]}
        original = _submission(tmp_path / f"run-{k}.x12")
        assert named == ({original} if original in sent else set()), (k, named)

    # and the next run records as it should, at once
    last = generated(tmp_path / "last.x12", CLAIMS, seed=999)
    subprocess.run([*scrub_command(), "check", str(last), "--record", "--ledger",
                    ledger_target, "-q"], env=env, timeout=600)
    whole = sum(1 for c in scrub(last, no_ledger=True).claims if not c.rejected)
    assert recorded(ledger_target) == {**before, _submission(last): whole}


def test_check_record_on_a_full_disk_records_nothing(tmp_path, tmpfs):
    """The ledger on a disk that fills during the run: a clear error, nothing recorded."""
    path = generated(tmp_path / "batch.x12", CLAIMS, seed=9)
    ledger = tmpfs / "ledger.sqlite"
    open_store(ledger).close()
    (tmpfs / "filler").write_bytes(b"\0" * (tmpfs_free(tmpfs) - (96 << 10)))
    result = subprocess.run([*scrub_command(), "check", str(path), "--record", "--ledger",
                             str(ledger), "-q"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "ledger" in result.stderr
    (tmpfs / "filler").unlink()
    assert recorded(str(ledger)) == {}


def tmpfs_free(folder: Path) -> int:
    stats = os.statvfs(folder)
    return stats.f_bavail * stats.f_frsize


# -- scrub serve -------------------------------------------------------------------------------

BURST = 8  # files submitted at once, each its own claims and ISA13


@pytest.fixture(params=["sqlite", "postgresql"])
def backends(request, tmp_path, monkeypatch):
    """(submission store, ledger): SQLite files, or one fresh PostgreSQL database for both."""
    with stores(request.param, tmp_path, monkeypatch) as targets:
        yield targets


def _submit(base: str, path: Path, answers: dict[str, int]) -> None:
    try:
        answer = httpx.post(f"{base}/v1/submissions", content=path.read_bytes(), timeout=300,
                            headers={**auth(), "Idempotency-Key": path.stem,
                                     "Content-Type": "application/edi-x12"})
        answers[path.stem] = answer.status_code
    except httpx.TransportError:
        pass  # the server was killed under it


def _mid_burst(store: str, files: list[Path], within: float = 600.0) -> None:
    """Wait until the burst is half-way: a submission done and another still pending."""
    submissions = open_submissions(store)
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        rows = [submissions.by_key("acme", p.stem) for p in files]
        states = {row.state for row in rows if row is not None}
        if {"done", "pending"} <= states:
            return
        if len(states) == 1 and "done" in states and None not in rows:
            raise AssertionError("every submission was answered before the kill")
        time.sleep(0.02)
    raise AssertionError("the burst never got half-way")


def _submission(path: Path) -> str:
    data = path.read_bytes()
    return f"{SUBMITTER}:{data[90:99].decode()}"  # ISA13


def test_serve_killed_in_a_burst_sends_exactly_the_answered_submissions(tmp_path, backends):
    store, ledger = backends
    files = []
    for n in range(BURST):
        path = generated(tmp_path / f"burst-{n}.x12", 600, seed=40 + n)
        files.append(path)
    whole = {_submission(p): sum(1 for c in scrub(p, no_ledger=True).claims if not c.rejected)
             for p in files}
    args = ("--workers", "2", "--store", store, "--ledger", ledger)
    answers: dict[str, int] = {}
    with served(tmp_path, *args) as server:
        workers = children(server.process.pid)
        threads = [threading.Thread(target=_submit, args=(server.base, p, answers),
                                    daemon=True) for p in files]
        for thread in threads:
            thread.start()
        _mid_burst(store, files)  # some answered, some being scrubbed: then the kill
        server.process.send_signal(signal.SIGKILL)
        server.process.wait()
        port = server.port
    deadline = time.monotonic() + 60
    while not all(gone(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    for thread in threads:
        thread.join(timeout=60)
    submissions = open_submissions(store)
    done = {_submission(p) for p in files if (row := submissions.by_key("acme", p.stem))
            is not None and row.done}
    # the restart ends what the killed workers held: sent for a stored answer, dropped else
    with served(tmp_path, *args, port=port, log_name="restart.log") as again:
        now = recorded(ledger)
        assert {sub: now[sub] for sub in now} == {sub: whole[sub] for sub in done}, \
            (now, done, answers)
        assert all(answers.get(p.stem) in (None, 201) for p in files)
        assert {_submission(p) for p in files if answers.get(p.stem) == 201} <= done
        # a resend under a new ISA13 is a duplicate of the sent claims, and only of them
        for n, path in enumerate(files):
            resent = renumbered(path.read_bytes(), 900 + n)
            report = httpx.post(f"{again.base}/v1/validate", content=resent, timeout=300,
                                headers={**auth(), "Content-Type": "application/edi-x12"}).json()
            duplicates = [f for file in report["files"] for ic in file["interchanges"]
                          for g in ic["groups"] for t in g["transactions"]
                          for c in t["claims"] for f in c["findings"]
                          if f["rule"] == "duplicate-claim"]
            assert bool(duplicates) == (_submission(path) in done), path.name
        # a retry with the same key is answered at once, and then every file is sent whole
        for path in files:
            retry = httpx.post(f"{again.base}/v1/submissions", content=path.read_bytes(),
                               timeout=300, headers={**auth(), "Idempotency-Key": path.stem,
                                                     "Content-Type": "application/edi-x12"})
            assert retry.status_code == 201, retry.text
        assert recorded(ledger) == whole


def test_serve_on_a_full_data_folder_sends_nothing_it_did_not_answer(tmp_path, tmpfs):
    from fastapi.testclient import TestClient
    from servekit import settings

    from scrubber.serve import create_app

    path = generated(tmp_path / "batch.x12", 400, seed=61)
    ledger = str(tmp_path / "ledger.sqlite")
    config = settings(tmp_path, ledger=ledger, data_dir=tmpfs / "serve", idempotency_wait=1.0)
    headers = {**auth(), "Idempotency-Key": "full", "Content-Type": "application/edi-x12"}
    with TestClient(create_app(config)) as client:
        room = tmpfs_free(tmpfs) - (path.stat().st_size + (48 << 10))
        (tmpfs / "filler").write_bytes(b"\0" * max(0, room))  # the reports do not fit
        answer = client.post("/v1/submissions", content=path.read_bytes(), headers=headers)
        assert answer.status_code == 503 and answer.headers["retry-after"], answer.text
        assert recorded(ledger) == {}
        (tmpfs / "filler").unlink()
        again = client.post("/v1/submissions", content=path.read_bytes(), headers=headers)
        assert again.status_code == 201, again.text
        assert recorded(ledger) == {_submission(path): again.json()["counts"]["accepted"]}


def test_serve_with_its_ledger_connection_cut_sends_nothing_of_that_submission(tmp_path,
                                                                              monkeypatch):
    import psycopg
    from fastapi.testclient import TestClient
    from servekit import PG_URL, settings

    from scrubber.serve import create_app

    path = generated(tmp_path / "batch.x12", 2500, seed=71)
    monkeypatch.setenv("SCRUBBER_LEDGER_KEY", "5e" * 32)
    with pg_database() as ledger:
        name = ledger.rpartition("/")[2]
        config = settings(tmp_path, ledger=ledger)
        headers = {**auth(), "Idempotency-Key": "cut", "Content-Type": "application/edi-x12"}
        answers: list[httpx.Response] = []
        with TestClient(create_app(config)) as client:
            intake = client.app.state.intake  # type: ignore[attr-defined]
            sender = threading.Thread(target=lambda: answers.append(client.post(
                "/v1/submissions", content=path.read_bytes(), headers=headers)))
            sender.start()
            with psycopg.connect(PG_URL, autocommit=True) as admin:
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline and not recorded_any(ledger):
                    time.sleep(0.05)  # once it has held some claims, cut it off
                admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                              "datname = %s AND pid <> pg_backend_pid()", (name,))
            sender.join(timeout=300)
            (answer,) = answers
            if answer.status_code == 201:
                pytest.skip("the submission ended before the cut: nothing was tried")
            assert answer.status_code == 503 and answer.json()["error"] == "unavailable"
            with open_store(ledger) as store:  # sent: nothing; held: ended by resolve
                assert store.stats()["claims"] == store.stats()["held_claims"]
            intake.resolve()
            assert recorded(ledger) == {}
            again = client.post("/v1/submissions", content=path.read_bytes(), headers=headers)
            assert again.status_code == 201, again.text
            assert recorded(ledger) == {_submission(path): again.json()["counts"]["accepted"]}


def recorded_any(target: str) -> bool:
    """Whether a run holds (or sent) any claim in the ledger yet."""
    import psycopg

    with psycopg.connect(target, autocommit=True) as db:
        try:
            return bool(db.execute("SELECT COUNT(*) FROM claims").fetchone()[0])
        except psycopg.Error:
            return False


# -- scrub watch --split -----------------------------------------------------------------------

# The watcher under a drill: every file rename, replace, unlink and fsync and every ledger
# transaction (its start and its commit) of the watcher and its workers is a step, counted
# in the file $DRILL_STEPS (one line each, under a lock: the processes share it); at step
# $DRILL_KILL_AT the whole process group is killed with SIGKILL, before that step is taken.
DRILLED_WATCH = """
import fcntl, os, signal, sys
from contextlib import contextmanager

STEPS, KILL_AT = os.environ["DRILL_STEPS"], int(os.environ.get("DRILL_KILL_AT") or 0)


def step(what, arg=""):
    fd = os.open(STEPS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, f"{os.getpid()} {what} {os.path.basename(str(arg))}\\n".encode())
        with open(STEPS, "rb") as steps:
            n = sum(1 for _ in steps)
        if n == KILL_AT:
            os.killpg(os.getpgrp(), signal.SIGKILL)
    finally:
        os.close(fd)


def counted(name):
    real = getattr(os, name)

    def call(*args, **kwargs):
        step(name, args[0] if args else "")
        return real(*args, **kwargs)
    setattr(os, name, call)


for name in ("rename", "replace", "unlink", "fsync"):
    counted(name)

from scrubber.ledger.postgres import PostgresStore
from scrubber.ledger.sqlite import SqliteStore


def transaction(real):
    @contextmanager
    def counted(self):
        step("begin")
        with real(self):
            yield
        step("commit")
    return counted


for store in (SqliteStore, PostgresStore):
    store._transaction = transaction(store._transaction)

from scrubber.cli import main

sys.argv = ["scrub", *sys.argv[1:]]
main()
"""


def drilled_watch(root: Path, ledger: str, steps: Path, kill_at: int = 0
                  ) -> subprocess.CompletedProcess:
    """``scrub watch --once --split`` on ``root``, killed (with its workers) before its
    ``kill_at``-th step (0: never); its steps listed in ``steps``."""
    steps.unlink(missing_ok=True)
    env = {**os.environ, "DRILL_STEPS": str(steps), "DRILL_KILL_AT": str(kill_at)}
    return subprocess.run([sys.executable, "-c", DRILLED_WATCH, "watch", str(root), "--once",
                           "--split", "--record", "--ledger", ledger, "--settle", "0",
                           "--poll", "--workers", "1"], env=env, capture_output=True,
                          text=True, timeout=300, start_new_session=True)


def _entries(folder: Path) -> list[str]:
    return sorted(entry.name for entry in folder.iterdir()) if folder.is_dir() else []


def _one_outcome(root: Path, data: bytes) -> None:
    """After a kill: the input is in inbox/, or in work/ (to be redone), or kept in
    reports/ with each of its batches either filed or waiting in work/ to be filed."""
    inbox, work = _entries(root / "inbox"), _entries(root / "work")
    jobs = [name for name in work if not name.startswith(".") and name != "journal.jsonl"]
    parts = [name for name in work if name.endswith(".part")]
    kept = sorted((root / "reports").glob("*.original.x12")) if (root / "reports").is_dir() \
        else []
    filed = {folder: _entries(root / folder) for folder in ("accepted", "rejected", "failed")}
    where = len(inbox) + len(jobs) + len(kept)
    assert where == 1, (inbox, work, kept)
    assert not filed["failed"]
    if not kept:
        assert filed == {"accepted": [], "rejected": [], "failed": []}, filed
        return
    assert kept[0].read_bytes() == data
    for kind, folder in (("accepted", "accepted"), ("held", "rejected")):
        waiting = [name for name in parts if name.endswith(f".{kind}.part")]
        assert len(waiting) + len(filed[folder]) == 1, (kind, waiting, filed)


def test_watch_split_killed_at_every_step_files_and_records_each_claim_once(
        ledger_target, tmp_path):
    """``scrub watch --once --split --record`` killed (watcher and worker, SIGKILL) before
    each of its steps in turn, its restart killed once more at a seeded step of its own,
    then run to its end: the file is split once (accepted/ and rejected/ batches, the file
    kept in reports/), every claim in one batch byte for byte, no part left in work/, and
    the ledger holds the accepted batch's claims once, under the batch's interchange."""
    from test_split import claim_bytes

    data = ((ROOT / "fixtures/rules/96523-sole-service.fail.837p.x12").read_bytes()
            + (ROOT / "fixtures/837p-multi.x12").read_bytes())
    warm = drilled_watch(_split_root(tmp_path / "warm", data), ledger_target,
                         tmp_path / "steps")  # caches built (steps of the first run only)
    assert warm.returncode == 0, warm.stderr
    rng = random.Random(28)
    killed = 0
    for n in itertools.count(1):  # before each step in turn, until a run gets to its end
        ledger = _fresh_ledger(ledger_target, tmp_path / f"ledger-{n}")
        root = _split_root(tmp_path / f"root-{n}", data)
        first = drilled_watch(root, ledger, tmp_path / "steps", kill_at=n)
        if first.returncode != -signal.SIGKILL:
            assert first.returncode == 0, (n, first.stderr)
            _split_whole(root, ledger, data, claim_bytes, n)
            break
        killed += 1
        _one_outcome(root, data)
        again = drilled_watch(root, ledger, tmp_path / "steps", kill_at=rng.randint(1, 16))
        assert again.returncode in (0, -signal.SIGKILL), (n, again.stderr)
        if again.returncode == -signal.SIGKILL:
            _one_outcome(root, data)
        last = drilled_watch(root, ledger, tmp_path / "steps")
        assert last.returncode == 0, (n, last.stderr)
        _split_whole(root, ledger, data, claim_bytes, n)
    # the moments tried: the scrub, its reports and batches, the filing, the ledger's steps
    assert killed > 30, killed


def _split_root(root: Path, data: bytes) -> Path:
    (root / "inbox").mkdir(parents=True)
    (root / "inbox" / "mixed.x12").write_bytes(data)
    return root


def _fresh_ledger(target: str, folder: Path) -> str:
    """A ledger of its own for one kill: a new SQLite file, or the PostgreSQL schema
    emptied."""
    if "://" not in target:
        folder.mkdir()
        return str(folder / "ledger.sqlite")
    with open_store(target) as store:
        for submission in store.submissions():
            store.forget_submission(submission.submission)
    return target


def _split_whole(root: Path, ledger: str, data: bytes, claim_bytes, n: int) -> None:
    """The end of a drill: the input split once, whole, and its accepted claims sent once."""
    assert _entries(root / "inbox") == [], n
    assert _entries(root / "work") == ["journal.jsonl"], (n, _entries(root / "work"))
    assert _entries(root / "accepted") == ["mixed.x12"] == _entries(root / "rejected"), n
    assert _entries(root / "failed") == [], n
    (kept,) = (root / "reports").glob("*.original.x12")
    assert kept.read_bytes() == data
    assert len(list((root / "reports").glob("mixed.x12.*.json"))) == 1, n
    assert not [p for p in (root / "reports").iterdir() if p.name.startswith(".")], n
    sent = (root / "accepted" / "mixed.x12").read_bytes()
    held = (root / "rejected" / "mixed.x12").read_bytes()
    assert sorted(claim_bytes(sent) + claim_bytes(held)) == sorted(claim_bytes(data)), n
    assert claim_bytes(sent) and claim_bytes(held), n
    separator = sent[3:4]
    fields = sent[:106].split(separator)
    submission = f"{fields[6].decode().strip()}:{fields[13].decode()}"
    ids = sorted(raw.split(separator)[1].decode() for raw in claim_bytes(sent))
    assert recorded(ledger) == {submission: len(ids)}, n
    with open_store(ledger) as store:
        rows = sorted((claim["claim_id"], claim["submission"], claim["status"])
                      for claim in list(store.export())[1:])
    assert rows == [(claim_id, submission, "sent") for claim_id in ids], (n, rows)
