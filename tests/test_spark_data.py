"""scrub batch on Spark uses the installed reference data: the verdicts of a plain scrub check.

The data is opened on the driver (executors on other hosts have no data folder) and
travels to every task with the options.
"""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner
from test_data import CASES, batch, cms_files, expected, verdicts_of  # noqa: F401 (fixtures)

from scrubber.cli import main
from scrubber.core import ScrubOptions

pytest.importorskip("pyspark")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def spark():
    """A local session; one tests/test_spark.py left running is used, and left to it.

    This module runs after tests/test_parallel.py: a live session's threads make --jobs
    spawn its workers instead of forking them, which that module's fault tests rely on.
    """
    from pyspark.sql import SparkSession

    from scrubber.spark import session

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    running = SparkSession.getActiveSession()
    spark = running or session("local[2]", [("spark.ui.enabled", "false"),
                                            ("spark.sql.shuffle.partitions", "2")])
    yield spark
    if running is None:
        spark.stop()


def test_scrub_batch_gives_the_verdicts_of_scrub_check_with_the_installed_data(
        spark, cms_files, batch, tmp_path):  # noqa: F811
    from scrubber.spark import scrub_batch

    added = CliRunner().invoke(main, ["data", "add", *map(str, cms_files.values())])
    assert added.exit_code == 0, added.output
    check = CliRunner().invoke(main, ["check", *map(str, batch), "--format", "json",
                                      "--no-ledger"])
    assert verdicts_of(json.loads(check.stdout)) == expected()
    result = scrub_batch(spark, [str(p) for p in batch], options=ScrubOptions())
    claims = {row.claim_id: row.status for row in result.tables["claims"].collect()}
    rules = {}
    for row in result.tables["findings"].collect():
        if row.severity != "info":
            rules.setdefault(row.claim_id, []).append(row.rule)
    assert {cid: (status, tuple(sorted(rules.get(cid, ())))) for cid, status in claims.items()
            } == expected()
    assert set(claims) == set(CASES)
