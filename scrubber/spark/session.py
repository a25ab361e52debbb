"""A SparkSession for the scrub: local or on a cluster, files written owner-only.

Spark starts its Python workers as ``$PYSPARK_PYTHON``, else ``python3`` from
the PATH, which need not be the interpreter scrubber is installed in (a venv
run as ``venv/bin/scrub`` without being activated): every task then failed
on ``import scrubber``. A session made here starts them with this process's
own interpreter unless the user chose one (``PYSPARK_PYTHON``, or
``spark.pyspark.python`` given as a setting, which pyspark alone would not
apply to the workers of a session started from Python).

Spark's own log is quiet in such a session (``quiet_log``): a failing task is
``scrub batch``'s one line, not a worker's traceback inside a JVM stack.

A local session (``local``, ``local[N]``) is a JVM that lives for one run on
this machine: most of a small run's CPU is that JVM starting and compiling its
own code (docs/performance.md, "Issue 29, Spark round 2"). Such a session is
started without the web UI (nobody can look at it once the run ends) and with
JVM options for a short life (``LOCAL_JAVA``); a setting of the user's wins.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
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
    settings = session_settings(master, conf)
    python = worker_python(settings)
    settings[PYTHON_SETTING] = python
    builder = SparkSession.builder.appName(app)
    if master:
        builder = builder.master(master)
    for key, value in settings.items():
        builder = builder.config(key, value)
    with _environment(PYTHON_ENV, python):  # what pyspark reads when the context starts
        return builder.getOrCreate()


#: a local session's: its web UI would serve nobody once the run ends (and costs the JVM
#: a web server's start-up)
_LOCAL = {"spark.ui.enabled": "false"}


def session_settings(master: str | None, conf: Sequence[tuple[str, str]] = ()
                     ) -> dict[str, str]:
    """The settings a session on ``master`` starts with: ``conf`` over our defaults (and, on
    a local master, over ``_LOCAL``), the driver's Java options with ``LOCAL_JAVA`` before
    the user's (local masters) and our quiet log after them (``quiet_log``)."""
    local = bool(master and master.startswith("local"))
    settings = {**_DEFAULTS, **(_LOCAL if local else {}), **dict(conf)}
    options = settings.get(JAVA_OPTIONS, "")
    if local:  # first: a later option of the same name (the user's) wins in the JVM
        options = f"{LOCAL_JAVA} {options}".strip()
    settings[JAVA_OPTIONS] = quiet_log(options)
    return settings


JAVA_OPTIONS = "spark.driver.extraJavaOptions"
#: the driver JVM's options in a local session, before the user's: a JVM that lives for
#: one run spends much of its CPU compiling its own code with the optimising compiler
#: (C2), which pays back only in a long life; C1 alone (tier 1) compiles cheaply, and
#: the serial collector runs no collector threads besides the one that allocates
LOCAL_JAVA = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
#: Spark's log for the sessions we start: FATAL only (a failing task is our one line)
QUIET_LOG = Path(__file__).with_name("log4j2.properties")


def quiet_log(options: str) -> str:
    """The driver's Java options with our quiet log configuration added, unless they
    name a log configuration of their own (which wins).

    Spark's default log prints a failing task's Python traceback and JVM stack as
    WARN and ERROR records above our one-line message (the executors of a local
    session are threads of the driver, so this is their log too). Given as a
    file: URI, which has no space to split the options on.
    """
    if "log4j2.configurationFile" in options or "log4j.configurationFile" in options:
        return options
    ours = f"-Dlog4j2.configurationFile={QUIET_LOG.as_uri()}"
    return f"{options} {ours}".strip()


PYTHON_ENV = "PYSPARK_PYTHON"
PYTHON_SETTING = "spark.pyspark.python"


def worker_python(settings: dict[str, str]) -> str:
    """The interpreter Spark's Python workers run: $PYSPARK_PYTHON, else the
    spark.pyspark.python setting, else this process's own (sys.executable)."""
    return os.environ.get(PYTHON_ENV) or settings.get(PYTHON_SETTING) or sys.executable


@contextmanager
def _environment(name: str, value: str) -> Iterator[None]:
    """``name`` set to ``value`` within the block, as it was afterwards."""
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before
