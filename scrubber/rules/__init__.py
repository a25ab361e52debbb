"""Rules: the engine, its registry and profiles, and one module per rule family."""

from scrubber.rules.findings import Finding, ScrubbedClaim, Severity

__all__ = ["Finding", "ScrubbedClaim", "Severity"]
