"""What the rules say about a claim: findings, and the verdict they add up to."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from scrubber.model import ClaimRecord, Location


class Severity(StrEnum):
    """How much a finding weighs: a reject stops the claim, a warning travels with it."""

    REJECT = "reject"
    WARN = "warn"
    INFO = "info"


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing wrong (or worth knowing) about a claim or one of its lines."""

    rule: str  # rule id, permanent: "96523-units"
    severity: Severity
    message: str  # what is wrong, in words a biller understands
    fix: str  # what to do about it
    claim_id: str  # CLM01
    line_number: int | None  # LX01 of the line concerned; None for the whole claim
    location: Location | None  # the segment the finding points at
    segment_text: str  # that segment as sent (delimiters of its interchange)
    element: str | None = None  # the offending element, e.g. "SV104", to highlight
    status: tuple[str, str] | None = None  # 277CA STC01 category and status: ("A7", "476")
    source: str = ""  # where the rule comes from (CPT instruction, NCCI, profile ...)
    related: tuple[str, ...] = ()  # other claims it concerns: "CLM01 (submission ...)"

    def as_dict(self) -> dict:
        return {
            "rule": self.rule,
            "severity": self.severity.value,
            "message": self.message,
            "fix": self.fix,
            "line_number": self.line_number,
            "location": {"segment": location[0], "line": location[1], "offset": location[2]}
            if (location := self.location) else None,
            "segment_text": self.segment_text,
            "element": self.element,
            "status_code": ":".join(self.status) if self.status else None,
            "source": self.source,
            "related": list(self.related),
        }

    def __reduce__(self) -> tuple:
        # by position: a --jobs worker spools every finding to the parent, and the slots
        # dataclass's own pickling looks its fields up again for each one
        return (Finding, (self.rule, self.severity, self.message, self.fix, self.claim_id,
                          self.line_number, self.location, self.segment_text, self.element,
                          self.status, self.source, self.related))


@dataclass(frozen=True, slots=True)
class Notice:
    """Something a run says once, not once per claim.

    A rule yields one beside its hits when it cannot judge a claim for a reason
    that is the run's, not the claim's (no installed code-set release covers the
    date of service, say); the engine adds one for each rule whose outside data
    is not there. Reports fold notices by ``key`` and count the claims concerned.
    """

    key: str  # what folds repeats into one: "codesets-uncovered-dates"
    message: str  # in words, with what to do
    source: str = ""  # the rule or data it comes from
    claims: int = 0  # claims concerned, counted by the run (0: the whole run)

    def as_dict(self) -> dict:
        return {"key": self.key, "message": self.message, "source": self.source,
                "claims": self.claims}

    def __reduce__(self) -> tuple:
        return (Notice, (self.key, self.message, self.source, self.claims))


@dataclass(frozen=True, slots=True)
class ScrubbedClaim:
    """A claim and every finding about it; rejected when any finding is a reject.

    ``held`` marks a claim whose transaction set the implementation-guide check
    rejected: a payer answers it with a 999 only, so it gets no 277CA.
    """

    record: ClaimRecord
    findings: tuple[Finding, ...]
    held: bool = False
    notices: tuple[Notice, ...] = ()  # what the rules could not judge, for the run to say once
    # of a held claim: the ids of the errors that made the payer reject its set, group or
    # interchange (scrubber.problems), under which reports count its charge
    causes: tuple[str, ...] = ()
    # what sinks write for this claim, made ahead by a --jobs worker, by renderer key
    # (scrubber.emit.sinks.ClaimRenderer); not part of what the claim is
    rendered: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)

    @property
    def rejected(self) -> bool:
        return self.held or any(f.severity is Severity.REJECT for f in self.findings)

    @property
    def status(self) -> str:
        return "rejected" if self.rejected else "accepted"

    @property
    def claim(self):
        return self.record.claim
