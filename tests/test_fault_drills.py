"""Fault drills: a run that dies, a disk that fills, a ledger that goes away record nothing.

A claim is in the ledger as sent only once the submission it came in is done:
``scrub check --record`` killed at random moments leaves each submission's
claims recorded all or none (all only when the run got to its end), nothing
held behind, and a resend under a new ISA13 is a duplicate only of what was
sent. Each drill runs on SQLite and on PostgreSQL.

With SCRUBBER_TEST_NO_HOLD=1 the scrubber's processes write a recording's
claims as sent at once (the behaviour before recordings, kept only to show
that these drills catch it): the drills then fail.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from servekit import generated, renumbered

from scrubber.ledger import open_store

pytestmark = pytest.mark.slow

KILLS = 12
CLAIMS = 2500
SUBMITTER = "SYNTHSUBMIT"


def scrub_command() -> list[str]:
    """The command line of a scrubber process (with holds switched off for the proof)."""
    if os.environ.get("SCRUBBER_TEST_NO_HOLD") == "1":
        return [sys.executable, "-c", "import sys; import scrubber.ledger.sqlbase as s; "
                "s.SqlStore._hold = False; from scrubber.cli import main; "
                "sys.argv[0] = 'scrub'; main()"]
    return [sys.executable, "-m", "scrubber"]


def recorded(target: str) -> dict[str, int]:
    """Claims per submission in the ledger, sent ones only, after a look for dead runs."""
    with open_store(target) as store:  # opening sweeps what dead runs held
        assert store.recordings() == [], "a dead run's held claims are left behind"
        assert store.stats()["held_claims"] == 0
        return {s.submission: s.claims for s in store.submissions() if s.state == "sent"}


def accepted_claims(report: dict) -> int:
    return sum(1 for file in report["files"] for ic in file["interchanges"]
               for group in ic["groups"] for txn in group["transactions"]
               for claim in txn["claims"] if claim["status"] == "accepted")


def test_check_record_killed_at_random_moments_records_each_submission_whole_or_not(
        ledger_target, tmp_path):
    base = generated(tmp_path / "base.x12", CLAIMS, seed=7).read_bytes()
    env = {**os.environ}
    first = tmp_path / "first.x12"
    first.write_bytes(renumbered(base, 100))
    started = time.monotonic()
    done = subprocess.run([*scrub_command(), "check", str(first), "--record", "--ledger",
                           ledger_target, "--format", "json"], capture_output=True,
                          text=True, env=env, timeout=600)
    took = time.monotonic() - started
    assert done.returncode in (0, 1), done.stderr
    whole = accepted_claims(json.loads(done.stdout))
    assert recorded(ledger_target) == {f"{SUBMITTER}:000000100": whole}

    rng = random.Random(23)
    before = recorded(ledger_target)
    killed = 0
    for k in range(1, KILLS + 1):
        path = tmp_path / f"run-{k}.x12"
        path.write_bytes(renumbered(base, 100 + k))
        process = subprocess.Popen([*scrub_command(), "check", str(path), "--record",
                                    "--ledger", ledger_target, "-q", "--277ca",
                                    str(tmp_path / "acks")], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            process.wait(timeout=rng.uniform(0.05, 1.1) * took)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            process.wait()
        submission = f"{SUBMITTER}:{100 + k:09d}"
        now = recorded(ledger_target)
        # the same claims under a new ISA13 each run: sent, they take the place of the
        # earlier copies (one claim, one identity); not sent, the ledger is as it was
        if process.returncode in (0, 1):
            assert now == {submission: whole}, (submission, now)
        else:
            killed += 1
            assert now in (before, {submission: whole}), (submission, now, before)
        before = now
    assert killed, "every run ended before its kill: no moment was tried"
    sent = set(before)

    # a resend under a new ISA13 is a duplicate of what was sent, and only of that
    resend = tmp_path / "resend.x12"
    resend.write_bytes(renumbered(base, 999))
    again = subprocess.run([*scrub_command(), "check", str(resend), "--ledger", ledger_target,
                            "--format", "json"], capture_output=True, text=True, env=env,
                           timeout=600)
    report = json.loads(again.stdout)
    named = {related.rpartition("(submission ")[2].rstrip(")")
             for file in report["files"] for ic in file["interchanges"]
             for group in ic["groups"] for txn in group["transactions"]
             for claim in txn["claims"] for finding in claim["findings"]
             if finding["rule"] == "duplicate-claim" for related in finding["related"]}
    assert named and named <= sent

    # and the next run records as it should, at once
    last = tmp_path / "last.x12"
    last.write_bytes(renumbered(base, 1000))
    subprocess.run([*scrub_command(), "check", str(last), "--record", "--ledger",
                    ledger_target, "-q"], env=env, timeout=600)
    assert recorded(ledger_target)[f"{SUBMITTER}:000001000"] == whole


def test_check_record_on_a_full_disk_records_nothing(tmp_path, tmpfs):
    """The ledger on a disk that fills during the run: a clear error, nothing recorded."""
    base = generated(tmp_path / "base.x12", CLAIMS, seed=9).read_bytes()
    ledger = tmpfs / "ledger.sqlite"
    open_store(ledger).close()
    (tmpfs / "filler").write_bytes(b"\0" * (tmpfs_free(tmpfs) - (96 << 10)))
    path = tmp_path / "batch.x12"
    path.write_bytes(renumbered(base, 300))
    result = subprocess.run([*scrub_command(), "check", str(path), "--record", "--ledger",
                             str(ledger), "-q"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "ledger" in result.stderr
    (tmpfs / "filler").unlink()
    assert recorded(str(ledger)) == {}


def tmpfs_free(folder: Path) -> int:
    stats = os.statvfs(folder)
    return stats.f_bavail * stats.f_frsize


@pytest.fixture
def tmpfs(tmp_path):
    """A small tmpfs (root only): a disk that fills."""
    folder = tmp_path / "small"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(folder)],
                             capture_output=True)
    if mounted.returncode != 0:
        if os.environ.get("CI") == "true":
            pytest.fail(f"cannot mount a tmpfs: {mounted.stderr!r}")
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)
