"""scrubber: a pre-submission scrubber for X12 837 health-care claims.

Data flows one way: bytes -> segments (``scrubber.x12``) -> claims
(``scrubber.model``) -> findings (``scrubber.rules``) -> acknowledgements and
reports (``scrubber.emit``). ``scrub`` and ``iter_claims`` are the entry points
for code; ``scrub`` on the command line is a thin layer over them.

The public names load on first use (PEP 562), so that importing a low layer
such as ``scrubber.x12`` does not drag in the rules, lxml, sqlite3 and click.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: public name -> the module that defines it
_PUBLIC = {
    "Finding": "scrubber.rules",
    "ScrubResult": "scrubber.api",
    "ScrubbedClaim": "scrubber.rules",
    "Severity": "scrubber.rules",
    "iter_claims": "scrubber.api",
    "scrub": "scrubber.api",
}

__all__ = ["Finding", "ScrubResult", "ScrubbedClaim", "Severity", "iter_claims", "scrub",
           "__version__"]

if TYPE_CHECKING:
    from scrubber.api import ScrubResult, iter_claims, scrub
    from scrubber.rules import Finding, ScrubbedClaim, Severity


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'scrubber' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once loaded, an ordinary attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
