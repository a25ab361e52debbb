"""The plain-text listing of what was read: for a person at a terminal."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, TextIO

from scrubber.emit.json_report import mask
from scrubber.rules.findings import ScrubbedClaim
from scrubber.model import (
    ClaimRecord,
    EnvelopeEnd,
    FunctionalGroup,
    Interchange,
    Problem,
    Transaction,
)


class TextWriter:
    """Writes one indented line per envelope and claim, then the problems."""

    def __init__(self, out: TextIO, *, show_phi: bool = False, claims: bool = True):
        self.out = out
        self.show_phi = show_phi
        self.list_claims = claims
        self._reset()

    def _reset(self) -> None:
        self.claims = self.lines = 0
        self.charges = Decimal(0)
        self.problems: list[Problem] = []
        self._tx_claims = self._tx_lines = 0

    def begin_file(self, path: str) -> None:
        self._reset()
        self.out.write(f"{path}\n")

    def event(self, event: Any) -> None:
        w = self.out.write
        cls = event.__class__
        findings = ()
        if cls is ScrubbedClaim:
            findings = event.findings
            event = event.record
            cls = ClaimRecord
        if cls is ClaimRecord:
            claim = event.claim
            self.claims += 1
            self.lines += len(claim.lines)
            self._tx_claims += 1
            self._tx_lines += len(claim.lines)
            if claim.charge is not None:
                self.charges += claim.charge
            if self.list_claims:
                patient = event.patient
                name = ""
                if patient is not None:
                    last, first = patient.last_name, patient.first_name
                    if not self.show_phi:
                        last, first = mask(last), mask(first)
                    name = f"{last}, {first}"
                npi = event.billing_provider.npi if event.billing_provider else "-"
                w(f"        claim {claim.id}  charge {claim.charge_text}  "
                  f"{len(claim.lines)} line(s)  patient {name or '-'}  billing NPI {npi}  "
                  f"(line {claim.location.line})"
                  f"{'  REJECTED' if any(f.severity.value == 'reject' for f in findings) else ''}\n")
                for finding in findings:
                    where = f"line {finding.location.line}" if finding.location else "claim"
                    w(f"          {finding.severity.value.upper():6} [{finding.rule}] "
                      f"{finding.message} ({where}: {finding.segment_text})\n")
                    if finding.fix:
                        w(f"                 fix: {finding.fix}\n")
        elif cls is Problem:
            self.problems.append(event)
        elif cls is Interchange:
            w(f"  interchange {event.control_number}  {event.sender_id} -> "
              f"{event.receiver_id}  {event.date or '-'}  "
              f"{'production' if event.usage == 'P' else 'test' if event.usage == 'T' else event.usage}\n")
        elif cls is FunctionalGroup:
            w(f"    group {event.control_number}  {event.functional_id}  {event.version}\n")
        elif cls is Transaction:
            self._tx_claims = self._tx_lines = 0
            w(f"      transaction {event.control_number}  {event.kind or 'not read: ' + event.set_id}"
              f"  {event.version}\n")
        elif cls is EnvelopeEnd and event.envelope == "transaction":
            w(f"      end of transaction {event.control_number}: {self._tx_claims} claim(s), "
              f"{self._tx_lines} line(s)\n")

    def end_file(self, summary: dict | None = None) -> None:
        w = self.out.write
        if summary:
            w(f"  claims {summary['claims']}: accepted {summary['accepted']} "
              f"({summary['charges_accepted']}), rejected {summary['rejected']} "
              f"({summary['charges_rejected']}), with warnings {summary['warnings']}\n")
        if self.problems:
            w("  problems:\n")
            for problem in self.problems:
                where = f"line {problem.location.line}" if problem.location else "file"
                w(f"    {where}: [{problem.code}] {problem.message}\n")
                if problem.segment_text:
                    w(f"        {problem.segment_text}\n")
        w(f"  read {self.claims} claim(s), {self.lines} line(s), total charges "
          f"{self.charges:.2f}; {len(self.problems)} problem(s)\n")

    def close(self) -> None:
        self.out.flush()
