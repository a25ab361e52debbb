"""The CSV reports: a sheet per finding and a sheet per claim, for a billing office's spreadsheet.

The per-finding sheet (``--format csv``) has the columns file, claim, line
(service line), rule, severity, status code (277CA), line_charge, at_risk,
message, fix, then patient (masked as in the text report unless show_phi),
payer and file_line (the line of the file the finding points at). Its money
columns add up right in a spreadsheet: ``line_charge`` is the service line's
charge on the first finding of each line only, and ``at_risk`` is the claim's
charge on the first row of each rejected claim only, so the sum of ``at_risk``
is the report's charges rejected however many findings a claim has. Envelope
and file problems are rows too (no claim; the rule column holds the problem
code; severity "reject", or "not scrubbed" for a file that could not be read),
so no file is ever missing from the sheet.

The per-claim sheet (``ClaimSheet``: ``--csv-claims FILE``, or beside an
``--output`` file as ``NAME.claims.csv``) has one row per claim: file, claim,
billing NPI, payer, patient (masked), first and last date of service, claim
charge, status, the ids of what rejected or warned it (for a held claim, the
errors that caused the hold, then ig-999) and at_risk (its charge when
rejected, else 0.00). A file without claims gets one row saying why.

A cell that a spreadsheet would run as a formula (=, +, -, @ first) is written
with a leading apostrophe. With ``bom`` (``--csv-bom``) a sheet starts with a
UTF-8 byte-order mark, which Excel on Windows needs to read names with accents
right.
"""

from __future__ import annotations

import csv
from datetime import date
from typing import Any, TextIO

from scrubber.emit.batch import charge_of, payer_of
from scrubber.emit.sinks import FileEnd, Sink
from scrubber.emit.summary import _patient, _problem_words
from scrubber.model import ClaimRecord, Problem
from scrubber.rules.findings import ScrubbedClaim, Severity

COLUMNS = ("file", "claim", "line", "rule", "severity", "status_code", "line_charge", "at_risk",
           "message", "fix", "patient", "payer", "file_line")
CLAIM_COLUMNS = ("file", "claim", "billing_npi", "payer", "patient", "first_service_date",
                 "last_service_date", "claim_charge", "status", "rules", "at_risk")
_FORMULA = ("=", "+", "-", "@", "\t", "\r")
BOM = "\ufeff"


def cell(value: object) -> str:
    """A value as a cell a spreadsheet shows as text, never runs."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA) else text


class _Sheet(Sink):
    """A CSV sheet over ``out``: RFC 4180 rows, formulas defused, an optional BOM."""

    columns: tuple[str, ...] = ()

    def __init__(self, out: TextIO, *, show_phi: bool = False, bom: bool = False):
        self.out = out
        self.show_phi = show_phi
        if bom:
            out.write(BOM)
        self.writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180, as spreadsheets read
        self.writer.writerow(self.columns)
        self.path = ""

    def begin_file(self, path: str) -> None:
        self.path = path

    def _row(self, *values: object) -> None:
        self.writer.writerow([cell(v) for v in values])

    def close(self) -> None:
        self.out.flush()


def _payer(event: ScrubbedClaim) -> str:
    name, ident = payer_of(event.record)
    return f"{name} ({ident})" if ident else name


def _at_risk(event: ScrubbedClaim) -> str:
    return f"{charge_of(event.record):.2f}" if event.rejected else "0.00"


class CsvReport(_Sheet):
    """The per-finding sheet: a row per finding and per problem as the files stream."""

    columns = COLUMNS

    def event(self, event: Any) -> None:
        cls = event.__class__
        if cls is ScrubbedClaim:
            claim = event.record.claim
            lines = {line.number: line for line in claim.lines}
            patient = _patient(event, self.show_phi)
            payer = _payer(event)
            risk = _at_risk(event) if event.rejected else ""
            priced: set[int] = set()  # lines whose charge a row already carries
            for finding in event.findings:
                line = lines.get(finding.line_number) if finding.line_number else None
                charge = ""
                if line is not None and line.number not in priced:
                    priced.add(line.number or 0)
                    charge = line.charge_text
                self._row(self.path, claim.id, finding.line_number or "", finding.rule,
                          finding.severity.value,
                          ":".join(finding.status) if finding.status else "", charge, risk,
                          finding.message, finding.fix, patient, payer,
                          finding.location.line if finding.location else "")
                risk = ""  # the claim's charge is at risk once, on its first row
        elif cls is Problem:
            self._row(self.path, "", "", event.code, "not scrubbed" if event.fatal else "reject",
                      "", "", "", _problem_words(event), "", "", "",
                      event.location.line if event.location else "")


class ClaimSheet(_Sheet):
    """The per-claim sheet: one row per claim, its charge and its charge at risk once."""

    columns = CLAIM_COLUMNS

    def begin_file(self, path: str) -> None:
        self.path = path
        self.claims = 0
        self.fatal = ""

    def event(self, event: Any) -> None:
        cls = event.__class__
        if cls is ScrubbedClaim:
            self.claims += 1
            record = event.record
            provider = record.billing_provider
            first, last = service_dates(record)
            rules = [*event.causes, *dict.fromkeys(
                f.rule for f in event.findings if f.severity is not Severity.INFO)]
            self._row(self.path, record.claim.id, provider.npi if provider else "",
                      _payer(event), _patient(event, self.show_phi),
                      first.isoformat() if first else "", last.isoformat() if last else "",
                      f"{charge_of(record):.2f}", event.status, " ".join(rules),
                      _at_risk(event))
        elif cls is Problem and event.fatal:
            self.fatal = self.fatal or event.message

    def end_file(self, end: FileEnd) -> None:
        if not self.claims:  # every file has a row: say why this one has no claims
            said = "not scrubbed" if self.fatal else "no claims"
            self._row(self.path, "", "", "", "", "", "", "", said, "", "0.00")


def service_dates(record: ClaimRecord) -> tuple[date | None, date | None]:
    """The claim's first and last date of service: its lines' DTP*472, else its statement
    period (DTP*434, 837I)."""
    starts = [line.date_from for line in record.claim.lines if line.date_from]
    ends = [line.date_to or line.date_from for line in record.claim.lines if line.date_from]
    if not starts:
        period = record.claim.date("434")
        if period is None:
            return None, None
        return period.start, period.end
    return min(starts), max(d for d in ends if d is not None)
