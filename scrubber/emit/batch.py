"""What a run over many files comes to: verdicts, a total and breakdowns, for every report.

A billing office acts on a batch, not on one file: which files are ready to
send, which rules cost the most, which payer or billing provider the
rejections pile up at. ``Batch`` watches the same event stream as a report
writer and keeps one small bucket per rule, payer, billing provider and file
(never per claim), so its memory does not grow with the number of claims.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TextIO

from scrubber.emit.sinks import FileEnd, Sink
from scrubber.model import ClaimRecord, Problem
from scrubber.rules.findings import Notice, ScrubbedClaim, Severity

_COUNTS = ("claims", "accepted", "rejected", "warnings", "envelope_problems", "file_problems")
_CHARGES = ("charges_accepted", "charges_rejected")
NO_PAYER = ("(no payer named)", "")
UMBRELLA = "ig-999"  # the finding of every held claim: the total of its causes, not one


def plural(n: int, word: str) -> str:
    """"1 claim", "2 claims"."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def verdict(summary: dict[str, Any]) -> str:
    """"not an 837" (nothing could be read), "fix N claims" or "ready to send"."""
    if summary.get("file_problems"):
        return "not an 837"
    if summary.get("rejected") or summary.get("envelope_problems"):
        n = summary.get("rejected", 0)
        return f"fix {plural(n, 'claim')}" if n else "fix the envelope"
    return "ready to send"


def payer_of(record: ClaimRecord) -> tuple[str, str]:
    """(name, id) of the claim's payer (2010BB NM1*PR); NO_PAYER when the file names none."""
    subscriber = record.subscriber
    payer = subscriber.payer if subscriber is not None else None
    return (payer.name, payer.id) if payer is not None else NO_PAYER


def provider_of(record: ClaimRecord) -> tuple[str, str]:
    """(name, NPI) of the billing provider (2010AA)."""
    provider = record.billing_provider
    if provider is None:
        return ("(no billing provider)", "")
    name = f"{provider.name}, {provider.first_name}" if provider.first_name else provider.name
    return (name, provider.npi)


def money(amount: Decimal) -> str:
    """An amount as people read it: thousands separated, two decimals ("431,317.36").

    Only where people read it (text and HTML); machine formats (JSON, CSV) keep
    "431317.36".
    """
    return f"{amount:,.2f}"


def charge_of(record: ClaimRecord) -> Decimal:
    return record.claim.charge or Decimal(0)


@dataclass(slots=True)
class Bucket:
    """Claims, rejections and the charges at risk of one rule, payer, provider or file."""

    claims: int = 0  # claims counted here (for a rule: claims it found something on)
    rejected: int = 0  # of them rejected (for a rule: rejected by this rule)
    warned: int = 0  # of them with a warning (for a rule: warned about by this rule)
    findings: int = 0  # findings (for a rule: its own findings)
    at_risk: Decimal = field(default_factory=Decimal)  # charges of the rejected claims

    def as_dict(self) -> dict[str, Any]:
        return {"claims": self.claims, "rejected": self.rejected, "warned": self.warned,
                "findings": self.findings, "at_risk": f"{self.at_risk:.2f}"}


def _claim_into(bucket: Bucket, claim: ScrubbedClaim) -> None:
    bucket.claims += 1
    bucket.findings += len(claim.findings)
    if claim.rejected:
        bucket.rejected += 1
        bucket.at_risk += charge_of(claim.record)
    if any(f.severity is Severity.WARN for f in claim.findings):
        bucket.warned += 1


