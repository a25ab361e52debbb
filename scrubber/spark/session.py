"""A SparkSession for the scrub: local or on a cluster, files written owner-only."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

# Parquet tables name claims and carry CLM01s: written like every report, owner-only
_DEFAULTS = {
    "spark.hadoop.fs.permissions.umask-mode": "077",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",
}


def session(master: str | None = None, conf: Sequence[tuple[str, str]] = (),
            app: str = "scrub batch") -> Any:
    """The active SparkSession, or a new one on ``master`` with ``conf`` over our defaults.

    Under spark-submit the master comes from its command line (leave ``master``
    None); run directly, None means "local[*]": every core of this machine.
    """
    from pyspark.sql import SparkSession

    if master is None and "PYSPARK_GATEWAY_PORT" not in os.environ:
        master = "local[*]"  # not under spark-submit, which would have said
    if master and master.startswith("local"):
        # a local run listens on this machine only
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = SparkSession.builder.appName(app)
    if master:
        builder = builder.master(master)
    for key, value in {**_DEFAULTS, **dict(conf)}.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()
