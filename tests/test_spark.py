"""scrub batch on Spark local[2] gives the verdicts of scrub check, claim by claim.

A day of 40 generated files of 500 claims (bench/spark_bench.py: the second
half sends the patients and days of the first half again, so conflicts cross
files) goes through ``scrub check --no-ledger`` as one stream and through
``scrub_batch`` with the run as one day context; every fixture (broken ones
too) and four of the day's files go through both file by file. Each claim's
status and findings (rule, severity, line, 277CA status, message, location),
each file's problems and the acknowledgements must agree. One SparkSession
serves the whole session (its start-up is ~20-30 s here).
"""

from __future__ import annotations

import json
import os
import re
import stat
import sys
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from click.testing import CliRunner

from scrubber.cli import main
from scrubber.core import ScrubOptions
from scrubber.rules.resources import load_resources
from scrubber.spark import FILE, RUN, scrub_batch, session

pytest.importorskip("pyspark")

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
NCCI = {"ncci-ptp": [str(FIXTURES / "ncci" / "ptp-practitioner.txt")],
        "mue": [str(FIXTURES / "ncci" / "mue-practitioner.csv")],
        "ncci-ptp-837i": [str(FIXTURES / "ncci" / "ptp-outpatient.txt")],
        "mue-837i": [str(FIXTURES / "ncci" / "mue-outpatient.txt")]}
NCCI_ARGS = [arg for name, paths in NCCI.items() for path in paths for arg in (f"--{name}", path)]
FILES, CLAIMS = 40, 500

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def spark():
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    spark = session("local[2]", [("spark.ui.enabled", "false"),
                                 ("spark.sql.shuffle.partitions", "4")])
    yield spark
    spark.stop()


@pytest.fixture(scope="session")
def day(tmp_path_factory) -> list[str]:
    sys.path.insert(0, str(ROOT / "bench"))
    from spark_bench import make_day

    folder = tmp_path_factory.mktemp("day")
    return [str(p) for p in make_day(folder, FILES, CLAIMS)]


@pytest.fixture(scope="session")
def options() -> ScrubOptions:
    return ScrubOptions(resources=load_resources(NCCI))


def fixture_files() -> list[str]:
    found = [p for p in sorted(FIXTURES.rglob("*")) if p.is_file()
             and p.suffix in (".x12", ".bin")]
    return [str(p) for p in found]


# -- what scrub check says -------------------------------------------------------------------

def check(paths: list[str], acks: Path, stdin: bytes | None = None) -> dict:
    """scrub check's JSON report of standard input, or of each path checked on its own.

    Several files given to one scrub check are one run with one day context, as
    Spark's scope "run"; scope "file" is each file in a run of its own.
    """
    if stdin is not None:
        return _check(["-"], acks, stdin)
    return {"files": [file for path in paths for file in _check([path], acks)["files"]]}


def _check(inputs: list[str], acks: Path, stdin: bytes | None = None) -> dict:
    args = ["check", "--no-ledger", "--format", "json", "--277ca", str(acks), "--999",
            *NCCI_ARGS, *inputs]
    result = CliRunner().invoke(main, args, input=stdin)
    assert result.exit_code in (0, 1, 2), result.output
    return json.loads(result.stdout)


def claims_of_report(report: dict, locations: bool = True) -> dict[tuple, tuple]:
    """{(path, position in file): (CLM01, status, findings)} from a JSON report."""
    out = {}
    for file in report["files"]:
        position = 0
        for interchange in file.get("interchanges", []):
            for group in interchange["groups"]:
                for transaction in group["transactions"]:
                    for claim in transaction["claims"]:
                        position += 1
                        out[file["path"], position] = (claim["id"], claim["status"], sorted(
                            _finding(f["rule"], f["severity"], f["line_number"],
                                     f["status_code"], f["message"],
                                     f["location"] if locations else None)
                            for f in claim["findings"]))
    return out


def problems_of_report(report: dict) -> Counter:
    found: Counter = Counter()

    def walk(node: dict, path: str) -> None:
        for problem in node.get("problems", []):
            found[path, problem["code"], problem["envelope"]] += 1
        for child in ("interchanges", "groups", "transactions"):
            for item in node.get(child, []):
                walk(item, path)

    for file in report["files"]:
        walk(file, file["path"])
    return found


def _finding(rule, severity, line, status, message, location) -> tuple:
    where = None if location is None else (location["segment"], location["line"],
                                           location["offset"])
    return (rule, severity, line, status or "", message, where)


# -- what Spark says -------------------------------------------------------------------------

def claims_of_tables(result, locations: bool = True, path=None) -> dict[tuple, tuple]:
    findings = defaultdict(list)
    for row in result.tables["findings"].collect():
        where = (row.segment, row.line, row.offset) if locations and row.segment else None
        findings[row.path, row.position].append(_finding(
            row.rule, row.severity, row.line_number, row.status_code, row.message,
            None if where is None else dict(zip(("segment", "line", "offset"), where,
                                                strict=True))))
    return {(path or row.path, row.position): (row.claim_id, row.status,
                                               sorted(findings[row.path, row.position]))
            for row in result.tables["claims"].collect()}


