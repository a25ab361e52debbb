"""docs/rules.md, generated from the registry so the two cannot drift apart.

Run ``python -m scrubber.rules.docs > docs/rules.md``; a test checks the file
matches ``render()``.
"""

from __future__ import annotations

from scrubber.rules.profile import Profile, load_profile
from scrubber.rules.registry import KINDS, Rule, all_rules


def severity_text(rule: Rule, profile: Profile | None = None) -> str:
    """"reject", or "reject (837I: warn)" when the kinds differ; "off" when disabled."""
    values = []
    for kind in KINDS:
        severity = profile.severity(rule, kind) if profile else rule.default_severity(kind)
        values.append(severity.value if severity is not None else "off")
    if values[0] == values[1]:
        return values[0]
    return f"{values[0]} (837I: {values[1]})"


def rules_table(profile: Profile | None = None) -> tuple[tuple[str, str, str], ...]:
    """(id, severity, summary) per rule, for `scrub rules`; severities after ``profile``."""
    return tuple((r.id, severity_text(r, profile), r.summary) for r in all_rules())


def render() -> str:
    """The Markdown of docs/rules.md."""
    profile = load_profile()
    out = [
        "# Rules",
        "",
        "Generated from the registry by `python -m scrubber.rules.docs > docs/rules.md`;",
        "severities are those of `x12_maps/default-profile.xml` (a profile may change them,",
        "turn rules off, and change the term and code lists; see `x12_maps/profile.xsd`).",
        "",
        "| id | severity | 277CA | summary |",
        "|---|---|---|---|",
    ]
    for r in all_rules():
        status = ":".join(r.status) if r.status else "-"
        out.append(f"| `{r.id}` | {severity_text(r, profile)} | {status} | {r.summary} |")
    for r in all_rules():
        out += ["", f"## {r.id}", "", f"Source: {r.source}", "", r.doc]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    import sys

    sys.stdout.write(render())
