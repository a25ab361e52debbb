"""The CSV report: one row per finding, for the spreadsheet a billing office works in.

Columns: file, claim, line (service line), rule, severity, status code (277CA),
amount (the service line's charge, or the claim's for a claim-level finding),
message, fix, then patient (masked as in the text report unless show_phi),
payer and file_line (the line of the file the finding points at). Envelope and
file problems are rows too (no claim; the rule column holds the problem code;
severity "reject", or "not scrubbed" for a file that could not be read), so
no file is ever missing from the sheet. A cell that a spreadsheet would run as a formula
(=, +, -, @ first) is written with a leading apostrophe.
"""

from __future__ import annotations

import csv
from typing import Any, TextIO

from scrubber.emit.batch import payer_of
from scrubber.emit.sinks import Sink
from scrubber.emit.summary import _patient, _problem_words
from scrubber.model import Problem
from scrubber.rules.findings import ScrubbedClaim

COLUMNS = ("file", "claim", "line", "rule", "severity", "status_code", "amount", "message",
           "fix", "patient", "payer", "file_line")
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def cell(value: object) -> str:
    """A value as a cell a spreadsheet shows as text, never runs."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA) else text


class CsvReport(Sink):
    """Writes the header once, then a row per finding and per problem as the files stream."""

    def __init__(self, out: TextIO, *, show_phi: bool = False):
        self.out = out
        self.show_phi = show_phi
        self.writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180, as spreadsheets read
        self.writer.writerow(COLUMNS)
        self.path = ""

    def begin_file(self, path: str) -> None:
        self.path = path

    def _row(self, *values: object) -> None:
        self.writer.writerow([cell(v) for v in values])

    def event(self, event: Any) -> None:
        cls = event.__class__
        if cls is ScrubbedClaim:
            claim = event.record.claim
            lines = {line.number: line for line in claim.lines}
            patient = _patient(event, self.show_phi)
            name, ident = payer_of(event.record)
            payer = f"{name} ({ident})" if ident else name
            for finding in event.findings:
                line = lines.get(finding.line_number) if finding.line_number else None
                amount = line.charge_text if line is not None else claim.charge_text
                self._row(self.path, claim.id, finding.line_number or "", finding.rule,
                          finding.severity.value,
                          ":".join(finding.status) if finding.status else "", amount,
                          finding.message, finding.fix, patient, payer,
                          finding.location.line if finding.location else "")
        elif cls is Problem:
            self._row(self.path, "", "", event.code, "not scrubbed" if event.fatal else "reject",
                      "", "", _problem_words(event), "", "", "",
                      event.location.line if event.location else "")

    def close(self) -> None:
        self.out.flush()
