"""Our acknowledgements' control numbers never repeat between runs or processes."""

from __future__ import annotations

import itertools
import multiprocessing
import os
from pathlib import Path

from scrubber.emit.control import control_numbers


def take(path: str, n: int, block: int) -> list[int]:
    return list(itertools.islice(control_numbers(path, block=block), n))


def test_runs_continue_where_the_last_block_ended(tmp_path):
    path = tmp_path / "counter"
    first = take(str(path), 5, 10)
    second = take(str(path), 5, 10)
    assert first == list(range(first[0], first[0] + 5))
    assert second[0] == first[0] + 10  # the rest of the first block is skipped, not reused
    assert all(0 < n < 10**9 for n in first + second)
    assert (path.stat().st_mode & 0o777) == 0o600


def test_numbers_wrap_inside_nine_digits(tmp_path):
    path = tmp_path / "counter"
    path.write_text("999999998\n")
    assert take(str(path), 4, 10) == [999999998, 999999999, 1, 2]


def test_processes_drawing_at_once_never_share_a_number(tmp_path):
    path = str(tmp_path / "counter")
    with multiprocessing.get_context("fork").Pool(4) as pool:
        runs = pool.starmap(take, [(path, 250, 7)] * 8)
    numbers = [n for run in runs for n in run]
    assert len(numbers) == len(set(numbers)) == 2000


def test_without_a_writable_state_folder_the_clock_stands_in(tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("")
    numbers = take(str(blocked / "counter"), 3, 10)  # its folder is a file: cannot be kept
    assert len(set(numbers)) == 3 and all(0 < n < 10**9 for n in numbers)


def test_the_277ca_writer_draws_from_the_counter(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    import scrubber

    root = Path(__file__).resolve().parent.parent
    one = scrubber.scrub(root / "fixtures" / "837p-single.x12").ack_277ca.decode()
    two = scrubber.scrub(root / "fixtures" / "837p-single.x12").ack_277ca.decode()
    isa13 = lambda text: text.split("*")[13]  # noqa: E731
    assert isa13(one) != isa13(two)
    assert os.path.exists(tmp_path / "scrubber" / "ack-control-number")
