"""Profiles: severities, rules off, lists, and clear errors for bad files."""

from __future__ import annotations

from pathlib import Path

import pytest
from scrubbing import scrub_source

from scrubber.rules.findings import ScrubbedClaim, Severity
from scrubber.rules.profile import ProfileError, load_profile, maps_dir
from scrubber.rules.registry import all_rules, get_rule

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "rules"


def write(tmp_path, body: str, name="payer.xml") -> Path:
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    return path


def findings(path: Path, profile):
    return [f for e in scrub_source(path, profile=profile)
            if isinstance(e, ScrubbedClaim) for f in e.findings]


def test_default_profile_restates_the_built_in_severities():
    profile = load_profile()
    assert Path(profile.path) == maps_dir() / "default-profile.xml"
    for r in all_rules():
        for kind in ("837P", "837I"):
            assert profile.severity(r, kind) is r.default_severity(kind)
    assert "96413" in profile.list("drug-admin-codes")
    assert "96550" not in profile.list("drug-admin-codes")
    assert "9641" not in profile.list("drug-admin-codes")


def test_profile_turns_a_rule_off_and_changes_a_severity(tmp_path):
    path = write(tmp_path, """<?xml version="1.0"?>
<profile name="payer-x">
  <rules>
    <rule id="96523-device" enabled="false"/>
    <rule id="96523-units" severity="warn"/>
    <rule id="96523-units" kind="837I" severity="info"/>
  </rules>
</profile>""")
    profile = load_profile(path)
    assert profile.severity(get_rule("96523-device"), "837P") is None
    assert profile.severity(get_rule("96523-units"), "837P") is Severity.WARN
    assert profile.severity(get_rule("96523-units"), "837I") is Severity.INFO
    assert findings(FIXTURES / "96523-device.fail.837p.x12", profile) == []
    (unit,) = findings(FIXTURES / "96523-units.fail.837p.x12", profile)
    assert unit.severity is Severity.WARN
    # lists the payer leaves out come from the default profile
    assert "36591" in profile.list("blood-draw-codes")


def test_profile_lists_replace_the_defaults(tmp_path):
    path = write(tmp_path, """<profile name="strict-dx"><lists>
      <list name="supporting-diagnoses"><term>T827</term></list></lists></profile>""")
    fired = findings(FIXTURES / "96523-diagnosis.pass.837i.x12", load_profile(path))
    assert [f.rule for f in fired] == ["96523-diagnosis"]  # Z452 no longer supports it


@pytest.mark.parametrize("body, words", [
    ("<profile name='x'><rules>", "line 1: not well-formed XML"),
    ("<profile name='x'>\n<rules>\n<rule id='96523-units' severity='fatal'/></rules></profile>",
     "line 3: does not match profile.xsd"),
    ("<profile name='x'>\n<lists><list name='colours'/></lists></profile>",
     "line 2: does not match profile.xsd"),
    ("<profile name='x'><rules>\n\n<rule id='96523-nope'/></rules></profile>",
     "line 3: unknown rule id '96523-nope'"),
    ("<profile name='x'><lists>\n<list name='drug-admin-codes'>"
     "<range from='96549' to='96360'/></list></lists></profile>", "line 2: range"),
])
def test_bad_profile_names_file_and_line(tmp_path, body, words):
    path = write(tmp_path, body)
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    assert str(path) in str(info.value) and words in str(info.value)


def test_missing_profile_is_a_profile_error(tmp_path):
    with pytest.raises(ProfileError, match="no such profile"):
        load_profile(tmp_path / "absent.xml")
