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


import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def private_state(tmp_path_factory, monkeypatch):
    """Each test gets its own per-user state: no ledger carries over between tests."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state")))
