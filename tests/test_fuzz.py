"""The mutation fuzzer (bench/fuzz.py) in CI: a fixed seed and count, so every run is the same.

Run it with fresh seeds while working (``python bench/fuzz.py --seed N --count
M``); each finding is fixed and its case kept in ``FOUND`` below.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from fuzz import check_case, main, make_case, run, schema_validator  # noqa: E402

SEED, COUNT = 20261202, 150  # about 20 s here
#: (seed, case) of every finding so far: what it broke is in the comment
FOUND = [
    (1, 30),  # claims in a set whose ST01 is not 837: accounted for by that set's problem
    (1, 59),  # ST before GS, then claims: claim objects straight into transactions[]
    (1, 68),  # a damaged ST01 ("\u2028"): the set is not read, its problem stands for it
    (1, 95),  # an 150 KB segment where the Run pattern breaks: the tokenizer looped forever
    (1, 167),  # a placeholder transaction without "type": the report broke its schema
    (1, 210),  # the same, after a moved envelope and 50,000 components
    (1, 251),  # NUL bytes in ST03: the set is not read (env-unsupported-version)
    (1, 373),  # a GS with fewer than 8 elements: IndexError in the IG check
    (20261202, 125),  # 4,096 NUL bytes: 4,095 empty-segment problems, a 1 MB report
    (4, 226),  # 100,000 IG errors in one set: a 36 MB report from 150 KB
]


@pytest.fixture(scope="module")
def validator():
    return schema_validator()


@pytest.mark.parametrize("seed, number", FOUND)
def test_fuzz_findings_stay_fixed(seed, number, validator):
    data, _ = make_case(seed, number)
    check_case(data, validator)


def test_fuzz_fixed_seed_keeps_every_promise():
    findings = run(SEED, COUNT, report=lambda line: None)
    assert not findings, "\n".join(f"{f.number} {f.mutations}: {f.what}" for f in findings)


def test_cases_are_reproducible_and_mutated():
    assert make_case(SEED, 3) == make_case(SEED, 3)
    data, mutations = make_case(SEED, 4)
    assert mutations and data


def test_the_bench_command_reports_findings(capsys):
    assert main(["--seed", "5", "--count", "3"]) == 0
    assert "seed 5: 3 cases, 0 findings" in capsys.readouterr().out


def test_the_coverage_guided_harness_runs(tmp_path):
    """bench/atheris_fuzz.py: a short libFuzzer run over the reader and the IG check."""
    pytest.importorskip("atheris")
    import subprocess

    corpus = tmp_path / "corpus"
    result = subprocess.run(
        [sys.executable, str(Path(__file__).resolve().parent.parent / "bench" /
                             "atheris_fuzz.py"), "-runs=150", "-seed=1", str(corpus)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Done 150 runs" in result.stderr
    assert not list(tmp_path.glob("crash-*")) and len(list(corpus.iterdir())) >= 4
