"""Add-on codes need their primary service: CMS's NCCI add-on code edits.

Source: the Medicare NCCI add-on code (AOC) edit file, quarterly (the user's
``--ncci-aoc``; scrubber.ncci.addons reads and indexes it). An add-on code
describes work done in addition to a primary service by the same practitioner
for the same patient on the same date; it is not paid alone. Type 1 edits list
every acceptable primary; type 2 list none (the contractor decides); type 3 list
some. The primary is looked for in the patient's day context: this claim, the
other claims of the submission and the claims already accepted (the ledger),
for the same billing provider (the day context's patient identity includes it).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

from scrubber.model.claims import ServiceLine, service_element
from scrubber.ncci.addons import AddonEdit, AddonEdits, AddonError
from scrubber.rules.context import SAME_CLAIM, ClaimContext, DayService
from scrubber.rules.registry import REJECT, WARN, Gate, Hit, rule
from scrubber.rules.resources import (
    Release,
    ResourceError,
    ResourceKind,
    ResourceOption,
    resource_kind,
)

ORDER = 35  # after the NCCI pack (scrubber.rules.registry.Pack)
FIXTURES = "addons"  # its rules' fixtures, scrubbed with the synthetic file beside them
KIND = "ncci-aoc"


def _load(given: Mapping[str, tuple[str, ...]]) -> AddonEdits | None:
    from scrubber.ncci.addons import load_addons

    if not given.get(KIND):
        return None
    try:
        return load_addons(given[KIND])
    except AddonError as exc:
        raise ResourceError(f"add-on code edits: {exc}") from None


def recognize(path: Path) -> Release | None:
    """An AOC file or zip, as CMS names it (AOC_V2026Q1-MCR), and its quarter."""
    from scrubber.ncci.addons import addon_file, looks_like, release_label

    if not looks_like(path):
        return None
    try:
        start, _ = addon_file(path)
    except AddonError as exc:
        raise ResourceError(str(exc)) from None
    return Release(KIND, release_label(start), start)


resource_kind(ResourceKind(KIND, (
    ResourceOption(KIND, "CMS NCCI add-on code edit file (AOC_VyyyyQn zip as downloaded, or "
                         "the text in it), repeatable. See docs/data.md.", recognize=recognize),
), _load, label="CMS NCCI add-on code edits"))

SOURCE = "CMS NCCI add-on code edits, type {} (the user's --ncci-aoc, see docs/data.md)"


def _addon_lines(ctx: ClaimContext
                 ) -> tuple[tuple[ServiceLine, AddonEdit, tuple[DayService, ...]], ...]:
    """Each dated add-on line whose primary is not on this claim, with its edit on the date
    and the other services of its day (the run's and the ledger's looked up only then);
    worked out once for both rules."""
    return ctx.once("addon-lines", _lines_without_primary, ctx)


def _lines_without_primary(ctx: ClaimContext
                           ) -> tuple[tuple[ServiceLine, AddonEdit, tuple[DayService, ...]],
                                      ...]:
    edits = ctx.resource(KIND, AddonEdits)
    if edits is None or ctx.claim.frequency == "8":
        return ()
    dated = ctx.dated_lines()
    out = []
    for line, day in dated:
        if line.procedure_qualifier != "HC":
            continue
        edit = edits.edit(line.procedure, day)
        if edit is None:
            continue
        here = {other.procedure for other, when in dated if when == day and other is not line}
        if (edit.type == 2 and here) or not here.isdisjoint(edit.primaries):
            continue  # its primary (or, for type 2, some service) is on this claim
        out.append((line, edit, ctx.others(line)))
    return tuple(out)


def _bills_an_addon(ctx: ClaimContext) -> bool:
    """True when a dated line bills a code some edit in force on its date lists as an add-on
    (and the claim is no void): the add-on rules look at nothing else."""
    edits = ctx.resource(KIND, AddonEdits)
    if edits is None or ctx.claim.frequency == "8":
        return False
    addons = edits.addons()
    return any(line.procedure_qualifier == "HC" and line.procedure.upper() in addons
               and edits.edit(line.procedure, day) is not None
               for line, day in ctx.dated_lines())


ADDON_GATE = Gate("addon-lines", _bills_an_addon)


def _related(services) -> tuple[str, ...]:
    return tuple(dict.fromkeys(s.reference() for s in services if s.where != SAME_CLAIM))


def _listed(edit: AddonEdit, shown: int = 8) -> str:
    codes = sorted(edit.primaries)
    more = f" and {len(codes) - shown} more" if len(codes) > shown else ""
    return ", ".join(codes[:shown]) + more


@rule("addon-primary", severity=REJECT, stc=("A8", "454"),
      summary="a type 1 add-on code without one of its listed primary codes that day",
      source=SOURCE.format(1), needs=(KIND,), gate=ADDON_GATE)
def addon_primary(ctx: ClaimContext) -> Iterator[Hit]:
    """A type 1 add-on code is paid only with one of the primary codes its edit lists.

    The primary must be billed for the same patient by the same provider on the
    same date: on this claim, another claim of the submission or a claim already
    accepted. Edits, add-on and primary codes count only while in force on the
    date (effective on or before it, deleted after it).
    Fails: SV1*HC:11045 on 20260302 without 11042
    Passes: SV1*HC:11042 and SV1*HC:11045 on 20260302
    """
    for line, edit, others in _addon_lines(ctx):
        if edit.type != 1 or any(s.procedure in edit.primaries for s in others):
            continue
        yield Hit(f"{line.procedure} is an add-on code (type 1) and no primary code it needs "
                  f"is billed for this patient that day; its edit lists {_listed(edit)}.",
                  "Bill the primary service on the same date (this claim or one sent with "
                  "it), or remove the add-on line; an add-on is not paid alone.",
                  line=line, element=service_element(ctx.kind, "procedure"),
                  related=_related(others))


@rule("addon-unlisted-primary", severity=WARN, stc=("A8", "454"),
      summary="a type 2 or 3 add-on code with no primary CMS lists (or none at all) that day",
      source=SOURCE.format("2 and 3"), needs=(KIND,), gate=ADDON_GATE)
def addon_unlisted_primary(ctx: ClaimContext) -> Iterator[Hit]:
    """Type 2 and 3 add-ons need a primary the payer accepts: a warning when none is seen.

    Type 2: CMS lists no primary, the contractor decides; warned when no other
    service is billed that day. Type 3: CMS lists some primaries and the
    contractor may accept others; warned when none of the listed ones is billed.
    Fails: SV1*HC:99292 on 20260302 with no other service (type 2)
    Passes: SV1*HC:99291 and SV1*HC:99292 on 20260302 (type 2)
    """
    for line, edit, others in _addon_lines(ctx):
        if edit.type == 2 and not others:
            yield Hit(f"{line.procedure} is an add-on code (type 2: the payer decides which "
                      "primaries it accepts) and is the only service billed for this patient "
                      "that day.",
                      "Bill the primary service it adds to on the same date, or remove it.",
                      line=line, element=service_element(ctx.kind, "procedure"))
        elif edit.type == 3 and edit.primaries and \
                not any(s.procedure in edit.primaries for s in others):
            yield Hit(f"{line.procedure} is an add-on code (type 3) billed without any of the "
                      f"primaries CMS lists for it ({_listed(edit)}); the payer may accept "
                      "another primary, or deny it.",
                      "Check that the payer accepts the primary billed with it; otherwise bill "
                      "a listed primary or remove the add-on.", line=line,
                      element=service_element(ctx.kind, "procedure"), related=_related(others))
