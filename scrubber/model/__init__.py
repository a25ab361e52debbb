"""The claim model and the walker that streams 837 segments into it."""

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
from scrubber.model.source import Source
from scrubber.model.walker import VERSIONS, Event, claims, read

__all__ = [
    "VERSIONS", "Event", "Source", "claims", "read",
    "Address", "Attachment", "BillingProvider", "Claim", "ClaimRecord", "CodeValue",
    "DateValue", "Diagnosis", "EnvelopeEnd", "FunctionalGroup", "Institutional",
    "Interchange", "Location", "Note", "Party", "Patient", "Problem", "Provider",
    "Reference", "ServiceLine", "Subscriber", "Transaction",
]
