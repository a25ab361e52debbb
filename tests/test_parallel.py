"""--jobs N: the work shared by processes, and every output as with one job."""

from __future__ import annotations

import json
import logging
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import scrubber.parallel as parallel
from scrubber.cli import main
from scrubber.core import Scrubber, ScrubOptions
from scrubber.emit.sinks import report_sink
from scrubber.ig import check as ig_check
from scrubber.ig.report import merge_reports

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from gen837 import generate  # noqa: E402

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated 837P of 600 claims in 12 transaction sets, the 8th broken (999 R)."""
    folder = tmp_path_factory.mktemp("jobs")
    path = folder / "batch.x12"
    generate(str(path), 600, "P", seed=7, claims_per_transaction=50)
    data = path.read_bytes()
    starts = [m.start() for m in re.finditer(rb"(?m)^ST\*837\*", data)]
    assert len(starts) == 12
    clm = data.index(b"CLM*", starts[7])
    end = data.index(b"~", clm)
    path.write_bytes(data[:clm] + data[clm:end].replace(b"*", b"*X", 2) + data[end:])
    return path


def _shares(path: Path, jobs: int) -> list:
    size = path.stat().st_size
    return [lambda offset, k=k: k * size // jobs <= offset < (k + 1) * size // jobs
            for k in range(jobs)]


@pytest.mark.parametrize("jobs", [2, 3, 5])
def test_merged_partial_reports_are_the_whole_report(batch: Path, jobs: int) -> None:
    whole = ig_check(batch)
    parts = [ig_check(batch, owns=owns) for owns in _shares(batch, jobs)]
    # each part checked some sets and only counted the others
    assert all(any(t.skipped for t in p.transactions) for p in parts)
    assert [t.ack_code for t in whole.transactions].count("R") == 1
    assert merge_reports(parts) == whole


@pytest.mark.parametrize("name", ["837p-multi-envelope.x12", "broken-se-count.x12",
                                  "broken-missing-se.x12", "broken-truncated.x12",
                                  "broken-two-interchanges-first-bad.x12"])
def test_merge_holds_on_broken_envelopes(name: str) -> None:
    path = FIXTURES / name
    for jobs in (2, 3):
        assert merge_reports([ig_check(path, owns=o) for o in _shares(path, jobs)]) == \
            ig_check(path)


def _segment_by_segment(path: Path, owns) -> object:
    """The IG report of ``path``'s sets that ``owns`` takes, the checker fed one segment
    at a time (the other sets' bodies counted segment by segment)."""
    from scrubber.ig.checker import Checker
    from scrubber.ig.compile import load_guides
    from scrubber.x12.tokenizer import Tokenizer

    checker = Checker(load_guides(), owns)
    with path.open("rb") as stream:
        tokenizer = Tokenizer(stream)
        checker.feed(tokenizer, tokenizer)
    return checker.report()


def test_skipped_sets_counted_from_the_text_as_segment_by_segment(batch: Path) -> None:
    # every fixture (broken envelopes, CR LF, one segment per line or none), cut 2 and 3 ways
    paths = [batch, *sorted(FIXTURES.rglob("*.x12"))]
    compared = 0
    for path in paths:
        for jobs in (2, 3):
            for owns in _shares(path, jobs):
                assert ig_check(path, owns=owns) == _segment_by_segment(path, owns), path
                compared += 1
    assert compared >= 5 * len(paths)


def test_merge_refuses_parts_that_do_not_cover_every_set(batch: Path) -> None:
    first, _ = _shares(batch, 2)
    with pytest.raises(ValueError, match="checked 2 times, not once"):
        merge_reports([ig_check(batch, owns=first), ig_check(batch, owns=first)])


def _owners(shares: list, path: Path, source: int = 0) -> list[int]:
    """How many ST segments of ``path`` each share owns (by the tokenizer's offsets)."""
    from scrubber.x12.tokenizer import Segment, Tokenizer

    owns = [share.owns(source) for share in shares]
    counts = [0] * len(shares)
    with path.open("rb") as stream:
        segments = [s for s in Tokenizer(stream) if isinstance(s, Segment)]
    for segment in segments:
        if segment.id == "ST":
            (owner,) = [k for k, own in enumerate(owns) if own(segment.offset)]
            counts[owner] += 1
    return counts


def test_shares_cut_at_the_set_nearest_the_middle(tmp_path: Path) -> None:
    # ten equal sets: the sixth starts just before the byte middle, so an equal-bytes cut
    # gave one worker six sets and the other four
    path = tmp_path / "ten.x12"
    generate(str(path), 1000, "P", seed=3, claims_per_transaction=100)
    data = path.read_bytes()
    starts = [m.start() for m in re.finditer(rb"(?m)^ST\*837\*", data)]
    assert len(starts) == 10 and starts[5] < len(data) // 2
    assert _owners(parallel.shares([str(path)], 2), path) == [5, 5]
    assert _owners(parallel.shares([str(path)], 3), path) in ([3, 4, 3], [3, 3, 4], [4, 3, 3])


def test_shares_of_files_without_a_readable_isa_fall_back_to_equal_bytes(tmp_path: Path
                                                                         ) -> None:
    junk = tmp_path / "junk.x12"
    junk.write_bytes(b"not x12 at all " * 1000)
    share = parallel.shares([str(junk)], 2)[0]
    assert share.cuts == (0, junk.stat().st_size // 2, junk.stat().st_size)


def _check(args: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["check", *args], catch_exceptions=False)
    # the run details name the ledger, and the runs compared each have their own
    return result.exit_code, re.sub(r'"ledger": "[^"]*"', '"ledger": "L"', result.output)


def test_a_reader_of_some_sets_counts_the_others_claims(batch: Path) -> None:
    """read(owns=...) makes claims of the sets it takes only, the same claims a whole read
    makes, and counts the others' (SkippedClaims): ordinals stay exact in every share."""
    from scrubber.model import ClaimRecord, read
    from scrubber.model.walker import SkippedClaims

    whole = [e for e in read(str(batch)) if type(e) is ClaimRecord]
    cut = batch.stat().st_size // 3
    for owns in (lambda offset: offset < cut, lambda offset: offset >= cut,
                 lambda offset: False):
        ordinal, mine = 0, []
        for event in read(str(batch), owns=owns):
            if type(event) is SkippedClaims:
                ordinal += event.count
            elif type(event) is ClaimRecord:
                ordinal += 1
                mine.append((ordinal, event))
        assert ordinal == len(whole)
        assert all(whole[n - 1] == record for n, record in mine)
        assert [n for n, _ in mine] == [n for n, r in enumerate(whole, 1)
                                         if owns(r.transaction.location.offset)]


@pytest.mark.parametrize("fmt", ["json", "text", "csv"])
def test_jobs_give_the_same_report_and_exit_code(batch: Path, fmt: str) -> None:
    # the 96523 fixtures meet each other's patient-days across files: a cross-file context
    rules = sorted(str(p) for p in (FIXTURES / "rules").glob("96523-sole*.x12"))
    args = [str(batch), *rules, "--format", fmt, "--no-ledger"]
    one = _check([*args, "--jobs", "1"])
    assert one[0] == 1 and "96523" in one[1]
    for jobs in ("2", "3"):
        assert _check([*args, "--jobs", jobs]) == one


def _acks(folder: Path) -> dict[str, str]:
    """The acknowledgements with their fresh control numbers and timestamps blanked."""
    out = {}
    for path in sorted(folder.iterdir()):
        text = path.read_text()
        text = re.sub(r"\*\d{6}\*\d{4}\*", "*D*T*", text)  # ISA09/10
        text = re.sub(r"\*\d{8}\*\d{4,6}\*", "*D*T*", text)  # GS04/05, BHT04/05
        text = re.sub(r"(GS(?:\*[^*]*){5}\*)\d+", r"\1N", text)  # GS06
        text = re.sub(r"(GE\*\d+\*)\d+", r"\1N", text)
        text = re.sub(r"\d{9}", "N", text)  # ISA13, ST02, TRN02 ...: nine-digit numbers
        out[path.name] = text
    return out


def test_jobs_record_the_same_claims_and_write_the_same_acknowledgements(
        batch: Path, tmp_path: Path) -> None:
    runs = {}
    for jobs in ("1", "2"):
        folder = tmp_path / jobs
        code, output = _check([str(batch), "--format", "json", "--ledger",
                               str(folder / "ledger.db"), "--record", "--277ca",
                               str(folder / "acks"), "--999", "--jobs", jobs])
        export = CliRunner().invoke(main, ["ledger", "export", "--ledger",
                                           str(folder / "ledger.db")])
        rows = [json.loads(line) for line in export.output.splitlines()[1:]]
        for row in rows:  # each ledger has its own key and clock
            del row["patient"], row["recorded_at"]
        runs[jobs] = (code, output, _acks(folder / "acks"),
                      sorted(json.dumps(r, sort_keys=True) for r in rows))
    accepted = json.loads(runs["1"][1])["total"]["accepted"]
    assert runs["1"][0] == 1 and 0 < len(runs["1"][3]) == accepted < 550  # 50 held by the 999
    assert set(runs["1"][2]) == {"batch.x12.277ca.x12", "batch.x12.999.x12"}
    assert runs["2"] == runs["1"]


def forked(monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers forked, so that they inherit a fault the test lays in. The run spawns them
    instead while another thread runs, and a test before this one may have left one (a
    SparkSession's py4j threads): the fault would then never reach them."""
    monkeypatch.setattr(parallel.threading, "active_count", lambda: 1)


def test_a_failing_worker_leaves_the_run_to_one_process(
        batch: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from scrubber.rules.engine import DayIndex

    expected = _check([str(batch), "--format", "json", "--no-ledger", "--jobs", "1"])

    def full_disk(self: DayIndex) -> None:
        raise OSError("no space left on device")

    # only a worker writes its share of the index with flush(); forked, it inherits this
    monkeypatch.setattr(DayIndex, "flush", full_disk)
    forked(monkeypatch)
    with caplog.at_level(logging.WARNING, logger="scrubber.parallel"):
        assert _check([str(batch), "--format", "json", "--no-ledger", "--jobs", "2"]) == \
            expected
    assert "the 2 jobs failed (OSError: no space left on device)" in caplog.text


def test_a_worker_failing_while_it_scrubs_leaves_its_claims_to_the_parent(
        batch: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """The parent has begun the reports: it scrubs the claims the worker did not get to."""
    args = [str(batch), "--format", "json", "--ledger", str(tmp_path / "{}.db"), "--record"]
    expected = _check([a.format("one") for a in args] + ["--jobs", "1"])
    written = parallel._write_frame
    count = [0]

    def dies_at_the_tenth(out: Any, item: tuple[int, tuple, tuple]) -> None:
        count[0] += 1  # per worker process
        if count[0] == 10:
            out.flush()
            raise OSError("no space left on device")
        written(out, item)

    monkeypatch.setattr(parallel, "_write_frame", dies_at_the_tenth)
    forked(monkeypatch)
    with caplog.at_level(logging.WARNING, logger="scrubber.parallel"):
        assert _check([a.format("two") for a in args] + ["--jobs", "2"]) == expected
    assert "job 1 failed (no space left on device)" in caplog.text
    assert "job 2 failed (no space left on device)" in caplog.text
    assert count[0] == 0  # the parent wrote no frame: its claims went straight to the sinks


def test_only_files_go_to_workers(batch: Path) -> None:
    """Bytes or a stream, or a ledger object handed in, stay in this process."""
    with Scrubber(ScrubOptions()) as scrubber:
        assert scrubber._shareable([(str(batch), "a")])
        assert not scrubber._shareable([(batch.read_bytes(), "a")])
        assert not scrubber._shareable([(str(batch) + ".missing", "a")])
    with Scrubber(ScrubOptions(), ledger=object()) as scrubber:
        assert not scrubber._shareable([(str(batch), "a")])


def test_stages_say_how_many_jobs(batch: Path) -> None:
    import io

    seen: list[str] = []

    class Heard:
        def stage(self, label: str) -> None:
            seen.append(label)

        def advance(self, name: str, offset: int) -> None:
            pass

    with Scrubber(ScrubOptions()) as scrubber:
        outcome = scrubber.run([(str(batch), "batch")], [report_sink("json", io.StringIO())],
                               progress=Heard(), jobs=2)
    assert outcome.files == 1 and outcome.rejected
    assert seen == ["checking and indexing " + str(batch) + " with 2 jobs",
                    "scrubbing batch with 2 jobs"]


def test_default_jobs_use_every_core_for_a_big_run_only(
        batch: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel.os, "cpu_count", lambda: 4)
    assert parallel.default_jobs([str(batch)]) == 1
    monkeypatch.setattr(parallel, "AUTO_FROM", batch.stat().st_size)
    assert parallel.default_jobs([str(batch)]) == 4
    assert parallel.default_jobs([str(batch) + ".missing"]) == 1


def test_spawned_workers_when_another_thread_runs(batch: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A status line's thread makes fork unsafe: the workers are spawned, same results."""
    expected = _check([str(batch), "--format", "json", "--no-ledger", "--jobs", "1"])
    made: list[str] = []
    real = parallel.multiprocessing.get_context

    def context(method: str | None = None) -> Any:
        made.append(str(method))
        return real(method)

    monkeypatch.setattr(parallel.threading, "active_count", lambda: 2)
    monkeypatch.setattr(parallel.multiprocessing, "get_context", context)
    assert _check([str(batch), "--format", "json", "--no-ledger", "--jobs", "2"]) == expected
    assert made == ["spawn"]


def test_a_failing_sink_stops_the_workers_and_leaves_no_files(
        batch: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    from scrubber.emit.sinks import FileEnd

    class Breaks:
        def __init__(self) -> None:
            self.claims = 0

        def begin_file(self, name: str) -> None:
            pass

        def event(self, event: object) -> None:
            self.claims += 1
            if self.claims == 50:
                raise RuntimeError("the report's disk is full")

        def end_file(self, end: FileEnd) -> None:
            pass

        def close(self) -> None:
            pass

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with Scrubber(ScrubOptions()) as scrubber, \
            pytest.raises(RuntimeError, match="disk is full"):
        scrubber.run([(str(batch), "batch")], [Breaks()], jobs=2)
    assert not list(tmp_path.glob("scrub-jobs-*"))


@pytest.mark.slow
def test_ctrl_c_during_jobs_ends_every_process_and_leaves_no_files(tmp_path: Path) -> None:
    """Ctrl-C (SIGINT to the terminal's process group) mid-run: 'Aborted!', no traceback
    from the parent or a worker, no worker left running, no private files left behind."""
    import os
    import signal
    import subprocess
    import time

    path = tmp_path / "big.x12"
    generate(str(path), 30000, "P", seed=5, claims_per_transaction=3000)
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    # in the workers' first step (their index files), and while the parent reports (the
    # workers' findings files): seen in the spool, not guessed from the clock
    for stage in ("index-*.db", "findings-*.bin"):
        child = subprocess.Popen(
            [sys.executable, "-m", "scrubber", "check", str(path), "--jobs", "2",
             "--no-ledger", "--format", "json"], stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, env=env, start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        deadline = time.monotonic() + 600  # bounds a hang only: load 115 took > 120 s
        while not list(tmp_path.glob(f"scrub-jobs-*/{stage}")):
            assert child.poll() is None, "the run ended before it could be interrupted"
            assert time.monotonic() < deadline, f"no {stage} within 600 s"
            time.sleep(0.01)
        os.killpg(child.pid, signal.SIGINT)
        _, err = child.communicate(timeout=60)
        assert child.returncode != 0 and "Aborted!" in err.decode()
        assert "Traceback" not in err.decode()
        # the workers end on their own after the parent: wait for the group to be gone
        # (the deadline only bounds a hang; a loaded machine ends them late, not never)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                os.killpg(child.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        with pytest.raises(ProcessLookupError):
            os.killpg(child.pid, 0)  # nobody of its process group is left
        assert not list(tmp_path.glob("scrub-jobs-*"))


def test_findings_and_notices_cross_the_spool_whole() -> None:
    # workers pickle every finding to the parent by position (Finding.__reduce__): a field
    # added to the class but not to the reduction would be lost or shifted here
    import dataclasses
    import pickle

    from scrubber.model import Location
    from scrubber.rules.findings import Finding, Notice, Severity

    finding = Finding("96523-sole-service", Severity.WARN, "message", "fix", "CLM-1", 2,
                      Location("SV1", 40, 1234), "SV1*HC:96523*80", "SV101", ("A7", "476"),
                      "CPT", ("CLM-0 (submission 1)",))
    bare = Finding("r", Severity.REJECT, "m", "f", "c", None, None, "")
    notice = Notice("codesets-uncovered-dates", "message", "codesets", 3)
    for value in (finding, bare, notice):
        copy = pickle.loads(pickle.dumps(value))
        assert copy == value
        assert [getattr(copy, f.name) for f in dataclasses.fields(copy)] == \
            [getattr(value, f.name) for f in dataclasses.fields(value)]
        assert copy.__reduce__()[1] == tuple(getattr(value, f.name)
                                             for f in dataclasses.fields(value))
