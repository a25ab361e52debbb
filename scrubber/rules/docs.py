"""docs/rules.md, generated from the registry so the two cannot drift apart.

Run ``python -m scrubber.rules.docs > docs/rules.md``; a test checks the file
matches ``render()``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

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


def status_text(rule: Rule) -> str:
    """The 277CA status a payer answers the rule's rejection with: "A7:476"; "-" for none."""
    return ":".join(rule.status) if rule.status else "-"


def data_text(rule: Rule) -> str:
    """The outside data the rule needs, by its resource names ("pfs-rvu"); "-" for none."""
    return ", ".join(rule.needs) or "-"


def rule_dict(rule: Rule, profile: Profile | None = None) -> dict[str, Any]:
    """A rule as `scrub rules --format json` gives it."""
    severities = {}
    for kind in KINDS:
        severity = profile.severity(rule, kind) if profile else rule.default_severity(kind)
        severities[kind] = severity.value if severity is not None else "off"
    trigger = rule.trigger
    return {"id": rule.id, "severity": severities, "status_code": rule.status and
            ":".join(rule.status), "summary": rule.summary, "source": rule.source,
            "doc": rule.doc, "claim_kinds": list(rule.claim_kinds), "needs": list(rule.needs),
            "fix": fix_text(rule),
            "trigger": trigger and {"procedures": trigger.procedures, "reach": trigger.reach}}


def fix_text(rule: Rule) -> str:
    """The fix column of `scrub rules`: "safe", "unsafe" or "-" (scrub fix)."""
    return rule.fix.partition(":")[0].strip() if rule.fix else "-"


def fix_words(rule: Rule) -> str:
    """What `scrub fix` does about the rule's findings, as ruff says it."""
    if not rule.fix:
        return "none: scrub fix does not change what this rule finds"
    kind, _, what = rule.fix.partition(":")
    if kind.strip() == "unsafe":
        return f"sometimes available, unsafe (scrub fix --unsafe-fixes):{what}"
    return f"always available (scrub fix):{what}"


def runs_on(rule: Rule) -> str:
    """The claims the engine runs the rule on: "every claim", "837P claims", or those its
    trigger names."""
    every = set(rule.claim_kinds) == set(KINDS)
    if rule.trigger is None:
        return "every claim" if every else f"{' and '.join(rule.claim_kinds)} claims"
    kinds = "" if every else f"{' and '.join(rule.claim_kinds)} "
    return f"{kinds}claims {rule.trigger.describe()}"


def fixture_examples(rule: Rule) -> list[Path]:
    """The example 837 files of the rule in a source checkout (none in an installed copy)."""
    from scrubber.rules.registry import pack_of

    folder = Path(__file__).resolve().parents[2] / "fixtures" / pack_of(rule).fixtures
    return sorted(folder.glob(f"{rule.id}.*.x12"))


def explain(rule: Rule, profile: Profile | None = None) -> str:
    """`scrub rules ID`: what the rule checks, where it comes from, how it is answered."""
    lines = [f"{rule.id}: {rule.summary}", "",
             f"severity:      {severity_text(rule, profile)}",
             f"277CA status:  {status_text(rule)}",
             f"runs on:       {runs_on(rule)}",
             f"data:          {_data_words(rule)}",
             f"fix:           {fix_words(rule)}",
             f"source:        {rule.source}", "", rule.doc]
    examples = fixture_examples(rule)
    if examples:
        lines += ["", "example files:", *[f"  {path}" for path in examples]]
    return "\n".join(lines) + "\n"


def _data_words(rule: Rule) -> str:
    """The data kinds the rule needs with their labels: "pfs-rvu (CMS ... RVU file)"."""
    from scrubber.rules.resources import describe

    return ", ".join(f"{name} ({describe(name)})" for name in rule.needs) or \
        "none beyond the claim (and what ships with the scrubber)"


def render() -> str:
    """The Markdown of docs/rules.md: the rules of the built-in packs (a pack installed
    beside the scrubber documents its own)."""
    from scrubber.rules.registry import pack_of

    rules = [r for r in all_rules() if pack_of(r).builtin]
    profile = load_profile()
    out = [
        "# Rules",
        "",
        "Generated from the registry by `python -m scrubber.rules.docs > docs/rules.md`;",
        "severities are those of `x12_maps/default-profile.xml` (a profile may change them,",
        "turn rules off, and change the term and code lists; see `x12_maps/profile.xsd`).",
        "",
        "The data column names the outside data a rule needs (`scrub check --NAME PATH`,",
        "`scrub data add`; docs/data.md); without it the rule does not run and the run says so.",
        "",
        "| id | severity | 277CA | data | summary |",
        "|---|---|---|---|---|",
    ]
    for r in rules:
        out.append(f"| `{r.id}` | {severity_text(r, profile)} | {status_text(r)} | "
                   f"{data_text(r)} | {r.summary} |")
    for r in rules:
        out += ["", f"## {r.id}", "", f"Source: {r.source}", "", f"Runs on: {runs_on(r)}",
                "", f"Data: {_data_words(r)}", "", r.doc]
    return "\n".join(out + _problem_codes()) + "\n"


def _problem_codes() -> list[str]:
    """The problem codes reports print beside the rules (scrubber.problems), as a table."""
    from scrubber.problems import PROBLEMS

    out = ["", "# Problem codes", "",
           "What the tokenizer (`syntax-`), the envelope walker (`env-`, `file-`) and the",
           "implementation-guide check (`ig-`) find in the input itself. A payer answers them with",
           "a TA1 (the interchange) or a 999 (the transaction set) before any rule runs, or",
           "the input is not an 837 a payer can answer (none); `scrub fix` also names the",
           "faults it mends (a BOM, stray white space) by these ids. `--select`, `--ignore`",
           "and profiles accept the ids and families",
           "without switching them off (the run says so). A claim they hold is counted, with its",
           "charge, under each of them; `ig-999` is the total.", "",
           "| id | answered by | summary | what to do |", "|---|---|---|---|"]
    out += [f"| `{c.id}` | {c.answer} | {c.summary} | {c.fix} |" for c in PROBLEMS.values()]
    return out


if __name__ == "__main__":
    import sys

    sys.stdout.write(render())
