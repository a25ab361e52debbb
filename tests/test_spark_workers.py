"""scrub batch's Python workers: its own interpreter, and their errors in its message
(issue 24, item 7).

`venv/bin/scrub batch` from a venv that is not activated failed on every task:
Spark started its workers as `python3` from the PATH, which could not import
scrubber, and the message stopped at "An exception was thrown from the Python
worker:". Each run here is `scrub batch` in a process of its own (its own JVM).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from scrubber.spark.run import worker_cause
from scrubber.spark.session import JAVA_OPTIONS, LOCAL_JAVA, QUIET_LOG, quiet_log, session_settings

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "fixtures" / "837p-multi.x12"
#: what the JVM itself prints when Spark's launcher adds jdk.incubator.vector: no log record
JVM_WARNING = "WARNING: Using incubator modules:"


def _script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def _batch(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    env = {**env, "SPARK_LOCAL_IP": "127.0.0.1"}
    return subprocess.run(
        [sys.executable, "-m", "scrubber", "batch", str(FIXTURE), "--out",
         str(tmp_path / "out"), "--master", "local[1]", "--no-ledger",
         "--spark-conf", "spark.ui.enabled=false", *args],
        env=env, capture_output=True, text=True, timeout=600,
        cwd=tmp_path)  # a worker started in the checkout would import scrubber from it


def _environment(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """Our environment without PYSPARK_PYTHON, with a PATH whose first `python3` cannot
    import scrubber (nor anything installed: -I -S) and leaves a mark when it runs."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    marker = tmp_path / "path-python3-ran"
    _script(bin_dir / "python3", f'touch "{marker}"\nexec /usr/bin/python3 -I -S "$@"\n')
    env = {k: v for k, v in os.environ.items() if k != "PYSPARK_PYTHON"}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    return env, marker


def _broken_python(tmp_path: Path) -> Path:
    """A Python for Spark's workers whose `import scrubber` raises."""
    fake = tmp_path / "fake" / "scrubber"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(
        'raise ImportError("planted: scrubber is broken in this worker")\n')
    return _script(tmp_path / "broken-python",
                   f'PYTHONPATH="{fake.parent}:$PYTHONPATH" exec "{sys.executable}" "$@"\n')


pyspark = pytest.mark.skipif(
    subprocess.run([sys.executable, "-c", "import pyspark"]).returncode != 0,
    reason="no pyspark")


@pytest.mark.slow
@pyspark
def test_workers_run_scrub_batchs_own_interpreter_not_the_paths(tmp_path):
    env, marker = _environment(tmp_path)
    assert subprocess.run(["python3", "-c", "import scrubber"], env=env, cwd=tmp_path,
                          capture_output=True).returncode != 0  # the trap is armed
    marker.unlink()
    done = _batch(tmp_path, env)
    assert done.returncode in (0, 1), done.stderr
    assert "claims:" in done.stdout and "Traceback" not in done.stderr
    assert not marker.exists()  # PATH's python3 never started


@pytest.mark.slow
@pyspark
def test_a_python_the_user_chose_still_wins(tmp_path):
    env, _ = _environment(tmp_path)
    chosen = tmp_path / "chosen-ran"
    wrapper = _script(tmp_path / "chosen-python",
                      f'touch "{chosen}"\nexec "{sys.executable}" "$@"\n')
    done = _batch(tmp_path, {**env, "PYSPARK_PYTHON": str(wrapper)})
    assert done.returncode in (0, 1), done.stderr
    assert chosen.exists()
    chosen.unlink()
    done = _batch(tmp_path, env, "--spark-conf", f"spark.pyspark.python={wrapper}")
    assert done.returncode in (0, 1), done.stderr
    assert chosen.exists()  # the setting reaches the workers of a session we start


@pytest.mark.slow
@pyspark
def test_a_workers_exception_reaches_the_message(tmp_path):
    """A worker whose `import scrubber` raises: the one-line error says what it raised."""
    env, _ = _environment(tmp_path)
    done = _batch(tmp_path, {**env, "PYSPARK_PYTHON": str(_broken_python(tmp_path))})
    assert done.returncode == 2, done.stdout + done.stderr
    # one line: Spark's own log (the worker's traceback in WARN and ERROR records, a JVM
    # stack, "Setting default log level") is quiet in a session scrub batch starts; the
    # JVM's own start-up warning is no log record and is all that may stand above it
    lines = [line for line in done.stderr.splitlines() if not line.startswith(JVM_WARNING)]
    assert lines == [
        "scrub: the Spark job failed in a Python worker: ImportError: planted: scrubber is "
        "broken in this worker"], done.stderr
    assert "Traceback" not in done.stderr and "\tat " not in done.stderr


