"""The envelope records: ISA, GS and ST (with the transaction set's BHT and 1000A/B)."""

from __future__ import annotations

from scrubber.model.claims import FunctionalGroup, Interchange, Location, Transaction
from scrubber.model.parties import build_party
from scrubber.model.values import parse_date
from scrubber.x12.delimiters import Delimiters
from scrubber.x12.tokenizer import Segment


def build_interchange(seg: Segment, delimiters: Delimiters, ordinal: int) -> Interchange:
    """ISA, its fixed-width fields stripped of their padding."""
    return Interchange(
        sender_qualifier=seg.get(5).strip(),
        sender_id=seg.get(6).strip(),
        receiver_qualifier=seg.get(7).strip(),
        receiver_id=seg.get(8).strip(),
        date=parse_date(seg.get(9).strip()),
        time=seg.get(10).strip(),
        version=seg.get(12).strip(),
        control_number=seg.get(13).strip(),
        ack_requested=seg.get(14).strip(),
        usage=seg.get(15).strip(),
        delimiters=delimiters,
        location=Location.of(seg),
        ordinal=ordinal,
    )


def build_group(seg: Segment) -> FunctionalGroup:
    """GS."""
    return FunctionalGroup(
        functional_id=seg.get(1), sender=seg.get(2), receiver=seg.get(3),
        date=parse_date(seg.get(4)), time=seg.get(5), control_number=seg.get(6),
        version=seg.get(8), location=Location.of(seg),
    )


def build_transaction(st: Segment, header: list[Segment], kind: str,
                      group: FunctionalGroup | None) -> Transaction:
    """ST with its BHT and 1000A/B submitter and receiver, read from the set's header."""
    bht = next((s for s in header if s.id == "BHT"), None)
    submitter = receiver = None
    for seg in header:
        if seg.id == "NM1":
            if seg.get(1) == "41":
                submitter = seg
            elif seg.get(1) == "40":
                receiver = seg
    return Transaction(
        kind=kind,
        set_id=st.get(1),
        control_number=st.get(2),
        version=st.get(3) or (group.version if group else ""),
        purpose=bht.get(2) if bht else "",
        reference=bht.get(3) if bht else "",
        created=parse_date(bht.get(4)) if bht else None,
        created_time=bht.get(5) if bht else "",
        claim_type=bht.get(6) if bht else "",
        submitter=build_party(submitter),
        receiver=build_party(receiver),
        location=Location.of(st),
    )
