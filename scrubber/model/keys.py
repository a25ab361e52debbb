"""Who "the same patient" is, for day rules and the claim-history ledger.

The 96523 pack and NCCI edits compare services of one patient, seen by one
billing provider, on one date. Payers match on the member id and the
patient's name and birth date; so do we, after normalising case and spacing
so that "Doe, Jane" and "DOE,  JANE" are one person.
"""

from __future__ import annotations

from scrubber.model.claims import ClaimRecord


def _norm(text: str) -> str:
    return " ".join(text.upper().split())


def patient_identity(record: ClaimRecord) -> tuple[str, str, str, str, str]:
    """(billing NPI, member id, last name, first name, birth date ISO), normalised."""
    provider = record.billing_provider
    patient = record.patient
    subscriber = record.subscriber
    member_id = subscriber.member_id if subscriber else (patient.member_id if patient else "")
    if patient is None:
        return (provider.npi if provider else "", _norm(member_id), "", "", "")
    return (
        provider.npi if provider else "",
        _norm(member_id),
        _norm(patient.last_name),
        _norm(patient.first_name),
        patient.birth_date.isoformat() if patient.birth_date else "",
    )
