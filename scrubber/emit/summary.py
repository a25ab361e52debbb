"""Annotated rejection summaries a biller can fix a batch from: text and HTML.

Both stream: accepted claims are only counted; a rejected claim (or one with
warnings) is written out with each finding, the segment it points at with the
offending element marked, and what to do. The HTML page is self-contained (no
external assets) and built with lxml, so everything in it is escaped; its claim
rows and details are serialized as they come and kept in a temporary file until
the counts at the top of the page are known, so memory stays flat.
"""

from __future__ import annotations

import shutil
import tempfile
from decimal import Decimal
from typing import Any, TextIO

from lxml import etree
from lxml.html import builder as E

from scrubber.emit.json_report import mask
from scrubber.emit.ta1 import TA1_CODES
from scrubber.emit.values import shown
from scrubber.model import Problem
from scrubber.rules.findings import Finding, ScrubbedClaim, Severity

CONTEXT = 3  # segments shown either side of a finding's segment in HTML


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

    def add(self, event: object) -> None:
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
        return sum(1 for p in self.problems if not p.fatal)

    def summary(self) -> dict:
        return {
            "claims": self.claims,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "warnings": self.warnings,
            "envelope_problems": self.envelope_errors,
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


class TextSummary:
    """The annotated summary as plain text, coloured when ``color`` (a terminal).

    ``verbose`` lists accepted claims without findings too, one line each.
    """

    def __init__(self, out: TextIO, *, show_phi: bool = False, color: bool = False,
                 verbose: bool = False):
        self.out = out
        self.show_phi = show_phi
        self.color = color
        self.verbose = verbose

    def _c(self, code: str, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.color else text

    def begin_file(self, path: str) -> None:
        self.path = path
        self.tally = Tally()
        self.out.write(self._c("1", shown(path)) + "\n")

    def event(self, event: Any) -> None:
        cls = event.__class__
        self.tally.add(event)
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
        for finding in event.findings:
            self._finding(finding, separator)

    def _finding(self, finding: Finding, separator: str) -> None:
        w = self.out.write
        colour = {"reject": "31", "warn": "33", "info": "36"}[finding.severity.value]
        line = f" (service line {finding.line_number})" if finding.line_number else ""
        w(f"    {self._c(colour, finding.severity.value.upper())} {finding.rule}{line}: "
          f"{shown(finding.message)}\n")
        if finding.segment_text:
            before, marked, after = (shown(part) for part in split_marked(
                finding.segment_text, separator, finding.element))
            where = f"line {finding.location.line}" if finding.location else "segment"
            prefix = f"      {where}: "
            if marked:
                w(f"{prefix}{before}{self._c('7', '[' + marked + ']')}{after}\n")
            else:
                w(f"{prefix}{shown(finding.segment_text)}\n")
        if finding.fix:
            w(f"      what to do: {shown(finding.fix)}\n")

    def end_file(self, summary: dict | None = None) -> None:
        w = self.out.write
        t = self.tally
        for problem in t.problems:
            where = f"line {problem.location.line}" if problem.location else "file"
            label = "999" if problem.code.startswith("ig-") else "ENVELOPE"
            w(f"  {self._c('31', label)} [{problem.code}] {where}: "
              f"{_problem_words(problem)}\n")
            if problem.segment_text:
                w(f"      {shown(problem.segment_text)}\n")
        w(f"  {t.claims} claim(s): {t.accepted} accepted ({t.charges_accepted:.2f}), "
          f"{t.rejected} rejected ({t.charges_rejected:.2f}), {t.warnings} with warnings; "
          f"{t.envelope_errors} envelope problem(s)\n")

    def close(self) -> None:
        self.out.flush()


_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em;
text-align:left;vertical-align:top}th{background:#f4f4f4}
.reject{color:#b00020;font-weight:bold}.warn{color:#9a6700}.info{color:#0a5f8a}
pre{background:#f8f8f8;padding:.5em;margin:.3em 0}mark{background:#ffd54f}
.here{background:#fff3cd}
"""


_ROWS, _DETAILS = "scrubber-claim-rows", "scrubber-claim-details"


def _html(element) -> str:
    return etree.tostring(element, encoding="unicode", method="html")


class HtmlSummary:
    """One self-contained HTML page per input: counts, rejected claims, findings in context."""

    def __init__(self, out: TextIO, *, show_phi: bool = False, color: bool = False):
        self.out = out
        self.show_phi = show_phi
        self.pages = 0

    def begin_file(self, path: str) -> None:
        self.path = path
        self.tally = Tally()
        self.claims = 0
        # serialized rows and details, on disk (owner-only, unlinked) until the page is written
        self.rows = tempfile.TemporaryFile("w+", encoding="utf-8")
        self.details = tempfile.TemporaryFile("w+", encoding="utf-8")

    def event(self, event: Any) -> None:
        cls = event.__class__
        self.tally.add(event)
        if cls is ScrubbedClaim and (event.rejected or any(f.severity is Severity.WARN
                                                           for f in event.findings)):
            self._claim(event)

    def _claim(self, event: ScrubbedClaim) -> None:
        claim = event.record.claim
        provider = event.record.billing_provider
        self.claims += 1
        anchor = f"claim-{self.claims}"
        status = "rejected" if event.rejected else "accepted with warnings"
        claim_id = shown(claim.id)
        self.rows.write(_html(E.TR(
            E.TD(E.A(claim_id, href=f"#{anchor}")), E.TD(status),
            E.TD(shown(claim.charge_text)), E.TD(_patient(event, self.show_phi)),
            E.TD(shown(provider.npi) if provider else "-"),
            E.TD(", ".join(sorted({f.rule for f in event.findings}))))))
        separator = event.record.interchange.delimiters.element
        parts = [E.H3(f"Claim {claim_id} ({status})", id=anchor)]
        for finding in event.findings:
            line = f", service line {finding.line_number}" if finding.line_number else ""
            parts.append(E.P(E.SPAN(finding.severity.value.upper(),
                                    E.CLASS(finding.severity.value)),
                             f" {finding.rule}{line}: {shown(finding.message)}"))
            parts.append(self._context(event, finding, separator))
            if finding.fix:
                parts.append(E.P(E.STRONG("What to do: "), shown(finding.fix)))
        self.details.write(_html(E.DIV(*parts, E.CLASS("claim"))))

    @staticmethod
    def _context(event: ScrubbedClaim, finding: Finding, separator: str):
        segments = event.record.claim.segments
        at = next((i for i, seg in enumerate(segments)
                   if finding.location is not None and seg.ordinal == finding.location.segment),
                  None)
        pre = E.PRE()
        if at is None:
            pre.text = shown(finding.segment_text or "")
            return pre
        for seg in segments[max(0, at - CONTEXT): at + CONTEXT + 1]:
            text = separator.join(seg.elements)
            row = E.SPAN()
            if seg.ordinal == finding.location.segment:
                row.set("class", "here")
                before, marked, after = (shown(part) for part in split_marked(
                    text, separator, finding.element))
                row.text = f"{seg.line:>6}  {before}"
                if marked:
                    highlight = E.MARK(marked)
                    highlight.tail = after
                    row.append(highlight)
            else:
                row.text = f"{seg.line:>6}  {shown(text)}"
            row.tail = "\n"
            pre.append(row)
        return pre

    def end_file(self, summary: dict | None = None) -> None:
        t = self.tally
        counts = E.TABLE(
            E.TR(E.TH("claims"), E.TD(str(t.claims))),
            E.TR(E.TH("accepted"), E.TD(f"{t.accepted} ({t.charges_accepted:.2f})")),
            E.TR(E.TH("rejected"), E.TD(f"{t.rejected} ({t.charges_rejected:.2f})")),
            E.TR(E.TH("with warnings"), E.TD(str(t.warnings))),
            E.TR(E.TH("envelope problems"), E.TD(str(t.envelope_errors))))
        body = [E.H1(f"Scrub summary: {shown(self.path)}"), counts]
        if t.problems:
            body.append(E.H2("Envelope and implementation-guide (999) problems"))
            body.append(E.UL(*[E.LI(f"line {p.location.line if p.location else '-'}: "
                                    f"[{p.code}] {_problem_words(p)}") for p in t.problems]))
        body.append(E.H2("Claims with findings"))
        body.append(E.TABLE(E.TR(*[E.TH(h) for h in ("claim", "status", "charge", "patient",
                                                        "billing NPI", "rules")]),
                            E.TR(id=_ROWS), E.CLASS("claims")))
        body.append(E.DIV(id=_DETAILS))
        page = E.HTML(E.HEAD(E.META(charset="utf-8"), E.TITLE(f"Scrub summary: {shown(self.path)}"),
                             E.STYLE(_CSS)), E.BODY(*body))
        # the page around the placeholders, with the spooled rows and details in their place
        text = _html(page)
        before, rest = text.split(f'<tr id="{_ROWS}"></tr>', 1)
        middle, after = rest.split(f'<div id="{_DETAILS}"></div>', 1)
        self.out.write("<!DOCTYPE html>\n")
        self.out.write(before)
        for spool, tail in ((self.rows, middle), (self.details, after)):
            spool.seek(0)
            shutil.copyfileobj(spool, self.out)
            spool.close()
            self.out.write(tail)
        self.out.write("\n")
        self.pages += 1

    def close(self) -> None:
        self.out.flush()
