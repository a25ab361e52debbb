"""The claim model and the walker that streams 837 segments into it."""

from scrubber.model.build import VERSIONS, Event, Source, claims, read
from scrubber.model.claims import (
    Address,
    Attachment,
    BillingProvider,
    Claim,
    ClaimRecord,
    CodeValue,
    DateValue,
    Diagnosis,
    EnvelopeEnd,
    FunctionalGroup,
    Institutional,
    Interchange,
    Location,
    Note,
    Party,
    Patient,
    Problem,
    Provider,
    Reference,
    ServiceLine,
    Subscriber,
    Transaction,
)

__all__ = [
    "VERSIONS", "Event", "Source", "claims", "read",
    "Address", "Attachment", "BillingProvider", "Claim", "ClaimRecord", "CodeValue",
    "DateValue", "Diagnosis", "EnvelopeEnd", "FunctionalGroup", "Institutional",
    "Interchange", "Location", "Note", "Party", "Patient", "Problem", "Provider",
    "Reference", "ServiceLine", "Subscriber", "Transaction",
]
