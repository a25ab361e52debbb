"""Rule gates: a pack's rules skipped on a claim that bills nothing they look at, and only then.

A gate (scrubber.rules.registry.Gate) saves work and must hide nothing: every
claim below bills what its pack looks at on one line only, and not the first, and
each is scrubbed with the gates and without them.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from scrubbing import scrub_source
from test_data_pack_fixtures import BUILDERS, ROOT

from scrubber.rules.engine import Engine
from scrubber.rules.findings import ScrubbedClaim
from scrubber.rules.profile import load_profile
from scrubber.rules.registry import WARN, Gate, Hit, Rule, all_rules
from scrubber.rules.resources import Resources, load_resources

PROFILE = load_profile()
GATED = ("pfs", "addons", "place", "providers")


@pytest.fixture(scope="module")
def resources(tmp_path_factory) -> dict[str, Resources]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
        return {folder: load_resources({option: [str(p) for p in paths] for option, paths
                                        in BUILDERS[folder].data_files().items()})
                for folder in GATED}


def ungated(resources: Resources, select=()) -> Engine:
    """An engine that runs every rule on every claim of its kinds, as before gates."""
    return Engine(PROFILE, [replace(r, gate=None) for r in all_rules()], resources=resources,
                  select=select)


def scrubbed(data: bytes | Path, engine: Engine) -> list[ScrubbedClaim]:
    return [e for e in scrub_source(data, profile=PROFILE, engine=engine)
            if isinstance(e, ScrubbedClaim)]


def said(claims: list[ScrubbedClaim]) -> list:
    return [(c.findings, c.notices) for c in claims]


pfs, place, addons = BUILDERS["pfs"], BUILDERS["place"], BUILDERS["addons"]
providers = BUILDERS["providers"]
# (folder, claim, the rule that must fire on it): what each gate looks for is on the last line
LAST_LINE = [
    ("pfs", pfs.visit("G-PCTC", "99213", "99214", ("99213", ("26",))), "pfs-pctc-modifier"),
    ("pfs", pfs.visit("G-BIL", "99213", ("27447", ("50",))), "pfs-bilateral"),
    ("pfs", pfs.visit("G-AST", "99214", ("99213", ("80",))), "pfs-assistant"),
    ("pfs", pfs.visit("G-COS", "99213", "99214", ("27447", ("62",))), "pfs-cosurgeon"),
    ("pfs", pfs.visit("G-TEAM", "99213", ("27447", ("66",))), "pfs-team"),
    ("pfs", pfs.visit("G-INV", "99213", "99214", "99241"), "pfs-not-valid"),
    ("pfs", pfs.visit("G-NCOV", "99213", "99385"), "pfs-not-covered"),
    ("pfs", pfs.visit("G-BUN", "99211", "96372"), "pfs-bundled"),
    ("pfs", pfs.visit("G-NOTE", "99213", "0042T"), "pfs-status-note"),
    ("pfs", pfs.visit("G-GLO", "99214", "11042", "99213"), "pfs-global-period"),
    ("place", place.visit("G-FAC", "99213", "27447"), "pos-facility-only"),
    ("place", place.visit("G-LAB", "99213", "85025"), "clia-number"),
    ("place", place.visit("G-QW", "99213", "87880", refs=place.CLIA), "clia-waived-qw"),
    ("addons", addons.visit("G-AOC", "99213", "11045"), "addon-primary"),
    ("addons", addons.visit("G-AOC3", "99213", "22552"), "addon-unlisted-primary"),
]


def test_the_edit_packs_gate_their_rules():
    gated = {r.id for r in all_rules() if r.gate is not None}
    assert {rule for _, _, rule in LAST_LINE} <= gated
    assert all(r.trigger is None for r in all_rules() if r.gate is not None)


@pytest.mark.parametrize("folder, claim, rule_id", LAST_LINE,
                         ids=[rule for _, _, rule in LAST_LINE])
def test_a_claim_that_bills_it_on_its_last_line_only_still_runs_the_rule(
        folder, claim, rule_id, resources):
    data = pfs.rules.interchange("837p", [[claim]]).encode()
    found = scrubbed(data, Engine(PROFILE, resources=resources[folder]))
    assert rule_id in [f.rule for c in found for f in c.findings]
    assert said(found) == said(scrubbed(data, ungated(resources[folder])))


@pytest.mark.parametrize("rule_id", ["pfs-not-valid", "pfs-not-covered", "pfs-bundled",
                                     "pfs-status-note", "pfs-global-period"])
def test_a_line_dated_outside_the_fee_schedule_still_says_so(rule_id, resources):
    """Each rule that passes on the Notice of such a line, alone: its gate lets it through."""
    data = pfs.rules.interchange("837p", [[pfs.visit("G-OLD", "99213", "99241",
                                                     day="20251201")]]).encode()
    found = scrubbed(data, Engine(PROFILE, resources=resources["pfs"], select=(rule_id,)))
    assert [n.key for c in found for n in c.notices] == ["pfs-rvu-uncovered-dates"]
    assert said(found) == said(scrubbed(data, ungated(resources["pfs"], (rule_id,))))


def test_a_claim_billing_none_of_it_skips_the_gated_rules(resources, runs):
    data = pfs.rules.interchange("837p", [[pfs.visit("G-NONE", "99213", "99214")]]).encode()
    everything = resources["pfs"].merged(resources["place"]).merged(resources["addons"])
    scrubbed(data, Engine(PROFILE, resources=everything))
    ran = set(runs)
    assert "pfs-global-period" in ran  # its gate: an E/M visit (or a global surgery code)
    assert not ran & {"pfs-pctc-modifier", "pfs-bilateral", "pfs-not-valid", "pfs-bundled",
                      "pos-facility-only", "clia-number", "addon-primary"}


@pytest.mark.parametrize("folder", GATED)
def test_every_fixture_of_the_gated_packs_gives_what_it_gave_without_gates(folder, resources):
    files = sorted((ROOT / folder).glob("*.x12"))
    assert files
    gated, every = Engine(PROFILE, resources=resources[folder]), ungated(resources[folder])
    for path in files:
        assert said(scrubbed(path, gated)) == said(scrubbed(path, every)), path.name


# (kind, claim, interchange options, the rule that must fire): NPIs the provider gates must let
# through where the rules' fixtures do not put them
PROVIDER_CASES = [
    ("837p", providers.visit("G-LINE", "99213", "80053", ordering=providers.NOWHERE), {},
     "npi-not-in-nppes"),  # a line's ordering provider (2420E)
    ("837p", providers.visit("G-GONE", "99213", "99214", ordering=providers.GONE), {},
     "npi-inactive"),
    ("837i", providers.hha("G-INST"), {"bill_type": "32", "billing": ("1", providers.SOLO, "")},
     "npi-entity-type"),  # an individual's NPI billing an institutional claim
    ("837p", providers.visit("G-TAX", "99213", rendering=providers.SOLO,
                             taxonomy="2080X0099X"), {}, "taxonomy-unknown"),
]


@pytest.mark.parametrize("kind, claim, options, rule_id", PROVIDER_CASES,
                         ids=[case[-1] for case in PROVIDER_CASES])
def test_the_provider_gates_let_each_npi_problem_through(kind, claim, options, rule_id,
                                                        resources):
    data = providers.interchange(kind, [claim], **options).encode()
    found = scrubbed(data, Engine(PROFILE, resources=resources["providers"]))
    assert rule_id in [f.rule for c in found for f in c.findings]
    assert said(found) == said(scrubbed(data, ungated(resources["providers"])))


def test_a_claim_whose_npis_are_all_in_order_skips_the_provider_rules(resources, runs):
    data = providers.interchange("837p", [providers.visit(
        "G-FINE", "99213", rendering=providers.DOCTOR, taxonomy="207Q00000X")]).encode()
    found = scrubbed(data, Engine(PROFILE, resources=resources["providers"]))
    assert not [f for c in found for f in c.findings if f.rule.startswith(("npi-", "tax"))]
    assert not set(runs) & {"npi-not-in-nppes", "npi-inactive", "npi-entity-type",
                            "taxonomy-unknown", "taxonomy-not-npis", "order-refer-not-eligible"}


def test_gates_holding_the_same_words_ask_the_claim_once():
    """Gate.holding: the engine works a shared ``holds`` out once a claim, for every gate."""
    asked: list[str] = []

    def holds(context) -> frozenset[str]:
        asked.append(context.claim.id)
        return frozenset({"b"})

    def check(context):
        yield Hit("held", "nothing")

    rules = [Rule(id=f"gate-{gate.name}", severity=WARN, summary="", source="", status=None,
                  check=check, doc="", gate=gate)
             for gate in (Gate.holding("a", holds, ("a",)), Gate.holding("b", holds, "bc"))]
    data = pfs.rules.interchange("837p", [[pfs.visit("G-HOLD", "99213")]]).encode()
    found = scrubbed(data, Engine(PROFILE, rules))
    assert asked == ["G-HOLD"]
    assert [f.rule for c in found for f in c.findings] == ["gate-b"]
