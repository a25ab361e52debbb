"""Rule triggers: the engine runs a rule only on the claims that can trip it, and hides nothing."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from scrubbing import scrub_source
from test_rules_engine import DAY, build, ledger_with

from scrubber.rules.engine import Engine
from scrubber.rules.findings import ScrubbedClaim
from scrubber.rules.profile import CodeList, load_profile
from scrubber.rules.registry import (
    KINDS,
    OR_DAY,
    OR_LEDGER,
    OWN_LINES,
    REJECT,
    Hit,
    Rule,
    Trigger,
    all_rules,
    get_rule,
    rule,
)

ROOT = Path(__file__).resolve().parent.parent
PROFILE = load_profile()
OFFICE_VISIT = build.line("99213", charge="100")


def text(*claims):
    return build.interchange("837p", [list(claims)]).encode()


def scrubbed(data: bytes, engine: Engine, ledger=None) -> list[ScrubbedClaim]:
    return [e for e in scrub_source(data, profile=engine.profile, ledger=ledger,
                                    engine=engine) if isinstance(e, ScrubbedClaim)]


def untriggered() -> Engine:
    """An engine that runs every rule on every claim, as before rules had triggers."""
    return Engine(PROFILE, [replace(r, trigger=None, claim_kinds=KINDS) for r in all_rules()])


def test_the_96523_rules_declare_the_profile_list_they_look_at():
    pack = [r for r in all_rules() if r.id.startswith("96523-")]
    assert pack and all(r.trigger is not None for r in pack)
    assert {r.trigger.procedures for r in pack if r.trigger} == {"irrigation-codes"}
    # its warning on a service whose date has a 96523 in the ledger needs the ledger's day
    assert get_rule("96523-sole-service").trigger == Trigger("irrigation-codes", OR_LEDGER)
    assert all(r.trigger == Trigger("irrigation-codes", OWN_LINES) for r in pack
               if r.id != "96523-sole-service")
    assert all(r.trigger is None for r in all_rules() if not r.id.startswith("96523-"))
    with pytest.raises(ValueError, match="reach"):
        Trigger("irrigation-codes", "week")


def test_a_claim_without_96523_runs_no_96523_rule(runs):
    (claim,) = scrubbed(text(build.claim("EM-1", [OFFICE_VISIT])), Engine(PROFILE))
    assert claim.findings == ()
    assert runs and not [r for r in runs if r.startswith("96523-")]
    assert runs == [r.id for r in all_rules()
                    if r.trigger is None and "837P" in r.claim_kinds and not r.needs]


def test_a_claim_with_96523_runs_every_rule_in_registry_order(runs):
    scrubbed(text(build.claim("P-1", [build.CLEAN])), Engine(PROFILE))
    assert runs == [r.id for r in all_rules() if "837P" in r.claim_kinds and not r.needs]


def test_a_rule_without_its_data_does_not_run_and_the_engine_says_so_once(runs):
    needy = [r.id for r in all_rules() if r.needs]
    assert needy, "some rule needs outside data"
    engine = Engine(PROFILE)
    scrubbed(text(build.claim("P-1", [build.CLEAN])), engine)
    assert not set(needy) & set(runs)
    said = " ".join(n.message for n in engine.notices)
    assert all(rule_id in said for rule_id in needy)


def test_a_rule_runs_only_on_the_claim_kinds_it_looks_at(runs):
    assert get_rule("snip-diagnosis-pointer").claim_kinds == ("837P",)
    assert get_rule("snip-statement-period").claim_kinds == ("837I",)
    scrubbed(text(build.claim("P-1", [build.CLEAN])), Engine(PROFILE))
    assert "snip-diagnosis-pointer" in runs and "snip-statement-period" not in runs
    runs.clear()
    data = build.interchange("837i", [[build.claim("I-1", [build.CLEAN])]]).encode()
    scrubbed(data, Engine(PROFILE))
    assert "snip-statement-period" in runs and "snip-diagnosis-pointer" not in runs
    with pytest.raises(ValueError, match="claim kinds"):
        rule("test-kinds", severity=REJECT, summary="", source="", stc=None,
             claim_kinds=("837D",))


def test_another_claim_of_the_run_with_96523_still_meets_the_office_visit(runs):
    """The 96523 claim gets the finding naming the office visit; the visit runs no 96523 rule."""
    data = text(build.claim("EM-1", [OFFICE_VISIT]), build.claim("P-1", [build.CLEAN]))
    visit, irrigation = scrubbed(data, Engine(PROFILE))
    assert visit.findings == ()
    (finding,) = irrigation.findings
    assert finding.rule == "96523-sole-service" and "99213 on claim EM-1" in finding.message
    assert [c.findings for c in scrubbed(data, untriggered())] == [(), irrigation.findings]


def test_a_96523_in_the_ledger_still_warns_the_office_visit(runs):
    ledger = ledger_with(("P-0", 1, "96523", (), Decimal(1), DAY, "OTHER:000000001"))
    data = text(build.claim("EM-1", [OFFICE_VISIT]))
    (claim,) = scrubbed(data, Engine(PROFILE), ledger)
    (finding,) = claim.findings
    assert finding.rule == "96523-sole-service" and finding.severity.value == "warn"
    assert finding.related == ("P-0 (submission OTHER:000000001)",)
    # sole-service reaches into the ledger; the rules about the claim's own 96523 do not run
    assert [r for r in runs if r.startswith("96523-")] == ["96523-sole-service"]
    assert scrubbed(data, untriggered(), ledger)[0].findings == claim.findings


def test_the_trigger_follows_the_profile_list():
    """A payer who adds a code to irrigation-codes gets the 96523 rules on it."""
    codes = CodeList(("96523", "96521"))
    profile = replace(PROFILE, lists=(("irrigation-codes", codes), *PROFILE.lists))
    data = text(build.claim("P-1", [build.line("96521", units="2")]))
    (claim,) = scrubbed(data, Engine(profile))
    assert "96523-units" in [f.rule for f in claim.findings]


def test_a_trigger_that_reaches_the_day_sees_the_other_claims_of_the_run():
    def other_irrigation(ctx):
        """Flag a claim whose day holds a 96523 of another claim."""
        for line in ctx.claim.lines:
            if any(s.procedure == "96523" and s.claim_ordinal != ctx.ordinal
                   for s in ctx.others(line)):
                yield Hit("a 96523 of another claim shares this day", "none", line=line)

    def day_rule(reach: str) -> Rule:
        return Rule(id="test-day", severity=REJECT, summary="", source="", status=None,
                    check=other_irrigation, doc="", trigger=Trigger("irrigation-codes", reach))

    data = text(build.claim("EM-1", [OFFICE_VISIT]), build.claim("P-1", [build.CLEAN]))
    visit, _ = scrubbed(data, Engine(PROFILE, [day_rule(OR_DAY)]))
    assert [f.rule for f in visit.findings] == ["test-day"]
    # with a narrower reach the engine (rightly, as declared) does not run it on the visit
    visit, _ = scrubbed(data, Engine(PROFILE, [day_rule(OWN_LINES)]))
    assert visit.findings == ()


@pytest.mark.parametrize("with_ledger", [False, True])
def test_every_rule_fixture_gives_the_findings_it_gave_without_triggers(with_ledger):
    files = sorted((ROOT / "fixtures" / "rules").glob("*.x12"))
    assert files
    triggered, every = Engine(PROFILE), untriggered()
    for path in files:
        data = path.read_bytes()
        ledger = ledger_with(("P-0", 1, "96523", (), Decimal(1), DAY, "OTHER:000000001"),
                             ("EM-0", 1, "99213", (), Decimal(1), date(2026, 11, 3),
                              "OTHER:000000001")) if with_ledger else None
        assert [c.findings for c in scrubbed(data, triggered, ledger)] == \
            [c.findings for c in scrubbed(data, every, ledger)], path.name
