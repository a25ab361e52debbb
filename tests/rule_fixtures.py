"""What a pack's rule fixture promises, checked one way for every pack scrubbed with its files.

Test helper only. A fixture is named <rule>.<pass|fail>[-variant].<837p|837i>.x12:
a fail fixture makes its rule fire (alone, with its 277CA status, a message, a
fix and the segment); a pass fixture draws no reject or warning from any rule.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from scrubber.rules.findings import ScrubbedClaim, Severity
from scrubber.rules.profile import load_profile
from scrubber.rules.registry import get_rule


def assert_fixture(path: Path, claims: list[ScrubbedClaim],
                   severity: Severity | None = None) -> None:
    """Check ``claims`` (``path`` scrubbed) against its name; ``severity``: the one expected
    of a fail fixture's findings, by default the default profile's for the rule and kind."""
    rule_id, outcome, kind, _ = path.name.rsplit(".", 3)
    rule = get_rule(rule_id)
    assert rule is not None, f"{path.name} names no registered rule"
    assert claims and all(c.record.kind == kind.upper() for c in claims)
    findings = [f for c in claims for f in c.findings]
    if outcome.startswith("fail"):
        mine = [f for f in findings if f.rule == rule_id]
        assert mine, f"{rule_id} did not fire on {path.name}"
        expected = severity or load_profile().severity(rule, kind.upper())
        for finding in mine:
            assert finding.severity is expected
            assert finding.status == rule.status
            assert finding.message and finding.fix and finding.segment_text
        assert [f.rule for f in findings] == [rule_id] * len(mine)
    else:
        loud = [(f.rule, f.severity.value) for f in findings if f.severity is not Severity.INFO]
        assert loud == [], f"{path.name} should draw no reject or warning"


def rules_builder(folder: str = "rules") -> ModuleType:
    """fixtures/<folder>/build.py as a module, for a test that writes its own 837s (or
    reference files) with it."""
    path = Path(__file__).resolve().parent.parent / "fixtures" / folder / "build.py"
    spec = importlib.util.spec_from_file_location(f"{folder}_fixture_build", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
