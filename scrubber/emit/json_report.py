"""The JSON report: a stable contract, written as the claims stream past.

Shape (documented in docs/report.schema.json)::

    {"files": [{"path", "interchanges": [{..., "groups": [{..., "transactions":
        [{..., "claims": [...], "problems": [...]}], "problems": [...]}],
        "problems": [...]}], "problems": [...], "summary": {...}}]}

Claims are written one by one, so a file with millions of claims never sits
in memory; problems of an envelope are held until that envelope closes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from typing import Any, TextIO

from scrubber.emit.batch import Batch, payer_of, verdict
from scrubber.emit.phi import mask, mask_segment, quoted
from scrubber.emit.sinks import FileEnd, RunDetails, Sink
from scrubber.model import (
    ClaimRecord,
    EnvelopeEnd,
    FunctionalGroup,
    Interchange,
    Location,
    Problem,
    ServiceLine,
    Transaction,
)
from scrubber.rules.findings import Finding, Notice, ScrubbedClaim

_LEVELS = ("interchange", "group", "transaction")


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


def _location(location: Location) -> dict[str, int]:
    """``location._asdict()`` without its zip: a report makes one per line and claim."""
    return {"segment": location[0], "line": location[1], "offset": location[2]}


def line_to_dict(line: ServiceLine) -> dict[str, Any]:
    """A service line as the JSON contract lays it out."""
    return {
        "number": line.number,
        "procedure": line.procedure,
        "procedure_qualifier": line.procedure_qualifier,
        "modifiers": list(line.modifiers),
        "revenue_code": line.revenue_code or None,
        "charge": line.charge_text,
        "unit_basis": line.unit_basis,
        "units": line.units_text,
        "date_from": _iso(line.date_from),
        "date_to": _iso(line.date_to),
        "control_number": line.control_number or None,
        "diagnosis_pointers": list(line.diagnosis_pointers),
        "location": _location(line.location),
    }


def claim_to_dict(record: ClaimRecord, show_phi: bool = True) -> dict[str, Any]:
    """A claim as the JSON contract lays it out; PHI masked unless ``show_phi``."""
    claim = record.claim
    patient = record.patient
    if patient is None:
        person = None
    elif show_phi:
        person = {
            "last_name": patient.last_name,
            "first_name": patient.first_name,
            "member_id": patient.member_id,
            "birth_date": _iso(patient.birth_date),
            "is_subscriber": patient.is_subscriber,
        }
    else:
        person = {
            "last_name": mask(patient.last_name),
            "first_name": mask(patient.first_name),
            "member_id": mask(patient.member_id),
            "birth_date": None,
            "is_subscriber": patient.is_subscriber,
        }
    return {
        "id": claim.id,
        "kind": record.kind,
        "charge": claim.charge_text,
        "facility_code": claim.facility_code,
        "frequency": claim.frequency,
        "patient": person,
        "billing_provider_npi": record.billing_provider.npi if record.billing_provider else None,
        "payer": _payer(record),
        "payer_claim_number": claim.payer_claim_number or None,
        "lines": [line_to_dict(line) for line in claim.lines],
        "location": _location(claim.location),
    }


def _payer(record: ClaimRecord) -> dict[str, str] | None:
    """The claim's payer (2010BB NM1*PR) as {"name", "id"}; None when the file names none."""
    if record.subscriber is None or record.subscriber.payer is None:
        return None
    name, ident = payer_of(record)
    return {"name": name, "id": ident}


def _header(event: Any) -> dict[str, Any]:
    if isinstance(event, Interchange):
        return {
            "control_number": event.control_number,
            "sender": event.sender_id,
            "sender_qualifier": event.sender_qualifier,
            "receiver": event.receiver_id,
            "receiver_qualifier": event.receiver_qualifier,
            "date": _iso(event.date),
            "usage": event.usage,
            "version": event.version,
            "location": event.location._asdict(),
        }
    if isinstance(event, FunctionalGroup):
        return {
            "control_number": event.control_number,
            "functional_id": event.functional_id,
            "sender": event.sender,
            "receiver": event.receiver,
            "version": event.version,
            "location": event.location._asdict(),
        }
    assert isinstance(event, Transaction)
    return {
        "control_number": event.control_number,
        "type": event.kind or None,
        "set_id": event.set_id,
        "version": event.version,
        "bht_reference": event.reference,
        "bht_date": _iso(event.created),
        "submitter": event.submitter.name if event.submitter else None,
        "location": event.location._asdict(),
    }


def problem_to_dict(problem: Problem, show_phi: bool = True) -> dict[str, Any]:
    """A problem as the JSON contract lays it out; its quoted segment masked unless
    ``show_phi``."""
    data = problem.as_dict()
    if not show_phi and problem.segment_text:
        data["segment_text"] = mask_segment(problem.segment_text)
    return data


def finding_to_dict(event: ScrubbedClaim, finding: Finding, show_phi: bool = True
                    ) -> dict[str, Any]:
    """A finding as the JSON contract lays it out; its quoted segment masked unless
    ``show_phi``."""
    data = finding.as_dict()
    if not show_phi:
        data["segment_text"] = quoted(event, finding)
    return data


def scrubbed_json(event: ScrubbedClaim, show_phi: bool = True) -> str:
    """A scrubbed claim as the report's text for it (the claim, its status and findings)."""
    data = claim_to_dict(event.record, show_phi)
    data["status"] = event.status
    data["held"] = event.held  # rejected by the IG check: only a 999 answers it
    if event.held:
        data["held_by"] = list(event.causes)  # the errors that caused the hold
    data["findings"] = [finding_to_dict(event, finding, show_phi)
                        for finding in event.findings]
    return json.dumps(data)