@pytest.mark.slow
@pyspark
def test_a_log_configuration_of_the_users_own_wins(tmp_path):
    """Spark's log is quiet by our configuration, not because nothing was logged: with
    the user's own configuration, the failing task's records are there."""
    own = tmp_path / "log4j2.properties"
    own.write_text("rootLogger.level = error\nrootLogger.appenderRef.e.ref = e\n"
                   "appender.e.type = Console\nappender.e.name = e\n"
                   "appender.e.target = SYSTEM_ERR\nappender.e.layout.type = PatternLayout\n"
                   "appender.e.layout.pattern = MINE %p %c{1}: %m%n\n")
    env, _ = _environment(tmp_path)
    done = _batch(tmp_path, {**env, "PYSPARK_PYTHON": str(_broken_python(tmp_path))},
                  "--spark-conf",
                  f"spark.driver.extraJavaOptions=-Dlog4j2.configurationFile={own}")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "MINE ERROR" in done.stderr
    assert done.stderr.rstrip().splitlines()[-1].startswith("scrub: the Spark job failed")


def test_our_quiet_log_is_added_to_the_drivers_java_options_unless_they_name_one():
    ours = f"-Dlog4j2.configurationFile={QUIET_LOG.as_uri()}"
    assert QUIET_LOG.is_file() and " " not in ours
    assert quiet_log("") == ours
    assert quiet_log("-Xss4m") == f"-Xss4m {ours}"
    mine = "-Dlog4j2.configurationFile=/etc/spark/log4j2.properties"
    assert quiet_log(mine) == mine
    assert "rootLogger.level = fatal" in QUIET_LOG.read_text()


def test_the_cause_is_the_workers_exception_inside_the_jvm_stack():
    text = (
        "An error occurred while calling o123.parquet.\n"
        ": org.apache.spark.SparkException: Job aborted due to stage failure: Task 0 failed: "
        "org.apache.spark.api.python.PythonException: Traceback (most recent call last):\n"
        '  File "/x/pyspark/worker.py", line 1, in main\n'
        "    func = read_command(serializer, infile)\n"
        "ModuleNotFoundError: No module named 'scrubber'\n"
        "\n\tat org.apache.spark.api.python.BasePythonRunner.handlePythonException(X.scala:1)\n"
        "Caused by: org.apache.spark.api.python.PythonException: Traceback (most recent call "
        "last):\n"
        '  File "/x/pyspark/worker.py", line 1, in main\n'
        "ModuleNotFoundError: No module named 'scrubber'\n\n\tat org.apache.spark...\n")
    assert worker_cause(text) == (
        "ModuleNotFoundError: No module named 'scrubber' (Spark's Python workers need an "
        "interpreter that can import scrubber and pyspark: set PYSPARK_PYTHON or "
        "spark.pyspark.python)")
    chained = ("An exception was thrown from the Python worker.\n"
               "Traceback (most recent call last):\n  File \"a\", line 1\nKeyError: 'x'\n\n"
               "During handling of the above exception, another exception occurred:\n\n"
               "Traceback (most recent call last):\n  File \"b\", line 2\n"
               "ValueError: " + "v" * 400 + "\nsecond line\n")
    assert worker_cause(chained) == "ValueError: " + "v" * 288 + "..."
    assert worker_cause("Py4JJavaError: no Python here") is None
    crashed = ("org.apache.spark.SparkException: \nError from python worker:\n  /usr/bin/python3: "
               "Error while finding module specification for 'pyspark.daemon' "
               "(ModuleNotFoundError: No module named 'pyspark')\nPYTHONPATH was:\n  /x\n"
               "org.apache.spark.SparkException: EOFException occurred\n\tat org...\n")
    assert worker_cause(crashed) == (
        "/usr/bin/python3: Error while finding module specification for 'pyspark.daemon' "
        "(ModuleNotFoundError: No module named 'pyspark') (Spark's Python workers need an "
        "interpreter that can import scrubber and pyspark: set PYSPARK_PYTHON or "
        "spark.pyspark.python)")


def test_a_local_session_starts_without_its_ui_and_with_short_lived_jvm_options():
    """Most of a small local run's CPU is the JVM starting (docs/performance.md, "Issue 29,
    Spark round 2"): no web UI, C1 and the serial collector; the user's settings win."""
    ours = f"-Dlog4j2.configurationFile={QUIET_LOG.as_uri()}"
    local = session_settings("local[2]")
    assert local["spark.ui.enabled"] == "false"
    assert local[JAVA_OPTIONS] == f"{LOCAL_JAVA} {ours}"
    mine = session_settings("local[*]", [("spark.ui.enabled", "true"),
                                         (JAVA_OPTIONS, "-XX:TieredStopAtLevel=4")])
    assert mine["spark.ui.enabled"] == "true"
    # the JVM takes the last of two options of one name: the user's comes after ours
    assert mine[JAVA_OPTIONS] == f"{LOCAL_JAVA} -XX:TieredStopAtLevel=4 {ours}"
    cluster = session_settings("yarn")
    assert "spark.ui.enabled" not in cluster
    assert cluster[JAVA_OPTIONS] == ours
