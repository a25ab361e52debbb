"""The mutation fuzzer (bench/fuzz.py) in CI: a fixed seed and count, so every run is the same.

Every case must keep every promise of ``check_case``: no traceback, a valid
report, every claim accounted for, every acknowledgement written valid in
pyx12, and an acknowledgement for every input that exits 1 (rejected). The
big mutations (HL chains and rings of 50,000, 100,000-segment sets) come now
and then in the random cases, and once each here at full size. No test here
times anything: the bench command reports slow cases.

Run it with fresh seeds while working (``python bench/fuzz.py --seed N --count
M``); each finding is fixed and its case kept in ``FOUND`` below.
"""

from __future__ import annotations

import io
import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import fuzz  # noqa: E402
from fuzz import (  # noqa: E402
    MUTATIONS,
    MUTATIONS_V1,
    check_case,
    main,
    make_case,
    run,
    schema_validator,
)
from gen837 import generate  # noqa: E402

SEED, COUNT = 20261202, 120
#: (seed, case) of every finding of the first fuzz (its mutations: MUTATIONS_V1)
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
#: (seed, case, mutations drawn from) of the findings since, what each broke
FOUND_V2 = [
    (1, 7, MUTATIONS_V1),  # ISA08 not ASCII: interchange rejected, exit 1, no TA1 or 999
    (1, 48, MUTATIONS_V1),  # GS01 "HC?SYNTHSUBMIT": AK101 copied whole, the AK1 unplaceable
    (1, 53, MUTATIONS_V1),  # ISA13 with letters: TA101 not N0 9 (pyx12 raises on it)
    (1, 153, MUTATIONS_V1),  # ST01 "+1": AK201 off the 999's code list
    (SEED, 43, MUTATIONS),  # ISA05 "00": the TA1's ISA07 off the interchange control list
    (SEED, 71, MUTATIONS),  # ISA05 "99", CR line ends: the same
]


@pytest.fixture(scope="module")
def validator():
    return schema_validator()


@pytest.mark.parametrize("seed, number", FOUND)
def test_fuzz_findings_stay_fixed(seed, number, validator):
    data, _ = make_case(seed, number, MUTATIONS_V1)
    check_case(data, validator)


@pytest.mark.parametrize("seed, number, mutations", FOUND_V2)
def test_acknowledgement_findings_stay_fixed(seed, number, mutations, validator):
    data, _ = make_case(seed, number, mutations)
    outcome = check_case(data, validator)
    assert outcome.exit_code == 1 and outcome.acks


@pytest.mark.slow  # about 30 s of CPU
def test_fuzz_fixed_seed_keeps_every_promise():
    figures = fuzz.Figures()
    findings = run(SEED, COUNT, report=lambda line: None, figures=figures)
    assert not findings, "\n".join(f"{f.number} {f.mutations}: {f.what}" for f in findings)
    assert figures.exit_codes.get(1, 0) >= COUNT // 3 and figures.validated >= COUNT // 3
    assert len(figures.mutations) >= 27  # every mutation had its turn


def _base(kind: str = "P") -> bytes:
    out = io.BytesIO()
    generate(out, claims=3, kind=kind, seed=11)
    return out.getvalue()


@pytest.mark.slow  # 18 to 28 s of CPU each, most of it pyx12 reading a 3-5 MB 999
@pytest.mark.parametrize("mutation, size", [
    (fuzz.hl_chain, 50_000), (fuzz.hl_cycle, 50_000), (fuzz.big_set, 100_000)])
def test_the_big_mutations_at_full_size(mutation, size, validator):
    data = mutation(_base(), random.Random(3), size)
    assert data.count(b"~") >= size
    outcome = check_case(data, validator)
    assert outcome.exit_code == 1 and outcome.acks  # rejected, and answered


def test_there_are_27_mutations_and_each_changes_its_input():
    assert len(set(MUTATIONS)) >= 27
    base = _base("I")
    for mutation in set(MUTATIONS):
        changed = [mutation(base, random.Random(seed)) != base for seed in range(5)]
        assert any(changed), mutation.__name__


def test_the_fuzz_finds_an_invalid_acknowledgement(monkeypatch, validator):
    """The pyx12 check is live: with AK202's stand-in made invalid, a 400 KB ST02 is a finding."""
    from scrubber.emit import ack999

    monkeypatch.setitem(ack999.STAND_INS, "AK202", "1")
    data = _base().replace(b"ST*837*0001*", b"ST*837*" + b"7" * 400_000 + b"*", 1)
    with pytest.raises(AssertionError, match="999 file invalid in pyx12"):
        check_case(data, validator)


def test_the_fuzz_finds_a_rejection_without_an_acknowledgement(monkeypatch, validator):
    """One extra GE is answered by a TA1; a fuzz blind to a missing one would pass this."""
    from scrubber.emit import sinks

    data = _base().replace(b"GE*", b"GE*1*1~\nGE*", 1)
    assert check_case(data, validator).acks == {"ta1": 1}
    monkeypatch.setattr(sinks.Ta1Sink, "end_file", lambda self, end: None)
    with pytest.raises(AssertionError, match="no acknowledgement written"):
        check_case(data, validator)


def test_cases_are_reproducible_and_mutated():
    assert make_case(SEED, 3) == make_case(SEED, 3)
    data, mutations = make_case(SEED, 4)
    assert mutations and data


def test_the_bench_command_reports_findings(capsys):
    assert main(["--seed", "5", "--count", "3", "--no-time-limit"]) == 0
    out = capsys.readouterr().out
    assert "seed 5: 3 cases, 0 findings" in out and "validated by pyx12" in out


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