def problems_of_tables(result) -> Counter:
    return Counter((row.path, row.code, row.envelope)
                   for row in result.tables["problems"].collect())


# -- acknowledgements, without our control numbers and clock ---------------------------------

def normalized(text: str) -> list[str]:
    """The segments of an acknowledgement, our control numbers, dates and times blanked."""
    segments = [s.strip() for s in text.split("~") if s.strip()]
    controls = {s.split("*")[13].lstrip("0") for s in segments if s.startswith("ISA")}
    out = []
    for segment in segments:
        elements = segment.split("*")
        blank = {"ISA": (9, 10, 13), "GS": (4, 5, 6), "ST": (2,), "SE": (2,), "GE": (2,),
                 "IEA": (2,), "BHT": (3, 4, 5), "AK1": (), "TA1": (3, 4)}.get(elements[0], ())
        for index in blank:
            if index < len(elements):
                elements[index] = "#"
        text = "*".join(elements)
        for control in controls:
            text = re.sub(rf"\b0*{control}(\d*)\b", r"#\1", text)
        out.append(re.sub(r"\b20\d{6}\b", "DATE", text))
    return out


def ack_texts(folder: Path) -> dict[str, list[str]]:
    return {p.name: normalized(p.read_text()) for p in sorted(folder.glob("*.x12"))}


# -- the tests -------------------------------------------------------------------------------

def test_each_file_on_its_own_same_verdicts_as_scrub_check(spark, day, options, tmp_path):
    """Every fixture (broken ones too) and four of the day's files, scope "file"."""
    paths = fixture_files() + day[:2] + day[FILES // 2:FILES // 2 + 2]
    expected = check(paths, tmp_path / "check")
    result = scrub_batch(spark, paths, options=options, acks=tmp_path / "spark", scope=FILE)

    want, got = claims_of_report(expected), claims_of_tables(result)
    assert len(want) > 4 * CLAIMS
    assert got.keys() == want.keys()
    assert [key for key in want if got[key] != want[key]] == []
    assert problems_of_tables(result) == problems_of_report(expected)
    assert result.claims == len(want)
    assert ack_texts(tmp_path / "spark") == ack_texts(tmp_path / "check")
    assert {s["path"] for s in expected["files"] if s["summary"].get("file_problems")} >= \
        {path for path, _ in result.not_scrubbed}


def test_the_run_is_one_day_context_across_files(spark, day, options, tmp_path):
    """Scope "run" equals scrub check of the files as one stream; the later files conflict."""
    stream = b"".join(Path(p).read_bytes() for p in day)
    expected = check([], tmp_path / "check", stdin=stream)
    result = scrub_batch(spark, day, options=options, acks=tmp_path / "spark", scope=RUN)

    # one stream: positions run on across files; the files' own offsets are not the stream's
    want = claims_of_report(expected, locations=False)
    got = {}
    for _, value in sorted(claims_of_tables(result, locations=False).items(),
                           key=lambda item: (day.index(item[0][0]), item[0][1])):
        got["<stdin>", len(got) + 1] = value
    assert len(want) == FILES * CLAIMS
    assert [key for key in want if got.get(key) != want[key]] == []

    # a first sending's claim ids have C in fifth place, the second sending's L: findings
    # that name a claim of the other sending are conflicts found across files
    crossed = [row for row in result.tables["findings"].collect() if row.related and any(
        ref[4] != row.claim_id[4] for ref in row.related.split("; "))]
    assert len({(row.path, row.position) for row in crossed}) > 50

    spark_277 = [s for p in day for s in
                 normalized((tmp_path / "spark" / f"{Path(p).name}.277ca.x12").read_text())]
    assert spark_277 == normalized((tmp_path / "check" / "stdin.277ca.x12").read_text())


def test_large_files_are_cut_at_interchanges_with_the_same_verdicts(spark, day, options,
                                                                    tmp_path):
    joined = tmp_path / "three.x12"
    joined.write_bytes(b"".join(Path(p).read_bytes() for p in day[:3]))
    paths = [str(joined), str(FIXTURES / "837p-multi-envelope.x12"),
             str(FIXTURES / "broken-two-interchanges-first-bad.x12")]
    expected = check(paths, tmp_path / "check")
    result = scrub_batch(spark, paths, options=options, acks=tmp_path / "spark", scope=FILE,
                         piece_bytes=1)
    assert result.tables["problems"].count() == sum(problems_of_report(expected).values())
    assert claims_of_tables(result) == claims_of_report(expected)
    assert problems_of_tables(result) == problems_of_report(expected)
    spark_acks = ack_texts(tmp_path / "spark")
    check_acks = ack_texts(tmp_path / "check")
    for name in check_acks:
        if name.endswith(".277ca.x12"):
            assert spark_acks[name] == check_acks[name]


def test_one_big_file_is_read_by_a_task_per_core_with_the_same_verdicts(
        spark, day, options, tmp_path, monkeypatch):
    """With fewer pieces than cores, stage 1 reads a big file in shares of its sets
    (scrubber.spark.pieces.readings); verdicts, problems and acks stay scrub check's."""
    from scrubber.spark import pieces

    joined = tmp_path / "three.x12"
    joined.write_bytes(b"".join(Path(p).read_bytes() for p in day[:3]))
    monkeypatch.setattr(pieces, "SHARE_FROM", 0)  # every file is big
    plan = pieces.plan([str(joined)])
    assert len(pieces.readings(plan, spark.sparkContext.defaultParallelism)) == 2
    expected = check([str(joined)], tmp_path / "check")
    result = scrub_batch(spark, [str(joined)], options=options, acks=tmp_path / "spark")
    want = claims_of_report(expected)
    assert len(want) == 3 * CLAIMS and claims_of_tables(result) == want
    assert problems_of_tables(result) == problems_of_report(expected)
    assert ack_texts(tmp_path / "spark") == ack_texts(tmp_path / "check")


def test_scrub_batch_command_writes_tables_and_owner_only_acks(spark, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for name in ("837p-multi.x12", "837i-multi.x12", "broken-empty.x12"):
        (inbox / name).write_bytes((FIXTURES / name).read_bytes())
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["batch", str(inbox), "--out", str(out),
                                       "--master", "local[2]"])
    assert result.exit_code == 2, result.output  # the empty file could not be read
    assert "not scrubbed" in result.stderr and "broken-empty.x12" in result.stderr
    assert re.search(r"3 files, \d+ claims: \d+ accepted, \d+ rejected", result.stdout)
    claims = spark.read.parquet(str(out / "claims")).collect()
    assert {row.path for row in claims} == {str(inbox / "837p-multi.x12"),
                                             str(inbox / "837i-multi.x12")}
    assert {"service_lines", "findings", "problems"} <= {p.name for p in out.iterdir()}
    acks = sorted((out / "acks").iterdir())
    assert [p.name for p in acks if p.name.endswith(".277ca.x12")] == [
        "837i-multi.x12.277ca.x12", "837p-multi.x12.277ca.x12"]
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in acks)
    assert stat.S_IMODE((out / "acks").stat().st_mode) == 0o700
    tables = [p for p in out.rglob("*.parquet")]
    assert tables and all(stat.S_IMODE(p.stat().st_mode) & 0o077 == 0 for p in tables)
    assert not (out / "acks" / ".parts").exists()


