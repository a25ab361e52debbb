"""Rules over the claim history: what the ledger says was already sent.

A payer knows a claim by billing provider, payer and patient control number
(CLM01). An original (CLM05-3 = 1) that repeats a claim already sent is
denied as an exact duplicate (CARC 18); a correction goes as a replacement.
"""

from __future__ import annotations

from collections.abc import Iterator

from scrubber.rules.context import ClaimContext, claim_content
from scrubber.rules.registry import REJECT, WARN, Hit, rule

ORDER = 50  # where this pack comes in `scrub rules` (scrubber.rules.registry.Pack)


@rule("duplicate-claim", severity=REJECT, stc=("A3", "78"),
      summary="an original claim repeats a claim already sent (same provider, payer, CLM01)",
      source="X12 005010X222A1/X223A2 CLM05-3 claim frequency; payers deny an exact "
             "duplicate (CARC 18); the ledger's record of what was sent")
def resent_original(ctx: ClaimContext) -> Iterator[Hit]:
    """An original claim is not sent again: a sent claim is corrected with a replacement.

    The ledger records the claims sent. A claim with the same billing NPI,
    payer and CLM01 seen again as an original (frequency 1) in a later
    submission is what the payer denies: sent unchanged, it is an exact
    duplicate (rejected); changed, it is a correction sent the wrong way (a
    warning: send it as a replacement). So is one that another run (or an
    earlier interchange of this one) is sending now. Checking the same
    submission again (a rerun) is not a resend. Replacements (7) and voids (8)
    name an earlier claim on purpose.

    Fails: CLM*PCN1 (frequency 1) sent in submission 1, sent again unchanged as frequency 1
    Passes: CLM*PCN1 sent in submission 1, then CLM*PCN1 with frequency 7
    """
    if ctx.claim.frequency != "1":
        return
    sent = ctx.sent()
    if sent is None or sent.submission == ctx.submission:
        return
    when = ("is being sent (its run has not finished)" if sent.held
            else f"was already sent on {sent.recorded_at[:10]}")
    where = (f"to payer {sent.payer or '(none named)'} by billing provider "
             f"{sent.billing_npi} in submission {sent.submission} (frequency {sent.frequency})")
    related = (f"{sent.claim_id} (submission {sent.submission})",)
    if sent.content is not None and sent.content == claim_content(ctx.record):
        yield Hit(
            f"claim {sent.claim_id} {when} {where}, as it is now: sent again it is denied as "
            "an exact duplicate",
            "Do not send it again: the payer has it. If it must be corrected, change it and "
            "send it as a replacement (CLM05-3 = 7, with the payer's claim number in REF*F8); "
            f"if it was never sent, forget it in the ledger (scrub ledger forget --claim "
            f"{sent.claim_id}).", segment=ctx.claim.location, element="CLM05-3",
            related=related)
        return
    changed = ("and it has changed since" if sent.content is not None
               else "(the ledger did not keep what it said)")
    yield Hit(
        f"claim {sent.claim_id} {when} {where} {changed}: sent again as an original it is "
        "denied as a duplicate",
        "Send the corrected claim as a replacement (CLM05-3 = 7, with the payer's claim "
        "number in REF*F8), not as a new original; if the first was never sent, forget it "
        f"in the ledger (scrub ledger forget --claim {sent.claim_id}).",
        segment=ctx.claim.location, element="CLM05-3", related=related, ceiling=WARN)
