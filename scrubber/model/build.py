"""The names this module held before it was split, kept importable for code written
against them; new code imports from the module that defines each name:

- ``values``: parse_date, parse_decimal
- ``claim_body``: claim_body (a claim's segments into its fields and lines)
- ``claim_source``: ClaimSource, claim_from
- ``parties``: build_billing_provider, build_subscriber, build_patient, patient_from_subscriber
- ``source``: Source (a path, bytes or a stream) and open_source
- ``walker``: read, claims, Event, VERSIONS and the walker itself
"""

from scrubber.model.claim_body import claim_body
from scrubber.model.claim_source import ClaimSource, claim_from
from scrubber.model.parties import (
    build_billing_provider,
    build_patient,
    build_subscriber,
    patient_from_subscriber,
)
from scrubber.model.source import Source
from scrubber.model.values import parse_date, parse_decimal
from scrubber.model.walker import VERSIONS, Event, claims, read

__all__ = [
    "VERSIONS", "ClaimSource", "Event", "Source", "build_billing_provider",
    "build_patient", "build_subscriber", "claim_body", "claim_from", "claims",
    "parse_date", "parse_decimal", "patient_from_subscriber", "read",
]
