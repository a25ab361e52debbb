"""Rules: the engine, its registry and profiles, and one module per rule family.

Integration points: ``load_profile`` (``--profile``), ``all_rules`` and
``rules_table`` (``scrub rules``), ``Engine`` (what scrubber.core runs).
"""

from scrubber.rules.engine import Engine, scrub_claim
from scrubber.rules.findings import Finding, ScrubbedClaim, Severity
from scrubber.rules.profile import Profile, ProfileError, load_profile
from scrubber.rules.registry import Rule, all_rules

__all__ = ["Engine", "Finding", "Profile", "ProfileError", "Rule", "ScrubbedClaim", "Severity",
           "all_rules", "load_profile", "rules_table", "scrub_claim"]


def rules_table(profile: Profile | None = None) -> tuple[tuple[str, str, str], ...]:
    """(id, severity, summary) per rule for `scrub rules`, severities after ``profile``."""
    from scrubber.rules.docs import rules_table as table

    return table(profile)
