"""Annotated rejection summaries a biller can fix a batch from: the text report.

It streams: accepted claims are only counted; a rejected claim (or one with
warnings) is written out with each finding, the segment it points at with the
offending element marked, and what to do. The HTML page (scrubber.emit.html_report)
shares the helpers here.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any, TextIO

from scrubber.emit.batch import UMBRELLA, Batch, by_cause, money, plural, verdict
from scrubber.emit.phi import mask, mask_segment, quoted
from scrubber.emit.sinks import FileEnd, RunDetails, Sink
from scrubber.emit.ta1 import TA1_CODES
from scrubber.emit.values import shown
from scrubber.model import Location, Problem
from scrubber.problems import problem_code
from scrubber.rules.findings import Finding, Notice, ScrubbedClaim, Severity

CONTEXT = 3  # segments shown either side of a finding's segment in HTML
CAUSES_LISTED = 12  # root causes the text report ranks at its end


def element_index(element: str | None) -> int | None:
    """"SV104" -> 4 (the element position); None when not given."""
    if not element:
        return None
    digits = element[-2:]
    return int(digits) if digits.isdigit() else None


def split_marked(segment_text: str, separator: str, element: str | None
                 ) -> tuple[str, str, str]:
    """(before, offending element, after) of a segment, for marking that element."""
    index = element_index(element)
    parts = segment_text.split(separator)
    if index is None or index >= len(parts) or not segment_text:
        return segment_text, "", ""
    before = separator.join(parts[:index]) + separator
    after = separator + separator.join(parts[index + 1:]) if index + 1 < len(parts) else ""
    return before, parts[index], after


class Tally:
    """Per-file counts: claims, charges, warnings, envelope problems (and why unreadable)."""

    def __init__(self) -> None:
        self.claims = self.accepted = self.rejected = self.warnings = 0
        self.charges_accepted = Decimal(0)
        self.charges_rejected = Decimal(0)
        self.problems: list[Problem] = []  # envelope problems, not fatal ones
        self.unreadable = False
        self.reason = ""

    def add(self, event: Any) -> None:
        cls = event.__class__
        if cls is ScrubbedClaim:
            self.claims += 1
            charge = event.record.claim.charge or Decimal(0)
            if event.rejected:
                self.rejected += 1
                self.charges_rejected += charge
            else:
                self.accepted += 1
                self.charges_accepted += charge
            if any(f.severity is Severity.WARN for f in event.findings):
                self.warnings += 1
        elif cls is Problem:
            if event.fatal:
                self.unreadable, self.reason = True, event.message
            self.problems.append(event)

    @property
    def envelope_errors(self) -> int:
        """The envelope problems to fix; none in a file not read at all (an 835's unread set
        is said, but the file is not an 837 to fix)."""
        if self.unreadable:
            return 0
        return sum(1 for p in self.problems if not p.fatal)

    def summary(self) -> dict:
        return {
            "claims": self.claims,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "warnings": self.warnings,
            "envelope_problems": self.envelope_errors,
            "file_problems": sum(1 for p in self.problems if p.fatal),  # unreadable: 1
            "charges_accepted": f"{self.charges_accepted:.2f}",
            "charges_rejected": f"{self.charges_rejected:.2f}",
        }


def _patient(event: ScrubbedClaim, show_phi: bool) -> str:
    patient = event.record.patient
    if patient is None:
        return "-"
    last, first = patient.last_name, patient.first_name
    if not show_phi:
        last, first = mask(last), mask(first)
    return shown(f"{last}, {first}")


def _problem_words(problem: Problem) -> str:
    words = shown(problem.message)
    if problem.code in TA1_CODES:
        ack, note, _ = TA1_CODES[problem.code]
        verdict = "rejected" if ack == "R" else "accepted with errors"
        words += f" (the interchange is {verdict} with a TA1, note {note})"
    return words


_WEIGHT = {Severity.REJECT: 0, Severity.WARN: 1, Severity.INFO: 2}


def rejections_first(findings: Iterable[Finding]) -> list[Finding]:
    """Findings with the rejections first, then warnings, then notes; otherwise as found."""
    return sorted(findings, key=lambda f: _WEIGHT[f.severity])


def in_line_order(problems: list[Problem]) -> list[Problem]:
    """Problems by the place they point at (those without a place first), as a reader reads."""
    return sorted(problems, key=lambda p: (p.location.line, p.location.offset) if p.location
                  else (0, -1))


def place(location: Location) -> str:
    """Where a segment is, for people: "line 24"; on a file whose segments share one line
    (no line breaks), "segment 48 (byte 1234)", since every place there is "line 1"."""
    if location.line == 1 and location.offset > 0:
        return f"segment {location.segment} (byte {location.offset})"
    return f"line {location.line}"


class TextSummary(Sink):
    """The annotated summary as plain text, coloured when ``color`` (a terminal).

    ``verbose`` lists accepted claims without findings too, one line each.
    """

    def __init__(self, out: TextIO, *, show_phi: bool = False, color: bool = False,
                 verbose: bool = False):
        self.out = out
        self.show_phi = show_phi
        self.color = color
        self.verbose = verbose
        self.batch = Batch()  # the run's total, written at close when there are several files
        self.run: RunDetails | None = None  # what the run was made with, said at the end

    def _c(self, code: str, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.color else text

    def _mark(self, element: str) -> str:
        """The offending element: reverse video on a colour terminal, else in brackets.

        Never both, so a segment copied from the terminal carries no brackets.
        """
        return self._c("7", element) if self.color else f"[{element}]"

    def begin_file(self, path: str) -> None:
        self.path = path
        self.tally = Tally()
        self.batch.begin_file(path)
        self.out.write(self._c("1", shown(path)) + "\n")

    def event(self, event: Any) -> None:
        cls = event.__class__
        self.tally.add(event)
        self.batch.event(event)
        if cls is ScrubbedClaim and (self.verbose or any(f.severity is not Severity.INFO
                                                         for f in event.findings)):
            self._claim(event)

    def _claim(self, event: ScrubbedClaim) -> None:
        w = self.out.write
        claim = event.record.claim
        provider = event.record.billing_provider
        status = self._c("31;1", "REJECTED") if event.rejected else self._c("33", "accepted")
        w(f"  claim {shown(claim.id)}  {status}  charge {shown(claim.charge_text)}  patient "
          f"{_patient(event, self.show_phi)}  billing NPI "
          f"{shown(provider.npi) if provider else '-'}\n")
        separator = event.record.interchange.delimiters.element
        for finding in rejections_first(event.findings):
            self._finding(event, finding, separator)

    def _finding(self, event: ScrubbedClaim, finding: Finding, separator: str) -> None:
        w = self.out.write
        colour = {"reject": "31", "warn": "33", "info": "36"}[finding.severity.value]
        line = f" (service line {finding.line_number})" if finding.line_number else ""
        w(f"    {self._c(colour, finding.severity.value.upper())} {finding.rule}{line}: "
          f"{shown(finding.message)}\n")
        if finding.segment_text:
            text = finding.segment_text if self.show_phi else quoted(event, finding)
            before, marked, after = (shown(part) for part in split_marked(
                text, separator, finding.element))
            where = place(finding.location) if finding.location else "segment"
            prefix = f"      {where}: "
            if marked:
                w(f"{prefix}{before}{self._mark(marked)}{after}\n")
            else:
                w(f"{prefix}{shown(text)}\n")
        if finding.fix:
            w(f"      what to do: {shown(finding.fix)}\n")

    def end_file(self, end: FileEnd) -> None:
        w = self.out.write
        t = self.tally
        summary = end.summary
        self.batch.end_file(end)
        told: set[str] = set()  # the problem codes whose fix was written
        for problem in in_line_order(t.problems):
            where = place(problem.location) if problem.location else "file"
            label = ("FILE" if problem.fatal else "999" if problem.code.startswith("ig-")
                     else "ENVELOPE")
            w(f"  {self._c('31', label)} [{problem.code}] {where}: "
              f"{_problem_words(problem)}\n")
            if problem.segment_text:
                text = problem.segment_text if self.show_phi else \
                    mask_segment(problem.segment_text)
                w(f"      {shown(text)}\n")
            code = problem_code(problem.code)
            if code is not None and code.family == "ig" and code.id not in told:
                told.add(code.id)  # once per kind of error and file: a set may list 1000
                w(f"      what to do: {code.fix} (`scrub rules {code.id}`)\n")
        if t.unreadable and not t.claims:
            w("  not scrubbed: 1 file problem\n")
        else:
            w(f"  {t.claims} claim(s): {t.accepted} accepted ({money(t.charges_accepted)}), "
              f"{t.rejected} rejected ({money(t.charges_rejected)}), {t.warnings} with "
              f"warnings; {t.envelope_errors} envelope problem(s)\n")
        w(f"  verdict: {self._verdict(verdict(summary))}\n")

    def _verdict(self, said: str) -> str:
        return self._c("32" if said == "ready to send" else "31;1", said)

    def notice(self, notice: Notice) -> None:
        self.batch.notice(notice)

    def run_details(self, run: RunDetails) -> None:
        self.run = run

    def close(self) -> None:
        if len(self.batch.files) > 1:
            self._total()
        self._causes()
        if self.run is not None:
            self.out.write(f"{self._c('36', 'RUN')} {shown(self.run.words())}\n")
        for notice in self.batch.notices:
            claims = f" ({plural(notice.claims, 'claim')})" if notice.claims else ""
            self.out.write(f"{self._c('36', 'NOTICE')} {shown(notice.message)}{claims}\n")
        self.out.flush()

    def _causes(self) -> None:
        """The root causes of the rejections, dearest first: what fixing each would free.

        A claim held because a payer rejects its set or interchange counts under
        the errors that caused it; ``ig-999`` follows as their total only.
        """
        rows = [(rule, b) for rule, b in by_cause(self.batch.by_rule) if b.rejected]
        if len(rows) < 2:  # one reason: the claims above say it all
            return
        w = self.out.write
        w(self._c("1", "rejections by root cause (charges at risk)") + "\n")
        width = max(len(rule) for rule, _ in rows)
        causes = [(rule, b) for rule, b in rows if rule != UMBRELLA]
        for rule, b in causes[:CAUSES_LISTED]:
            w(f"  {rule:<{width}}  {plural(b.rejected, 'claim')}, {money(b.at_risk)}\n")
        if len(causes) > CAUSES_LISTED:
            w(f"  ... {len(causes) - CAUSES_LISTED} more (--statistics lists them all)\n")
        for rule, b in rows[len(causes):]:
            w(f"  {rule:<{width}}  in all {plural(b.rejected, 'claim')} held, "
              f"{money(b.at_risk)} (counted above under their causes)\n")

    def _total(self) -> None:
        """The run added up, and every file that was not scrubbed, with why."""
        w = self.out.write
        total = self.batch.total()
        w(self._c("1", f"total: {plural(total['files'], 'file')}") + "\n")
        w(f"  {total['claims']} claim(s): {total['accepted']} accepted "
          f"({money(Decimal(total['charges_accepted']))}), {total['rejected']} rejected "
          f"({money(Decimal(total['charges_rejected']))}), {total['warnings']} with warnings; "
          f"{total['envelope_problems']} envelope problem(s)\n")
        for name, reason in self.batch.not_scrubbed:
            said = reason if name in reason else f"{name}: {reason}"
            w(f"  not scrubbed: {shown(said)}\n")
        w(f"  verdict: {self._verdict(total['verdict'])}\n")