@dataclass(frozen=True, slots=True)
class ClaimJson:
    """``scrubbed_json`` as a sink's renderer (scrubber.emit.sinks.ClaimRenderer): a
    ``--jobs`` worker writes its claims' JSON, the report only strings them together."""

    show_phi: bool

    @property
    def key(self) -> str:
        return "json" if self.show_phi else "json-masked"

    def __call__(self, claim: ScrubbedClaim) -> str:
        return scrubbed_json(claim, self.show_phi)


_CHILDREN = {"interchange": "groups", "group": "transactions", "transaction": "claims"}


class JsonWriter(Sink):
    """Writes the report for one or more files to a text stream, claim by claim."""

    def __init__(self, out: TextIO, *, show_phi: bool = True):
        self.out = out
        self.show_phi = show_phi
        self._files = 0
        self._stack: list[tuple[str, list[dict]]] = []  # open envelopes and their problems
        self._first: list[bool] = []  # whether the open array is still empty
        self._file_problems: list[dict] = []
        self._render = ClaimJson(show_phi)
        self.batch = Batch()  # the run's total and breakdowns, written at close
        self.run: RunDetails | None = None  # what the run was made with, written at close
        self.out.write('{"files": [')

    # -- low-level -----------------------------------------------------------
    def _item(self, text: str) -> None:
        if self._first[-1]:
            self._first[-1] = False
        else:
            self.out.write(", ")
        self.out.write(text)

    def _open(self, level: str, header: dict) -> None:
        body = json.dumps(header)[:-1]
        self._item(f'{body}, "{_CHILDREN[level]}": [')
        self._stack.append((level, []))
        self._first.append(True)

    def _close(self) -> None:
        level, problems = self._stack.pop()
        self._first.pop()
        self.out.write(f'], "problems": {json.dumps(problems)}}}')

    def _close_to(self, level: str) -> None:
        """Close envelopes down to (and including) the innermost ``level``."""
        while self._stack:
            top = self._stack[-1][0]
            self._close()
            if top == level:
                return

    def _inside(self, level: str) -> None:
        """Make ``level`` the innermost open envelope: deeper ones closed, missing ones opened.

        Open envelopes always follow _LEVELS from the top, so each record lands in
        its parent's array whatever order the input's envelopes came in (a GS
        inside an open ST once put claims straight into ``transactions``).
        """
        depth = _LEVELS.index(level) + 1
        while len(self._stack) > depth:
            self._close()
        for missing in _LEVELS[len(self._stack):depth]:
            header: dict[str, Any] = {"control_number": None, "missing": True}
            if missing == "transaction":
                header["type"] = None  # not known: no ST opened it
            self._open(missing, header)

    # -- the stream ----------------------------------------------------------
    def begin_file(self, path: str) -> None:
        if self._files:
            self.out.write(", ")
        self._files += 1
        self.out.write("{" + f'"path": {json.dumps(path)}, "interchanges": [')
        self._first = [True]
        self._stack = []
        self._file_problems = []
        self.batch.begin_file(path)

    def event(self, event: Any) -> None:
        self.batch.event(event)
        cls = event.__class__
        if cls is ScrubbedClaim:
            self._inside("transaction")
            rendered = event.rendered
            text = rendered.get(self._render.key) if rendered is not None else None
            self._item(text if text is not None else scrubbed_json(event, self.show_phi))
        elif cls is ClaimRecord:
            self._inside("transaction")
            self._item(json.dumps(claim_to_dict(event, self.show_phi)))
        elif cls is Problem:
            self.problem(event)
        elif cls is EnvelopeEnd:
            if any(level == event.envelope for level, _ in self._stack):
                self._close_to(event.envelope)
        elif cls is Interchange:
            while self._stack:
                self._close()
            self._open("interchange", _header(event))
        elif cls is FunctionalGroup:
            self._inside("interchange")
            self._open("group", _header(event))
        elif cls is Transaction:
            self._inside("group")
            self._open("transaction", _header(event))

    def problem(self, problem: Problem) -> None:
        for level, problems in reversed(self._stack):
            if level == problem.envelope:
                problems.append(problem_to_dict(problem, self.show_phi))
                return
        self._file_problems.append(problem_to_dict(problem, self.show_phi))

    def end_file(self, end: FileEnd) -> None:
        while self._stack:
            self._close()
        self.out.write(f'], "problems": {json.dumps(self._file_problems)}')
        self.out.write(f', "summary": {json.dumps(end.summary)}')
        self.out.write(f', "verdict": {json.dumps(verdict(end.summary))}')
        self.batch.end_file(end)
        self.out.write("}")

    def notice(self, notice: Notice) -> None:
        self.batch.notice(notice)

    def run_details(self, run: RunDetails) -> None:
        self.run = run

    def renderer(self) -> ClaimJson:
        return self._render

    def close(self) -> None:
        self.out.write("]")
        if self.batch.files:
            total = {**self.batch.total(), **self.batch.breakdowns()}
            self.out.write(f', "total": {json.dumps(total)}')
        if self.run is not None:
            self.out.write(f', "run": {json.dumps(self.run.as_dict())}')
        self.out.write("}\n")
        self.out.flush()
