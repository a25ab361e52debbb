"""scrubber: a pre-submission scrubber for X12 837 health-care claims.

Data flows one way: bytes -> segments (``scrubber.x12``) -> claims
(``scrubber.model``) -> findings (``scrubber.rules``) -> acknowledgements and
reports (``scrubber.emit``). ``scrub`` and ``iter_claims`` are the entry points
for code; ``scrub`` on the command line is a thin layer over them.
"""

__version__ = "0.1.0"

from scrubber.api import ScrubResult, iter_claims, scrub  # noqa: E402
from scrubber.rules import Finding, ScrubbedClaim, Severity  # noqa: E402

__all__ = ["Finding", "ScrubResult", "ScrubbedClaim", "Severity", "iter_claims", "scrub",
           "__version__"]
