"""The rule registry: every rule, its defaults and where it comes from, listable.

A rule is a small generator over a ``ClaimContext`` that yields ``Hit``s; the
engine stamps rule id, severity (after the profile), 277CA status and
location on each hit to make a ``Finding``. Packs are found by convention
(``packs()``): a module in ``scrubber/rules/packs/`` or an entry point, so a
new pack is one file and no list to edit; the ``rule`` decorator records each
function, and ``all_rules()`` lists them pack by pack.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from scrubber.model.claims import KINDS as KINDS  # re-exported: rules.docs reads it here
from scrubber.model.claims import Location, ServiceLine
from scrubber.rules.findings import Notice, Severity

if TYPE_CHECKING:
    from scrubber.rules.context import ClaimContext

REJECT, WARN, INFO = Severity.REJECT, Severity.WARN, Severity.INFO
_WEIGHT = {Severity.INFO: 0, Severity.WARN: 1, Severity.REJECT: 2}


def milder(a: Severity, b: Severity) -> Severity:
    """The lighter of two severities: a hit's ceiling never raises the profile's choice."""
    return a if _WEIGHT[a] <= _WEIGHT[b] else b


@dataclass(frozen=True, slots=True)
class Hit:
    """What a rule found, before the engine turns it into a Finding."""

    message: str  # what is wrong
    fix: str  # what to do about it
    line: ServiceLine | None = None  # the line concerned; None for the whole claim
    segment: Location | None = None  # where to point; default: the line's SV1/SV2, or CLM
    element: str | None = None  # e.g. "SV104"
    related: tuple[str, ...] = ()  # other claims concerned: "CLM01 (submission ...)"
    ceiling: Severity | None = None  # at most this severity (e.g. INFO when a PWK documents it)


Check = Callable[["ClaimContext"], Iterable[Hit | Notice]]

# Where a trigger's procedure must be for the rule to possibly fire (see ``Trigger``).
OWN_LINES = "claim"  # on the claim's own lines
OR_LEDGER = "ledger"  # there, or among the ledger's services of the dates of its lines
OR_DAY = "day"  # there, or anywhere in the day context of its lines (the run, the ledger)
REACHES = (OWN_LINES, OR_LEDGER, OR_DAY)


@dataclass(frozen=True, slots=True)
class Trigger:
    """What a claim must hold for a rule to possibly fire: a procedure of a profile list.

    The engine runs a rule with a trigger only on the claims that hold one of
    the list's codes where ``reach`` says; a rule without one runs on every
    claim. The codes are the profile's list, not a copy, so a payer who adds a
    code to the list gets the rule on its claims too. A trigger only saves
    work: it must hold on every claim the rule can find something on.
    """

    procedures: str  # the profile list of codes: "irrigation-codes"
    reach: str = OWN_LINES  # OWN_LINES, OR_LEDGER or OR_DAY

    def __post_init__(self) -> None:
        if self.reach not in REACHES:
            raise ValueError(f"trigger reach {self.reach!r} is not one of {REACHES}")

    def describe(self) -> str:
        """Words for `scrub rules` on the claims the engine runs the rule on."""
        also = {OWN_LINES: "",
                OR_LEDGER: ", or whose dates have one in the ledger",
                OR_DAY: ", or whose dates have one in the day context (the run, the ledger)"}
        return f"that bill a code of the profile list {self.procedures}{also[self.reach]}"


@dataclass(frozen=True, slots=True)
class Gate:
    """A test of the claim that several rules of a pack share: they run only where it passes.

    Where a trigger names a profile list, a gate asks what a list cannot: a
    modifier on some line, a status the fee-schedule file gives a billed code, a
    lab test on the claim. The engine asks each gate once a claim, so a pack's
    rules that could find nothing on it are not run one by one just to return.
    Like a trigger, a gate only saves work: it must pass on every claim its rules
    can yield anything on (a Hit or a Notice). It reads the claim and the run's
    resources, never the day context or the ledger.
    """

    name: str  # "pfs-status-I": the engine asks one gate once, however many rules share it
    test: Callable[[ClaimContext], bool]
    # or, made by ``holding``: what the claim holds, in words a pack chooses (the status
    # letters of its fee-schedule rows ...), and the words it passes on
    holds: Callable[[ClaimContext], frozenset[str]] | None = None
    wants: frozenset[str] = frozenset()

    @classmethod
    def holding(cls, name: str, holds: Callable[[ClaimContext], frozenset[str]],
                wants: Iterable[str]) -> Gate:
        """A gate passing a claim when ``holds(claim)`` has a word of ``wants``.

        Several gates of a pack often ask the same of a claim (which modifiers its
        lines carry, which statuses its codes have): the engine works each ``holds``
        out once a claim for every gate that shares it, and tests the words itself.
        """
        wanted = frozenset(wants)

        def test(ctx: ClaimContext) -> bool:
            return not holds(ctx).isdisjoint(wanted)
        return cls(name, test, holds, wanted)


@dataclass(frozen=True, slots=True)
class Rule:
    """A registered rule: id, defaults, provenance and the check itself."""

    id: str  # permanent, never reused: "96523-units"
    severity: Severity  # default severity
    summary: str  # one line, for `scrub rules`
    source: str  # seed, CPT instruction, NCCI, payer profile ...
    status: tuple[str, str] | None  # 277CA STC01 category and status code
    check: Check
    doc: str  # the check's docstring: what, why, Fails:/Passes: examples
    kind_severity: tuple[tuple[str, Severity], ...] = ()  # default per claim kind
    trigger: Trigger | None = None  # the claims it can fire on; None: every claim
    gate: Gate | None = None  # a claim test its pack shares (see Gate); None: no test
    claim_kinds: tuple[str, ...] = KINDS  # the kinds of claim it looks at ("837P", "837I")
    # the outside data (resource names) it cannot run without; without it the engine does
    # not run the rule and the run says so once (a Notice), not once per claim
    needs: tuple[str, ...] = ()
    # what `scrub fix` does about it: "" nothing; "unsafe: ..." applied only with
    # --unsafe-fixes (it changes what is billed); "safe: ..." always (mechanical)
    fix: str = ""

    def default_severity(self, kind: str) -> Severity:
        """The built-in severity for an 837P or 837I claim."""
        for name, severity in self.kind_severity:
            if name == kind:
                return severity
        return self.severity

    def run(self, context: ClaimContext) -> Iterable[Hit | Notice]:
        """What the check yields on ``context``: its own iterable (no generator around it)."""
        return self.check(context)


_REGISTRY: dict[str, Rule] = {}


def rule(rule_id: str, *, severity: Severity, summary: str, source: str,
         stc: tuple[str, str] | None, kinds: dict[str, Severity] | None = None,
         procedures: str | None = None, reach: str = OWN_LINES,
         claim_kinds: tuple[str, ...] = KINDS, needs: tuple[str, ...] = (), fix: str = "",
         gate: Gate | None = None) -> Callable[[Check], Check]:
    """Register ``check`` under ``rule_id``; ids are unique and permanent.

    ``procedures`` names the profile list of codes a claim must hold (where
    ``reach`` says) for the rule to possibly fire; without it the rule runs on
    every claim. See ``Trigger``; ``gate``, a claim test several rules share, is
    the same for what a profile list cannot say (see ``Gate``). ``claim_kinds``:
    the kinds of claim the rule looks at; the engine does not run it on the others.
    ``needs``: the resources (scrubber.rules.resources) it cannot run without.
    ``fix``: what ``scrub fix`` does about its findings ("safe: ..." or "unsafe:
    ..."; "" nothing). A check yields ``Hit``s, and a ``Notice`` for what it cannot
    judge for a reason of the run's.
    """
    if not claim_kinds or not set(claim_kinds) <= set(KINDS):
        raise ValueError(f"rule {rule_id!r}: claim kinds {claim_kinds!r} are not among {KINDS}")
    trigger = Trigger(procedures, reach) if procedures is not None else None

    def register(check: Check) -> Check:
        if rule_id in _REGISTRY:
            raise ValueError(f"rule id {rule_id!r} is registered twice")
        _REGISTRY[rule_id] = Rule(
            id=rule_id, severity=severity, summary=summary, source=source, status=stc,
            check=check, doc=inspect.cleandoc(check.__doc__ or ""),
            kind_severity=tuple(sorted((kinds or {}).items())), trigger=trigger, gate=gate,
            claim_kinds=tuple(claim_kinds), needs=tuple(needs), fix=fix,
        )
        return check

    return register


PACK_GROUP = "scrubber.rule_packs"  # entry-point group of rule packs installed from elsewhere


@dataclass(frozen=True, slots=True)
class Pack:
    """A module of rules, found by convention: every module of ``scrubber.rules.packs``,
    and every module an installed distribution names in the ``scrubber.rule_packs``
    entry-point group.

    A pack module may set ``ORDER`` (an int, default 100: where its rules come in
    `scrub rules` and docs/rules.md) and ``FIXTURES`` (the folder under fixtures/ that
    holds its rules' passing and failing fixtures, default "rules").
    """

    module: str  # "scrubber.rules.packs.cpt_96523"
    order: int
    fixtures: str

    @property
    def name(self) -> str:
        return self.module.rpartition(".")[2]

    @property
    def builtin(self) -> bool:
        """Shipped with the scrubber (docs/rules.md documents these), not installed beside it."""
        return self.module.startswith("scrubber.rules.packs.")


def packs() -> tuple[Pack, ...]:
    """Every rule pack, imported (importing a pack registers its rules), in listing order."""
    global _PACKS
    if _PACKS is None:
        import pkgutil
        from importlib.metadata import entry_points

        from scrubber.rules import packs as builtin

        names = [f"{builtin.__name__}.{m.name}" for m in pkgutil.iter_modules(builtin.__path__)]
        names += [ep.value.partition(":")[0] for ep in entry_points(group=PACK_GROUP)]
        found = []
        for name in dict.fromkeys(names):
            module = importlib.import_module(name)
            found.append(Pack(name, int(getattr(module, "ORDER", 100)),
                              str(getattr(module, "FIXTURES", "rules"))))
        _PACKS = tuple(sorted(found, key=lambda p: (p.order, p.module)))
    return _PACKS


_PACKS: tuple[Pack, ...] | None = None


def pack_of(rule: Rule) -> Pack:
    """The pack a rule was registered from."""
    for pack in packs():
        if pack.module == rule.check.__module__:
            return pack
    return Pack(rule.check.__module__, 100, "rules")  # registered from elsewhere (a test)


def all_rules() -> tuple[Rule, ...]:
    """Every registered rule: pack by pack (by ``ORDER``), each in registration order.

    The order does not depend on which pack some caller happened to import first,
    so `scrub rules` and docs/rules.md always list the rules the same way.
    """
    rank = {pack.module: n for n, pack in enumerate(packs())}
    return tuple(sorted(_REGISTRY.values(),
                        key=lambda r: rank.get(r.check.__module__, len(rank))))


def get_rule(rule_id: str) -> Rule | None:
    """The rule registered under ``rule_id``, or None."""
    packs()
    return _REGISTRY.get(rule_id)


def matches(rule_id: str, patterns: Iterable[str]) -> bool:
    """Whether ``rule_id`` is one of ``patterns`` or starts with one ("snip-" covers a pack)."""
    return any(rule_id == p or rule_id.startswith(p) for p in patterns)


def selected(rules: Iterable[Rule], select: Iterable[str] = (), ignore: Iterable[str] = ()
             ) -> tuple[Rule, ...]:
    """The rules ``select`` names (all when empty) less those ``ignore`` names, as linters do.

    Each pattern is a rule id or a prefix of ids, or names problem codes
    (scrubber.problems: ``ig-element``, the family ``env`` ...), which are the
    payer's checks and no rules: they select no rule and leave none out. One
    that matches neither is a ValueError naming it: a typo must not quietly
    switch every rule off (or none).
    """
    from scrubber.problems import is_problem_pattern

    rules = tuple(rules)
    select, ignore = tuple(select), tuple(ignore)
    for pattern in (*select, *ignore):
        if not any(matches(r.id, (pattern,)) for r in rules) and \
                not is_problem_pattern(pattern):
            raise ValueError(f"no rule id or problem code is or begins with {pattern!r} "
                             "(see `scrub rules`)")
    return tuple(r for r in rules
                 if (not select or matches(r.id, select)) and not matches(r.id, ignore))