def test_scrub_batch_refuses_a_bad_setting_without_a_traceback(tmp_path):
    result = CliRunner().invoke(main, ["batch", str(FIXTURES / "837p-multi.x12"),
                                       "--out", str(tmp_path), "--spark-conf", "novalue"])
    assert result.exit_code == 2
    assert "KEY=VALUE" in result.output and "Traceback" not in result.output


def test_with_a_ledger_same_verdicts_and_recording(spark, day, options, tmp_path):
    """History from the ledger counts as in scrub check; --record leaves what check records."""
    first, again = day[0], day[FILES // 2]
    ledger = str(tmp_path / "history.sqlite")
    recorded = CliRunner().invoke(main, ["check", "--ledger", ledger, "--record", "-q",
                                         *NCCI_ARGS, first])
    assert recorded.exit_code in (0, 1), recorded.output
    args = ["check", "--ledger", ledger, "--format", "json", *NCCI_ARGS, again]
    expected = json.loads(CliRunner().invoke(main, args).stdout)
    with_history = ScrubOptions(resources=options.resources, ledger=ledger)
    result = scrub_batch(spark, [again], options=with_history, scope=FILE)
    want = claims_of_report(expected)
    assert claims_of_tables(result) == want
    alone = claims_of_tables(scrub_batch(spark, [again], options=options, scope=FILE))
    assert sum(alone[key] != want[key] for key in want) > 0  # the history made a difference

    # recording from Spark leaves the ledger as scrub check --record leaves it
    spark_ledger = str(tmp_path / "spark.sqlite")
    scrub_batch(spark, [first], options=ScrubOptions(resources=options.resources,
                                                     ledger=spark_ledger, record=True))
    args = ["check", "--format", "json", *NCCI_ARGS, again]
    from_spark = json.loads(CliRunner().invoke(main, [*args[:1], "--ledger", spark_ledger,
                                                      *args[1:]]).stdout)
    assert claims_of_report(from_spark) == want


def test_a_dataframe_of_file_contents_is_scrubbed_like_the_files(spark, day, options):
    paths = [str(FIXTURES / "837p-multi.x12"), str(FIXTURES / "broken-missing-se.x12"),
             day[0], day[FILES // 2]]
    frame = spark.read.format("binaryFile").load(paths)
    from_frame = scrub_batch(spark, frame, options=options)
    from_paths = scrub_batch(spark, sorted(paths), options=options)

    def by_name(result) -> dict:
        return {(Path(path.removeprefix("file:")).name, position): value
                for (path, position), value in claims_of_tables(result).items()}

    assert by_name(from_frame) == by_name(from_paths)
    assert from_frame.claims == from_paths.claims == 3 + 2 * CLAIMS + 1
