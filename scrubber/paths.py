"""Where scrubber keeps things on disk, decided in one place (XDG base directories).

- ``cache_dir()``: what can be rebuilt at any time (compiled guides, NCCI indexes):
  $XDG_CACHE_HOME/scrubber, else ~/.cache/scrubber.
- ``state_dir()``: what must survive (the claim ledger, acknowledgement control
  numbers): $XDG_STATE_HOME/scrubber, else ~/.local/state/scrubber.
- ``data_dir()``: the reference data the user installs (``scrub data add``: CMS
  code sets, NCCI tables): $XDG_DATA_HOME/scrubber, else ~/.local/share/scrubber.
- ``maps_dir()``: the X12 maps, schemas and default profile we ship (x12_maps/).

A leaf module: it imports nothing of scrubber, so any layer may use it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def cache_dir() -> Path:
    """$XDG_CACHE_HOME/scrubber, else ~/.cache/scrubber."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "scrubber"


def state_dir() -> Path:
    """$XDG_STATE_HOME/scrubber, else ~/.local/state/scrubber."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "scrubber"


def data_dir() -> Path:
    """$XDG_DATA_HOME/scrubber, else ~/.local/share/scrubber."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "scrubber"


def maps_dir() -> Path:
    """x12_maps/ beside the package (a checkout), else where ``pip install`` put the data."""
    here = Path(__file__).resolve().parent.parent / "x12_maps"
    if (here / "profile.xsd").is_file():
        return here
    return Path(sys.prefix) / "share" / "scrubber" / "x12_maps"
