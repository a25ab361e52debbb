"""Test setup: helpers in tests/ importable; per-user state and cache kept out of $HOME."""

import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

# The ledger and compiled maps live in per-user folders; a test run must never touch
# the real ones, so point them at a throwaway folder before anything imports them.
_STATE = tempfile.mkdtemp(prefix="scrubber-tests-")
os.environ["XDG_STATE_HOME"] = os.path.join(_STATE, "state")
os.environ["XDG_CACHE_HOME"] = os.path.join(_STATE, "cache")
os.environ["XDG_DATA_HOME"] = os.path.join(_STATE, "data")
# Reports carry the run's start (scrubber.emit.sinks.run_started): fixed, so two runs of the
# same input (one job and several, a resend ...) write the same report, as a clock injected
os.environ.setdefault("SOURCE_DATE_EPOCH", "1796083200")  # 2026-12-01T00:00:00Z


import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def private_state(tmp_path_factory, monkeypatch):
    """Each test gets its own per-user state: no ledger, and no installed reference data
    (scrub data), carries over between tests."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state")))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("data")))


# -- the ledger stores: every store test runs on SQLite and on PostgreSQL ----------------------

PG_URL = os.environ.get("SCRUBBER_TEST_PG_URL",
                        "postgresql://postgres@127.0.0.1:5432/postgres")
TEST_KEY = "5c" * 32  # the PostgreSQL ledger's key in tests (it has no key file beside it)


def pg_schema_url(schema: str) -> str:
    """The test server's URL with every table in ``schema`` (search_path)."""
    joiner = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{joiner}options=-csearch_path%3D{schema}"


@pytest.fixture
def pg_schema():
    """A fresh schema on the test server, dropped afterwards: its URL.

    Under CI=true a missing server fails the test; elsewhere it skips.
    """
    import uuid

    try:
        import psycopg

        admin = psycopg.connect(PG_URL, autocommit=True, connect_timeout=5)
    except Exception as exc:  # ImportError or psycopg.OperationalError
        if os.environ.get("CI") == "true":
            pytest.fail(f"the PostgreSQL test server {PG_URL} is not reachable: {exc}")
        pytest.skip(f"no PostgreSQL test server at {PG_URL} ({type(exc).__name__})")
    schema = f"scrub_test_{uuid.uuid4().hex[:12]}"
    admin.execute(f"CREATE SCHEMA {schema}")
    try:
        yield pg_schema_url(schema)
    finally:
        admin.execute(f"DROP SCHEMA {schema} CASCADE")
        admin.close()


def _installed_stores() -> list[str]:
    """The stores installed distributions add (scrubber.ledger.store.store_schemes) that say
    how to make a test's target: every store test runs on them too."""
    from scrubber.ledger.store import store_schemes

    return sorted(name for name, scheme in store_schemes().items()
                  if scheme.test_target is not None)


@pytest.fixture(params=["sqlite", "postgresql", *_installed_stores()])
def ledger_target(request, tmp_path, monkeypatch):
    """Where a test's ledger lives, on each store: a file path, a PostgreSQL URL, or the
    target an installed store makes."""
    if request.param == "sqlite":
        return str(tmp_path / "ledger.sqlite")
    monkeypatch.setenv("SCRUBBER_LEDGER_KEY", TEST_KEY)
    if request.param == "postgresql":
        return request.getfixturevalue("pg_schema")
    from scrubber.ledger.store import store_schemes

    make = store_schemes()[request.param].test_target
    assert make is not None
    return make(tmp_path)


@pytest.fixture
def tmpfs(tmp_path):
    """A small tmpfs (4 MB; root only): a disk that fills. Under CI=true a machine that
    cannot mount one fails the test; elsewhere it skips."""
    import subprocess

    folder = tmp_path / "small"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(folder)],
                             capture_output=True)
    if mounted.returncode != 0:
        if os.environ.get("CI") == "true":
            pytest.fail(f"cannot mount a tmpfs: {mounted.stderr!r}")
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


@pytest.fixture
def runs(monkeypatch):
    """The ids of the rules run, in order, through a spy on Rule.run."""
    from scrubber.rules.registry import Rule

    seen: list[str] = []
    real = Rule.run

    def spy(self, context):
        seen.append(self.id)
        return real(self, context)

    monkeypatch.setattr(Rule, "run", spy)
    return seen
