"""``scrub batch`` as one library call: a session, the scrub, the tables written."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from scrubber.core import Scrubber
from scrubber.ledger import LedgerError
from scrubber.options import ScrubOptions
from scrubber.spark.job import BatchResult, scrub_batch
from scrubber.spark.pieces import PIECE_BYTES
from scrubber.spark.session import session
from scrubber.spark.stages import RUN

#: how to get pyspark: the package itself, or our checkout's extra (which pins the version
#: we test); never "scrubber[spark]": on the package index that name is another project
PYSPARK_HINT = ("scrub batch needs pyspark (and Java 17): pip install pyspark, or from a "
                "scrubber checkout: pip install '.[spark]'")


class BatchError(Exception):
    """The run itself could not go ahead: no pyspark or Java, an --out that cannot be made."""


def run_batch(paths: Sequence[str], out: str | os.PathLike, *,
              options: ScrubOptions | None = None, master: str | None = None,
              conf: Sequence[tuple[str, str]] = (), scope: str = RUN, ack_999: bool = True,
              piece_bytes: int = PIECE_BYTES) -> BatchResult:
    """Scrub ``paths`` on Spark; write the Parquet tables and ``acks/`` into ``out``.

    The tables (claims, service_lines, findings, problems) replace any of an
    earlier run in ``out``, so a day can be scrubbed again; a session this
    call starts is stopped when it ends, one already running is left running.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise BatchError(PYSPARK_HINT) from None
    folder = Path(out)
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise BatchError(f"{folder}: cannot be made: {exc.strerror or exc}") from None
    running = SparkSession.getActiveSession()
    try:
        spark = running or session(master, conf)
    except Exception as exc:  # the JVM did not start: no Java, a bad master or setting
        raise BatchError(f"Spark did not start: {_first_line(exc)}") from None
    try:
        # the driver holds the recording: the executors hold claims under it, and they are
        # sent once the tables and acknowledgements are written, not before
        with Scrubber(options) as driver, driver.recording() as recording:
            result = scrub_batch(spark, paths, options=options, acks=folder / "acks",
                                 ack_999=ack_999, scope=scope, piece_bytes=piece_bytes,
                                 recording=recording.id if recording else None)
            started = time.perf_counter()
            write_tables(result.tables, folder)
        return replace(result, seconds=result.seconds + time.perf_counter() - started)
    except LedgerError as exc:
        raise BatchError(str(exc)) from None
    except Exception as exc:  # a task failed: say so in one line, not a JVM stack
        cause = worker_cause(str(exc))
        if cause is not None:
            raise BatchError(f"the Spark job failed in a Python worker: {cause}") from exc
        raise BatchError(f"the Spark job failed: {_first_line(exc)}") from exc
    finally:
        if running is None:
            spark.stop()


def write_tables(tables: dict[str, Any], folder: Path) -> None:
    """Write each table as Parquet into ``folder``, the four jobs at the same time.

    Each table is one job over the persisted scrub, as many tasks as it has
    partitions (one, for one input file): one write after another left every
    core but one idle. Spark runs jobs submitted from several threads side by
    side; the files each job writes are the same as when it runs alone.
    """
    with ThreadPoolExecutor(len(tables) or 1, thread_name_prefix="scrub-table") as pool:
        jobs = [pool.submit(frame.write.mode("overwrite").parquet, str(folder / name))
                for name, frame in tables.items()]
        for job in jobs:
            job.result()  # the first failure, in table order, once every write has ended


_CAUSE_CHARS = 300
_NO_START = "Error from python worker:"


def worker_cause(text: str) -> str | None:
    """The exception a Python worker raised, from a Spark error's text: the last line of
    the last Python traceback in it ("ModuleNotFoundError: No module named 'scrubber'"),
    cut to a log line; None when it holds no traceback.

    Spark's message starts "An exception was thrown from the Python worker" and
    says what only at the end of the worker's traceback, inside a JVM stack.
    """
    at = text.rfind("Traceback (most recent call last):")
    if at >= 0:  # the frames are indented; the first line that is not names the exception
        cause = next((line.strip() for line in text[at:].splitlines()[1:]
                      if line.strip() and not line[0].isspace()), None)
    else:  # a worker that did not start says why on its standard error
        at = text.rfind(_NO_START)
        cause = next((line.strip() for line in text[at + len(_NO_START):].splitlines()
                      if line.strip()), None) if at >= 0 else None
    if not cause:
        return None
    if len(cause) > _CAUSE_CHARS:
        cause = cause[:_CAUSE_CHARS] + "..."
    if "No module named" in cause:
        cause += (" (Spark's Python workers need an interpreter that can import scrubber "
                  "and pyspark: set PYSPARK_PYTHON or spark.pyspark.python)")
    return cause


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else exc.__class__.__name__