class Batch(Sink):
    """Totals and breakdowns over every file of a run: a sink fed what a report is fed.

    A report keeps one and hands it each call it gets; then ``total()``, ``files``
    (name, summary, verdict), ``not_scrubbed`` (name, reason), ``notices``, and the
    buckets ``by_rule``, ``by_payer``, ``by_provider``.
    """

    def __init__(self) -> None:
        self.by_rule: dict[str, Bucket] = {}
        self.by_payer: dict[tuple[str, str], Bucket] = {}
        self.by_provider: dict[tuple[str, str], Bucket] = {}
        self.files: list[tuple[str, dict[str, Any], str]] = []
        self.not_scrubbed: list[tuple[str, str]] = []
        self.notices: list[Notice] = []
        self._name = ""
        self._fatal = ""

    def begin_file(self, name: str) -> None:
        self._name = name
        self._fatal = ""

    def event(self, event: Any) -> None:
        cls = event.__class__
        if cls is ScrubbedClaim:
            record = event.record
            _claim_into(self.by_payer.setdefault(payer_of(record), Bucket()), event)
            _claim_into(self.by_provider.setdefault(provider_of(record), Bucket()), event)
            for rule, severities in _rules_of(event).items():
                bucket = self.by_rule.setdefault(rule, Bucket())
                bucket.claims += 1
                bucket.findings += len(severities)  # one per finding, not per kind
                if Severity.REJECT in severities:
                    bucket.rejected += 1
                    bucket.at_risk += charge_of(record)
                if Severity.WARN in severities:
                    bucket.warned += 1
            for cause in event.causes:  # a held claim: its money goes to the root causes
                bucket = self.by_rule.setdefault(cause, Bucket())
                bucket.claims += 1
                bucket.rejected += 1
                bucket.at_risk += charge_of(record)
        elif cls is Problem:
            if event.fatal:
                self._fatal = self._fatal or event.message
            bucket = self.by_rule.setdefault(event.code, Bucket())
            bucket.findings += 1

    def end_file(self, end: FileEnd) -> None:
        summary = end.summary
        self.files.append((self._name, summary, verdict(summary)))
        if summary.get("file_problems"):
            self.not_scrubbed.append((self._name, self._fatal or "not an 837"))

    def notice(self, notice: Notice) -> None:
        self.notices.append(notice)

    def file_bucket(self, summary: dict[str, Any]) -> Bucket:
        """A file's summary as a bucket, to lay beside the others."""
        return Bucket(claims=summary["claims"], rejected=summary["rejected"],
                      warned=summary["warnings"],
                      at_risk=Decimal(summary["charges_rejected"]))

    def total(self) -> dict[str, Any]:
        """Every file's summary added up, with the number of files and the run's verdict."""
        total: dict[str, Any] = {key: 0 for key in _COUNTS}
        charges = {key: Decimal(0) for key in _CHARGES}
        for _, summary, _ in self.files:
            for key in _COUNTS:
                total[key] += summary.get(key, 0)
            for key in _CHARGES:
                charges[key] += Decimal(summary.get(key, "0"))
        total.update({key: f"{value:.2f}" for key, value in charges.items()})
        total["files"] = len(self.files)
        total["files_not_scrubbed"] = len(self.not_scrubbed)
        total["verdict"] = self.verdict(total)
        return total

    def verdict(self, total: dict[str, Any]) -> str:
        """The run's verdict: "ready to send", or what is in the way, file problems first."""
        words = []
        if self.not_scrubbed:
            words.append(f"{plural(len(self.not_scrubbed), 'file')} not scrubbed")
        to_fix = sum(1 for _, summary, said in self.files if said.startswith("fix"))
        if to_fix:
            words.append(f"fix {plural(to_fix, 'file')} "
                         f"({plural(total['rejected'], 'claim')} rejected)")
        return "; ".join(words) or "ready to send"

    def breakdowns(self) -> dict[str, Any]:
        """The buckets as the JSON report's total lays them out, largest risk first."""
        return {
            "by_rule": [{"rule": rule, **bucket.as_dict(),
                         **({"total_of_causes": True} if rule == UMBRELLA else {})}
                        for rule, bucket in by_cause(self.by_rule)],
            "by_payer": [{"name": name, "id": ident, **bucket.as_dict()}
                         for (name, ident), bucket in ranked(self.by_payer)],
            "by_billing_provider": [{"name": name, "npi": npi, **bucket.as_dict()}
                                    for (name, npi), bucket in ranked(self.by_provider)],
            "not_scrubbed": [{"path": name, "reason": reason}
                             for name, reason in self.not_scrubbed],
            "notices": [notice.as_dict() for notice in self.notices],
        }


def ranked(buckets: dict[Any, Bucket]) -> list[tuple[Any, Bucket]]:
    """Buckets by charges at risk, then rejections, then findings (largest first), then key."""
    return sorted(buckets.items(), key=lambda item: (-item[1].at_risk, -item[1].rejected,
                                                     -item[1].findings, str(item[0])))


def by_cause(by_rule: dict[str, Bucket]) -> list[tuple[str, Bucket]]:
    """The rules and problem codes ranked by money at risk, the umbrella ``ig-999`` last.

    A claim held because its set (or interchange) was rejected counts, with its
    charge, under each error that caused the hold (``ScrubbedClaim.causes``);
    ``ig-999`` holds every such claim once, so it is their total, not a cause,
    and never ranks among them.
    """
    rows = ranked(by_rule)
    return [row for row in rows if row[0] != UMBRELLA] + \
        [row for row in rows if row[0] == UMBRELLA]


def _rules_of(claim: ScrubbedClaim) -> dict[str, list[Severity]]:
    """The severity of each finding of a claim, by rule."""
    rules: dict[str, list[Severity]] = {}
    for finding in claim.findings:
        rules.setdefault(finding.rule, []).append(finding.severity)
    return rules


class StatisticsSink(Sink):
    """``--statistics``: how often each rule (and problem code) fired, written at close.

    Like a linter's statistics: count, rule id, claims it rejected and the
    charges they hold back, most costly first; nothing when nothing fired.
    """

    def __init__(self, out: TextIO):
        self.out = out
        self.batch = Batch()

    def begin_file(self, name: str) -> None:
        self.batch.begin_file(name)

    def event(self, event: Any) -> None:
        self.batch.event(event)

    def end_file(self, end: FileEnd) -> None:
        self.batch.end_file(end)

    def close(self) -> None:
        self.out.write("".join(statistics_lines(self.batch)))
        self.out.flush()


def statistics_lines(batch: Batch) -> list[str]:
    """One line per rule: findings, id, claims rejected, charges at risk."""
    rows = by_cause(batch.by_rule)
    if not rows:
        return []
    width = max(len(rule) for rule, _ in rows)
    count = max(len(str(bucket.findings)) for _, bucket in rows)
    return [f"{bucket.findings:>{count}}  {rule:<{width}}  {plural(bucket.rejected, 'claim')} "
            f"{'held in all' if rule == UMBRELLA else 'rejected'}, "
            f"{money(bucket.at_risk)} at risk\n" for rule, bucket in rows]
