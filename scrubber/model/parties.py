"""The parties of a claim's HL loops: billing provider (2000A), subscriber (2000B), patient
(2000C), each frozen from the segments of its loop when the loop ends."""

from __future__ import annotations

from datetime import date

from scrubber.model.claims import Address, BillingProvider, Location, Party, Patient, Subscriber
from scrubber.model.values import PAD, parse_date
from scrubber.x12.tokenizer import Segment


def build_party(seg: Segment | None) -> Party | None:
    if seg is None:
        return None
    el = seg[1] + PAD
    return Party(el[3], el[8], el[9])


def _address(n3: Segment | None, n4: Segment | None) -> Address | None:
    if n3 is None and n4 is None:
        return None
    return Address(
        n3.get(1) if n3 else "", n3.get(2) if n3 else "",
        n4.get(1) if n4 else "", n4.get(2) if n4 else "", n4.get(3) if n4 else "",
    )


def build_billing_provider(hl: Segment, segments: list[Segment]) -> BillingProvider:
    """2000A/2010AA from the segments of the billing provider's HL loop."""
    name = n3 = n4 = None
    tax_id = taxonomy = ""
    in_name = False
    for seg in segments:
        sid = seg.id
        if sid == "NM1":
            in_name = seg.get(1) == "85"
            if in_name:
                name = seg
        elif sid == "PRV" and seg.get(1) == "BI":
            taxonomy = seg.get(3)
        elif in_name and sid == "N3":
            n3 = seg
        elif in_name and sid == "N4":
            n4 = seg
        elif in_name and sid == "REF" and seg.get(1) in ("EI", "SY") and not tax_id:
            tax_id = seg.get(2)
    npi = name.get(9) if name is not None and name.get(8) == "XX" else ""
    return BillingProvider(
        hl_id=hl.get(1),
        entity_type=name.get(2) if name else "",
        name=name.get(3) if name else "",
        first_name=name.get(4) if name else "",
        npi=npi,
        tax_id=tax_id,
        taxonomy=taxonomy,
        address=_address(n3, n4),
        location=Location.of(name if name is not None else hl),
        segments=(hl, *segments),
    )


def _person(segments: list[Segment], head: str, entity: str) -> tuple:
    """What a subscriber or patient loop says, read in one pass.

    Returns the padded elements of the first ``head`` segment (SBR or PAT), of the
    last NM1 of ``entity`` (IL or QC) and of the DMG after it (a DMG belongs to
    the person whose NM1 it follows), that NM1, and the first NM1*PR (the payer).
    """
    first = name = dmg = PAD
    found = payer = None
    current = ""  # NM101 of the last NM1
    for seg in segments:
        sid = seg[0]
        if sid == "NM1":
            el = seg[1] + PAD
            current = el[1]
            if current == entity:
                found, name = seg, el
            elif current == "PR" and payer is None:
                payer = seg
        elif sid == "DMG":
            if current == entity:
                dmg = seg[1] + PAD
        elif sid == head and first is PAD:
            first = seg[1] + PAD
    return first, name, dmg, found, payer


def _birth_date(dmg: tuple) -> date | None:
    return parse_date(dmg[2]) if dmg[1] == "D8" else None


def build_subscriber(hl: Segment, segments: list[Segment]) -> Subscriber:
    """2000B/2010BA/2010BB from the subscriber HL loop's segments."""
    sbr, name, dmg, found, payer = _person(segments, "SBR", "IL")
    return Subscriber(
        hl.get(1),  # hl_id
        sbr[1], sbr[2], sbr[3], sbr[9],  # payer responsibility, relationship, group, filing
        name[9], name[3], name[4], name[5],  # member id, last, first, middle name
        _birth_date(dmg), dmg[3],
        build_party(payer),
        hl.get(4) == "1",  # has_dependents
        Location.of(found if found is not None else hl),
    )


def patient_from_subscriber(sub: Subscriber) -> Patient:
    """The patient when the subscriber is the patient (no 2000C loop)."""
    return Patient(sub.hl_id, True, "18", sub.member_id, sub.last_name, sub.first_name,
                   sub.middle_name, sub.birth_date, sub.gender, sub.location)


def build_patient(hl: Segment, segments: list[Segment], subscriber: Subscriber | None) -> Patient:
    """2000C/2010CA from the patient HL loop's segments."""
    pat, name, dmg, found, _ = _person(segments, "PAT", "QC")
    return Patient(
        hl.get(1),  # hl_id
        False,  # is_subscriber
        pat[1],  # relationship
        subscriber.member_id if subscriber else "",
        name[3], name[4], name[5],  # last, first, middle name
        _birth_date(dmg), dmg[3],
        Location.of(found if found is not None else hl),
    )
