"""Walk a stream of segments into the claim model, one claim at a time.

``read(source)`` yields, in document order: ``Interchange``, ``FunctionalGroup``,
``Transaction``, ``ClaimRecord`` and ``EnvelopeEnd`` records, and a ``Problem``
wherever the input is not what an 837 must be. Memory stays flat: a claim is
built from its own segments when the next claim, HL or trailer begins, then
handed out and forgotten.

Who belongs to whom is decided by the HL tree (HL01 id, HL02 parent, HL03
level), as the 837 guides define it, not by where a segment happens to sit.
"""

from __future__ import annotations

import io
import os
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator, Union

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
from scrubber.x12.delimiters import Delimiters
from scrubber.x12.tokenizer import Segment, SyntaxProblem, Tokenizer

Event = Union[Interchange, FunctionalGroup, Transaction, ClaimRecord, EnvelopeEnd, Problem]
Source = Union[str, os.PathLike, bytes, bytearray, memoryview, BinaryIO]

#: 5010 837 versions read with one layout (errata A1/A2/A3 changed codes, not loops)
VERSIONS = {
    "005010X222A1": "837P",
    "005010X222A2": "837P",
    "005010X222": "837P",
    "005010X223A1": "837I",
    "005010X223A2": "837I",
    "005010X223A3": "837I",
    "005010X223": "837I",
}
_DIAGNOSIS_QUALIFIERS = frozenset(
    {"ABK", "ABF", "ABJ", "APR", "ABN", "BK", "BF", "BJ", "PR", "BN"}
)
_HL_LIMIT = 20000  # HL entries kept for parent look-ups; children follow parents closely

_dates: dict[str, date | None] = {}
_decimals: dict[str, Decimal | None] = {}
_PAD = ("",) * 10  # appended to an element tuple so that absent trailing elements read ""
_PAD_LIST = [""] * 8


def parse_date(text: str) -> date | None:
    """CCYYMMDD (or YYMMDD, read as 20YY) to a date; None when not a real date."""
    try:
        return _dates[text]
    except KeyError:
        pass
    value = None
    if text.isdigit() and len(text) in (6, 8):
        digits = text if len(text) == 8 else "20" + text
        try:
            value = date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
        except ValueError:
            value = None
    if len(_dates) > 100000:
        _dates.clear()
    _dates[text] = value
    return value


def parse_decimal(text: str) -> Decimal | None:
    """An X12 R or N value to a Decimal; None when it is not a number."""
    try:
        return _decimals[text]
    except KeyError:
        pass
    value = None
    if text:
        try:
            value = Decimal(text)
        except (InvalidOperation, ValueError):
            value = None
        if value is not None and not value.is_finite():
            value = None
    if len(_decimals) > 100000:
        _decimals.clear()
    _decimals[text] = value
    return value


def _date_range(fmt: str, text: str) -> tuple[date | None, date | None]:
    if fmt == "RD8":
        start, sep, end = text.partition("-")
        if not sep:
            return None, None
        return parse_date(start), parse_date(end)
    if fmt == "D8":
        day = parse_date(text)
        return day, day
    if fmt == "DT" and len(text) >= 8:
        day = parse_date(text[:8])
        return day, day
    return None, None


def _dtp(seg: Segment) -> DateValue:
    qualifier, fmt, text = (seg.elements + _PAD)[1:4]
    start, end = _date_range(fmt, text)
    return DateValue(qualifier, fmt, text, start, end, Location.of(seg))


def _note(seg: Segment) -> Note:
    el = seg.elements + _PAD
    return Note(el[1], el[2], Location.of(seg))


def _pwk(seg: Segment) -> Attachment:
    el = seg.elements + _PAD
    return Attachment(el[1], el[2], el[6], Location.of(seg))


def _ref(seg: Segment) -> Reference:
    el = seg.elements + _PAD
    return Reference(el[1], el[2], Location.of(seg))


def _provider(seg: Segment, taxonomy: str = "") -> Provider:
    npi = seg.get(9) if seg.get(8) == "XX" else ""
    return Provider(seg.get(1), seg.get(2), seg.get(3), seg.get(4), npi, taxonomy, Location.of(seg))


def _segment_text(seg: Segment, delimiters: Delimiters | None) -> str:
    sep = delimiters.element if delimiters else "*"
    return sep.join(seg.elements)


class _LineBuilder:
    """Collects one 2400 loop; becomes a frozen ServiceLine."""

    __slots__ = ("lx", "service", "dates", "notes", "attachments", "references", "providers",
                 "sub_loop", "pending_provider")

    def __init__(self, lx: Segment):
        self.lx = lx
        self.service: Segment | None = None
        self.dates: list[DateValue] = []
        self.notes: list[Note] = []
        self.attachments: list[Attachment] = []
        self.references: list[Reference] = []
        self.providers: list[Provider] = []
        self.sub_loop = False  # inside 2410/2420/2430/2440, whose DTP/REF are not the line's
        self.pending_provider: Segment | None = None

    def build(self, component: str) -> ServiceLine:
        if self.pending_provider is not None:
            self.providers.append(_provider(self.pending_provider))
        number_text = self.lx.get(1)
        number = int(number_text) if number_text.isdigit() else None
        svc = self.service
        qualifier = procedure = description = revenue = charge_text = basis = units_text = ""
        pos = ""
        modifiers: tuple[str, ...] = ()
        pointers: tuple[int, ...] = ()
        if svc is not None:
            el = svc.elements + _PAD
            if svc.id == "SV1":
                composite, charge_text, basis, units_text, pos = el[1:6]
                if el[7]:
                    pointers = tuple(int(p) for p in el[7].split(component) if p.isdigit())
            else:  # SV2
                revenue, composite, charge_text, basis, units_text = el[1:6]
            parts = composite.split(component) + _PAD_LIST
            qualifier, procedure = parts[0], parts[1]
            modifiers = tuple(m for m in parts[2:6] if m) if parts[2] else ()
            description = parts[6]
        date_from = date_to = None
        for value in self.dates:
            if value.qualifier == "472":
                date_from, date_to = value.start, value.end
                break
        control = ""
        for ref in self.references:
            if ref.qualifier == "6R":
                control = ref.value
                break
        return ServiceLine(
            number, qualifier, procedure, modifiers, description, revenue,
            parse_decimal(charge_text), charge_text, basis, parse_decimal(units_text),
            units_text, pos, pointers, date_from, date_to, tuple(self.dates),
            tuple(self.notes), tuple(self.attachments), tuple(self.references), control,
            tuple(self.providers), Location.of(self.lx),
            Location.of(svc) if svc is not None else None,
        )


def build_claim(segments: list[Segment], component: str) -> Claim:
    """Build a Claim from its segments: CLM through the end of its last 2400 loop."""
    clm = segments[0]
    el = clm.elements
    clm05 = (el[5] if len(el) > 5 else "").split(component)
    dates: list[DateValue] = []
    diagnoses: list[Diagnosis] = []
    codes: list[CodeValue] = []
    notes: list[Note] = []
    attachments: list[Attachment] = []
    references: list[Reference] = []
    providers: list[Provider] = []
    lines: list[ServiceLine] = []
    institutional = None
    line: _LineBuilder | None = None
    in_cob = False  # 2320/2330: other payers' data, not this claim's
    pending: Segment | None = None  # a 2310 NM1 waiting for its PRV
    for seg in segments:
        sid = seg.id
        if sid == "LX":
            if line is not None:
                lines.append(line.build(component))
            elif pending is not None:
                providers.append(_provider(pending))
                pending = None
            line = _LineBuilder(seg)
            continue
        if line is not None:
            if sid == "SV1" or sid == "SV2":
                if line.service is None:
                    line.service = seg
            elif sid == "DTP":
                if not line.sub_loop:
                    line.dates.append(_dtp(seg))
            elif sid == "NTE":
                line.notes.append(_note(seg))
            elif sid == "PWK":
                line.attachments.append(_pwk(seg))
            elif sid == "REF":
                if not line.sub_loop:
                    line.references.append(_ref(seg))
            elif sid == "NM1":
                if line.pending_provider is not None:
                    line.providers.append(_provider(line.pending_provider))
                line.sub_loop = True
                line.pending_provider = seg
            elif sid == "PRV":
                if line.pending_provider is not None:
                    line.providers.append(_provider(line.pending_provider, seg.get(3)))
                    line.pending_provider = None
            elif sid in ("LIN", "SVD", "LQ"):
                if line.pending_provider is not None:
                    line.providers.append(_provider(line.pending_provider))
                    line.pending_provider = None
                line.sub_loop = True
            continue
        if sid == "SBR":
            in_cob = True
            if pending is not None:
                providers.append(_provider(pending))
                pending = None
            continue
        if in_cob:
            continue
        if sid == "DTP":
            dates.append(_dtp(seg))
        elif sid == "HI":
            for composite in seg.elements[1:]:
                if not composite:
                    continue
                parts = composite.split(component)
                qualifier = parts[0]
                code = parts[1] if len(parts) > 1 else ""
                loc = Location.of(seg)
                if qualifier in _DIAGNOSIS_QUALIFIERS:
                    diagnoses.append(Diagnosis(qualifier, code, len(diagnoses) + 1, loc))
                else:
                    codes.append(CodeValue(
                        qualifier, code,
                        parts[2] if len(parts) > 2 else "",
                        parts[3] if len(parts) > 3 else "",
                        parts[4] if len(parts) > 4 else "",
                        loc,
                    ))
        elif sid == "REF":
            if pending is None and not providers:
                references.append(_ref(seg))
        elif sid == "NTE":
            notes.append(_note(seg))
        elif sid == "PWK":
            attachments.append(_pwk(seg))
        elif sid == "CL1":
            institutional = Institutional(seg.get(1), seg.get(2), seg.get(3), Location.of(seg))
        elif sid == "NM1":
            if pending is not None:
                providers.append(_provider(pending))
            pending = seg
        elif sid == "PRV":
            if pending is not None:
                providers.append(_provider(pending, seg.get(3)))
                pending = None
    if line is not None:
        lines.append(line.build(component))
    elif pending is not None:
        providers.append(_provider(pending))
    charge_text = el[2] if len(el) > 2 else ""
    return Claim(
        id=el[1] if len(el) > 1 else "",
        charge=parse_decimal(charge_text),
        charge_text=charge_text,
        facility_code=clm05[0],
        facility_qualifier=clm05[1] if len(clm05) > 1 else "",
        frequency=clm05[2] if len(clm05) > 2 else "",
        provider_signature=el[6] if len(el) > 6 else "",
        assignment=el[7] if len(el) > 7 else "",
        benefits_assigned=el[8] if len(el) > 8 else "",
        release_of_information=el[9] if len(el) > 9 else "",
        dates=tuple(dates),
        diagnoses=tuple(diagnoses),
        codes=tuple(codes),
        notes=tuple(notes),
        attachments=tuple(attachments),
        references=tuple(references),
        institutional=institutional,
        providers=tuple(providers),
        lines=tuple(lines),
        segments=tuple(segments),
        location=Location.of(clm),
    )


def _party(seg: Segment | None) -> Party | None:
    if seg is None:
        return None
    return Party(seg.get(3), seg.get(8), seg.get(9))


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


def _person(segments: list[Segment], entity: str) -> tuple[Segment | None, Segment | None]:
    """The NM1 of ``entity`` and the DMG that follows it."""
    name = dmg = None
    current = None
    for seg in segments:
        if seg.id == "NM1":
            current = seg.get(1)
            if current == entity:
                name = seg
        elif seg.id == "DMG" and current == entity:
            dmg = seg
    return name, dmg


def build_subscriber(hl: Segment, segments: list[Segment]) -> Subscriber:
    """2000B/2010BA/2010BB from the subscriber HL loop's segments."""
    sbr = next((s for s in segments if s.id == "SBR"), None)
    name, dmg = _person(segments, "IL")
    payer = next((s for s in segments if s.id == "NM1" and s.get(1) == "PR"), None)
    return Subscriber(
        hl_id=hl.get(1),
        payer_responsibility=sbr.get(1) if sbr else "",
        relationship=sbr.get(2) if sbr else "",
        group_number=sbr.get(3) if sbr else "",
        claim_filing=sbr.get(9) if sbr else "",
        member_id=name.get(9) if name else "",
        last_name=name.get(3) if name else "",
        first_name=name.get(4) if name else "",
        middle_name=name.get(5) if name else "",
        birth_date=parse_date(dmg.get(2)) if dmg and dmg.get(1) == "D8" else None,
        gender=dmg.get(3) if dmg else "",
        payer=_party(payer),
        has_dependents=hl.get(4) == "1",
        location=Location.of(name if name is not None else hl),
    )


def patient_from_subscriber(sub: Subscriber) -> Patient:
    """The patient when the subscriber is the patient (no 2000C loop)."""
    return Patient(
        hl_id=sub.hl_id, is_subscriber=True, relationship="18", member_id=sub.member_id,
        last_name=sub.last_name, first_name=sub.first_name, middle_name=sub.middle_name,
        birth_date=sub.birth_date, gender=sub.gender, location=sub.location,
    )


def build_patient(hl: Segment, segments: list[Segment], subscriber: Subscriber | None) -> Patient:
    """2000C/2010CA from the patient HL loop's segments."""
    pat = next((s for s in segments if s.id == "PAT"), None)
    name, dmg = _person(segments, "QC")
    return Patient(
        hl_id=hl.get(1),
        is_subscriber=False,
        relationship=pat.get(1) if pat else "",
        member_id=subscriber.member_id if subscriber else "",
        last_name=name.get(3) if name else "",
        first_name=name.get(4) if name else "",
        middle_name=name.get(5) if name else "",
        birth_date=parse_date(dmg.get(2)) if dmg and dmg.get(1) == "D8" else None,
        gender=dmg.get(3) if dmg else "",
        location=Location.of(name if name is not None else hl),
    )


def _interchange(seg: Segment, delimiters: Delimiters, ordinal: int) -> Interchange:
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


def _group(seg: Segment) -> FunctionalGroup:
    return FunctionalGroup(
        functional_id=seg.get(1), sender=seg.get(2), receiver=seg.get(3),
        date=parse_date(seg.get(4)), time=seg.get(5), control_number=seg.get(6),
        version=seg.get(8), location=Location.of(seg),
    )


class _Walker:
    """The state of one pass over a source: open envelopes, HL tree, claim in hand."""

    def __init__(self, stream: BinaryIO):
        self.tokenizer = Tokenizer(stream)
        self.delimiters: Delimiters | None = None
        self.interchange: Interchange | None = None
        self.group: FunctionalGroup | None = None
        self.group_count = 0  # GS seen in the open interchange
        self.set_count = 0  # ST seen in the open group
        self.interchange_count = 0
        # the open transaction set
        self.st: Segment | None = None
        self.kind = ""  # "837P"/"837I", or "" while skipping an unsupported set
        self.header: list[Segment] = []  # BHT, 1000A/B before the first HL
        self.transaction: Transaction | None = None
        # the HL tree
        self.hl: Segment | None = None
        self.hl_segments: list[Segment] = []
        self.providers: dict[str, BillingProvider] = {}
        self.subscribers: dict[str, Subscriber] = {}
        self.hl_levels: dict[str, str] = {}
        self.billing_provider: BillingProvider | None = None
        self.subscriber: Subscriber | None = None
        self.patient: Patient | None = None
        self.claim_segments: list[Segment] | None = None
        self.isa_problems: list[SyntaxProblem] = []  # about the ISA that comes next
        self.stray = 0

    # -- problems --------------------------------------------------------
    def problem(self, code: str, message: str, envelope: str, seg: Segment | None = None,
                control: str | None = None, location: Location | None = None) -> Problem:
        if control is None:
            control = {
                "transaction": self.st.get(2) if self.st else None,
                "group": self.group.control_number if self.group else None,
                "interchange": self.interchange.control_number if self.interchange else None,
            }.get(envelope)
        return Problem(
            code=code, message=message, envelope=envelope,
            location=Location.of(seg) if seg is not None else location,
            control_number=control,
            segment_text=_segment_text(seg, self.delimiters) if seg is not None else None,
        )

    # -- the walk ----------------------------------------------------------
    def events(self) -> Iterator[Event]:
        # the hot loop: most segments belong to a claim and are only collected here
        segment_class, envelope_ids = Segment, _ENVELOPE_IDS
        for item in self.tokenizer:
            if item.__class__ is not segment_class:
                if item.code in _ISA_PROBLEMS:
                    self.isa_problems.append(item)
                else:
                    yield self.syntax_problem(item)
                continue
            seg: Segment = item
            sid = seg[0]
            collecting = self.claim_segments
            if collecting is not None:
                if sid != "CLM" and sid != "HL" and sid not in envelope_ids:
                    collecting.append(seg)
                    continue
                yield from self.end_claim()
            if self.st is not None and sid not in envelope_ids:
                if not self.kind:
                    continue  # inside a transaction set we do not read
                if sid == "CLM":
                    yield from self.begin_claim(seg)
                elif sid == "HL":
                    yield from self.begin_hl(seg)
                elif self.hl is not None:
                    self.hl_segments.append(seg)
                else:
                    self.header.append(seg)
                continue
            yield from self.envelope(seg)
        yield from self.finish()

    def syntax_problem(self, item: SyntaxProblem) -> Problem:
        envelope = "interchange" if self.interchange is not None else "file"
        return Problem(
            code=item.code, message=item.message, envelope=envelope,
            location=Location(0, item.line, item.offset),
            control_number=self.interchange.control_number if self.interchange else None,
            fatal=item.fatal,
        )

    def envelope(self, seg: Segment) -> Iterator[Event]:
        sid = seg.id
        if sid == "ISA":
            if self.interchange is not None:
                yield from self.close_interchange(seg, closed=False)
            self.delimiters = self.tokenizer.delimiters
            self.interchange_count += 1
            self.interchange = _interchange(seg, self.delimiters, self.interchange_count)
            self.group_count = 0
            self.stray = 0  # segments outside any transaction set in this interchange
            yield self.interchange
            for item in self.isa_problems:
                yield self.syntax_problem(item)
            self.isa_problems.clear()
            if self.interchange.version != "00501":
                yield self.problem(
                    "env-isa-version",
                    f"ISA12 is {self.interchange.version!r}, but a 5010 837 travels in a 00501 "
                    "interchange; set ISA12 to 00501", "interchange", seg)
        elif sid == "GS":
            if self.interchange is None:
                yield self.problem("env-outside-interchange",
                                   "GS outside any interchange (no ISA before it)", "file", seg)
            if self.group is not None:
                yield from self.close_group(seg, closed=False)
            self.group = _group(seg)
            self.group_count += 1
            self.set_count = 0
            yield self.group
        elif sid == "ST":
            if self.st is not None:
                yield from self.close_transaction(seg, closed=False)
            if self.group is None:
                yield self.problem("env-outside-group",
                                   "ST outside any functional group (no GS before it)",
                                   "interchange", seg)
            self.set_count += 1
            yield from self.begin_transaction(seg)
        elif sid == "SE":
            if self.st is None:
                yield self.problem("env-unexpected-trailer", "SE without a matching ST",
                                   "group", seg)
                return
            yield from self.close_transaction(seg, closed=True)
        elif sid == "GE":
            if self.st is not None:
                yield from self.close_transaction(seg, closed=False)
            if self.group is None:
                yield self.problem("env-unexpected-trailer", "GE without a matching GS",
                                   "interchange", seg)
                return
            yield from self.close_group(seg, closed=True)
        elif sid == "IEA":
            if self.interchange is None:
                yield self.problem("env-unexpected-trailer", "IEA without a matching ISA",
                                   "file", seg)
                return
            yield from self.close_interchange(seg, closed=True)
        elif sid == "TA1":
            return  # an interchange acknowledgement request answer; nothing to read
        else:
            # Report the first stray segment of an interchange in full and count the rest:
            # a file whose body uses other delimiters than its ISA declares would
            # otherwise give one problem per segment.
            self.stray += 1
            if self.stray > 1:
                return
            envelope = "group" if self.group else "interchange" if self.interchange else "file"
            other = next((ch for ch in sid[2:] if not ch.isalnum()), None)
            if other is not None and self.delimiters is not None:
                yield self.problem(
                    "env-wrong-delimiter",
                    f"segments here use {other!r} between elements, but the ISA declares "
                    f"{self.delimiters.element!r}: the interchange cannot be read. Make the "
                    "ISA's element separator (its 4th character) match the body, or re-export "
                    "the file", envelope, seg)
            else:
                yield self.problem(
                    "env-outside-transaction",
                    f"segment {sid} stands outside any transaction set (between envelopes); "
                    "it was ignored", envelope, seg)

    # -- transaction sets --------------------------------------------------
    def begin_transaction(self, st: Segment) -> Iterator[Event]:
        self.st = st
        self.header = []
        self.transaction = None
        self.hl = None
        self.hl_segments = []
        self.providers.clear()
        self.subscribers.clear()
        self.hl_levels.clear()
        self.billing_provider = self.subscriber = self.patient = None
        version = st.get(3) or (self.group.version if self.group else "")
        set_id = st.get(1)
        self.kind = VERSIONS.get(version, "") if set_id == "837" else ""
        if self.kind:
            return  # the Transaction is yielded once its BHT and 1000A/B are read
        self.transaction = self.make_transaction()
        yield self.transaction
        if set_id != "837":
            what = {"835": "an 835 remittance advice", "277": "a 277 claim status",
                    "999": "a 999 acknowledgement", "270": "a 270 eligibility inquiry",
                    "834": "an 834 enrollment"}.get(set_id, f"transaction set {set_id!r}")
            yield self.problem(
                "env-unsupported-transaction",
                f"ST01 is {set_id!r}: this is {what}, not an 837 claim; it was not read. "
                "Send 837P (005010X222A1) or 837I (005010X223A2) claims.",
                "transaction", st)
        elif version not in VERSIONS:
            yield self.problem(
                "env-unsupported-version",
                f"837 version {version!r} is not 5010 (005010X222A1 professional or "
                "005010X223A2 institutional); it was not read. Convert the claims to 5010.",
                "transaction", st)

    def make_transaction(self) -> Transaction:
        st = self.st
        bht = next((s for s in self.header if s.id == "BHT"), None)
        submitter = receiver = None
        for seg in self.header:
            if seg.id == "NM1":
                if seg.get(1) == "41":
                    submitter = seg
                elif seg.get(1) == "40":
                    receiver = seg
        return Transaction(
            kind=self.kind,
            set_id=st.get(1),
            control_number=st.get(2),
            version=st.get(3) or (self.group.version if self.group else ""),
            purpose=bht.get(2) if bht else "",
            reference=bht.get(3) if bht else "",
            created=parse_date(bht.get(4)) if bht else None,
            created_time=bht.get(5) if bht else "",
            claim_type=bht.get(6) if bht else "",
            submitter=_party(submitter),
            receiver=_party(receiver),
            location=Location.of(st),
        )

    def close_transaction(self, at: Segment, closed: bool) -> Iterator[Event]:
        st = self.st
        if self.transaction is None:
            self.transaction = self.make_transaction()
            yield self.transaction
        if self.hl is not None:
            self.end_hl()
        control = st.get(2)
        count = at.ordinal - st.ordinal + 1 if closed else 0  # ST through SE
        if not closed:
            where = "the end of the file" if at is None else f"{at.id} at line {at.line}"
            yield self.problem(
                "env-missing-se",
                f"transaction set {control} (ST at line {st.line}) has no SE before {where}: "
                "the file is truncated or the trailer was lost; resend the whole batch",
                "transaction", st)
        else:
            if at.get(2) != control:
                yield self.problem(
                    "env-se-control",
                    f"SE02 {at.get(2)!r} does not match ST02 {control!r}; set SE02 to {control}",
                    "transaction", at, control=control)
            if at.get(1) != str(count):
                yield self.problem(
                    "env-se-count",
                    f"SE01 says {at.get(1)!r} segments but the transaction set has "
                    f"{count} (ST through SE); set SE01 to {count}",
                    "transaction", at, control=control)
        yield EnvelopeEnd("transaction", control, closed,
                          Location.of(at) if at is not None else None, count)
        self.st = None
        self.kind = ""
        self.transaction = None

    # -- functional groups and interchanges ----------------------------------
    def close_group(self, at: Segment | None, closed: bool) -> Iterator[Event]:
        if self.st is not None:
            yield from self.close_transaction(at, closed=False)
        group = self.group
        control = group.control_number
        if not closed:
            where = "the end of the file" if at is None else f"{at.id} at line {at.line}"
            yield self.problem(
                "env-missing-ge",
                f"functional group {control} (GS at line {group.location.line}) has no GE "
                f"before {where}; the file is truncated or the trailer was lost",
                "group", at, control=control,
                location=group.location if at is None else None)
        else:
            if at.get(2) != control:
                yield self.problem(
                    "env-ge-control",
                    f"GE02 {at.get(2)!r} does not match GS06 {control!r}; set GE02 to {control}",
                    "group", at, control=control)
            if at.get(1) != str(self.set_count):
                yield self.problem(
                    "env-ge-count",
                    f"GE01 says {at.get(1)!r} transaction sets but the group has "
                    f"{self.set_count}; set GE01 to {self.set_count}",
                    "group", at, control=control)
        yield EnvelopeEnd("group", control, closed,
                          Location.of(at) if at is not None else None, self.set_count)
        self.group = None

    def close_interchange(self, at: Segment | None, closed: bool) -> Iterator[Event]:
        if self.claim_segments is not None:
            yield from self.end_claim()
        if self.group is not None:
            yield from self.close_group(at, closed=False)
        elif self.st is not None:
            yield from self.close_transaction(at, closed=False)
        ic = self.interchange
        control = ic.control_number
        if self.stray > 1:
            yield self.problem(
                "env-outside-transaction",
                f"{self.stray - 1} more segments outside any transaction set were ignored in "
                f"interchange {control}", "interchange", None, control=control,
                location=ic.location)
        if not closed:
            where = "the end of the file" if at is None or at.id != "ISA" else \
                f"the next ISA at line {at.line}"
            yield self.problem(
                "env-missing-iea",
                f"interchange {control} (ISA at line {ic.location.line}) has no IEA before "
                f"{where}; the file is truncated or the trailer was lost",
                "interchange", None, control=control, location=ic.location)
        else:
            if at.get(2) != control:
                yield self.problem(
                    "env-iea-control",
                    f"IEA02 {at.get(2)!r} does not match ISA13 {control!r}; set IEA02 to "
                    f"{control}", "interchange", at, control=control)
            if at.get(1) != str(self.group_count):
                yield self.problem(
                    "env-iea-count",
                    f"IEA01 says {at.get(1)!r} functional groups but the interchange has "
                    f"{self.group_count}; set IEA01 to {self.group_count}",
                    "interchange", at, control=control)
        yield EnvelopeEnd("interchange", control, closed,
                          Location.of(at) if at is not None and closed else None,
                          self.group_count)
        self.interchange = None

    def finish(self) -> Iterator[Event]:
        if self.interchange is not None:
            yield from self.close_interchange(None, closed=False)

    # -- the HL tree -----------------------------------------------------------
    def begin_hl(self, hl: Segment) -> Iterator[Event]:
        if self.transaction is None:
            self.transaction = self.make_transaction()
            yield self.transaction
        if self.hl is not None:
            self.end_hl()
        self.hl = hl
        self.hl_segments = []
        hl_id, parent, level = hl.get(1), hl.get(2), hl.get(3)
        if level == "20":
            if parent:
                yield self.problem(
                    "env-hl-parent",
                    f"billing provider HL {hl_id} names a parent ({parent}); a 2000A HL has "
                    "none", "transaction", hl)
        elif level in ("22", "23"):
            want = "20" if level == "22" else "22"
            if self.hl_levels.get(parent) != want:
                what = "billing provider (20)" if want == "20" else "subscriber (22)"
                yield self.problem(
                    "env-hl-parent",
                    f"HL {hl_id} (level {level}) names parent {parent!r}, which is not a "
                    f"{what} HL seen before it; fix HL02. The nearest preceding {what} "
                    "was used.", "transaction", hl)
        else:
            yield self.problem(
                "env-hl-level",
                f"HL {hl_id} has level code {level!r}; an 837 uses 20 (billing provider), "
                "22 (subscriber) and 23 (patient)", "transaction", hl)
        self.hl_levels[hl_id] = level
        if len(self.hl_levels) > _HL_LIMIT:
            for key in list(self.hl_levels)[: _HL_LIMIT // 2]:
                if self.hl_levels[key] != "20":
                    del self.hl_levels[key]
                    self.subscribers.pop(key, None)

    def end_hl(self) -> None:
        """Freeze the entity of the HL loop in hand and make it the current one."""
        hl, segments = self.hl, self.hl_segments
        hl_id, parent, level = hl.get(1), hl.get(2), hl.get(3)
        if level == "20":
            provider = build_billing_provider(hl, segments)
            self.providers[hl_id] = provider
            self.billing_provider = provider
            self.subscriber = self.patient = None
        elif level == "22":
            self.billing_provider = self.providers.get(parent, self.billing_provider)
            sub = build_subscriber(hl, segments)
            self.subscribers[hl_id] = sub
            self.subscriber = sub
            self.patient = patient_from_subscriber(sub)
        elif level == "23":
            sub = self.subscribers.get(parent, self.subscriber)
            if sub is not None and sub is not self.subscriber:
                self.subscriber = sub
            self.patient = build_patient(hl, segments, sub)
        self.hl = None
        self.hl_segments = []

    # -- claims ----------------------------------------------------------------
    def begin_claim(self, clm: Segment) -> Iterator[Event]:
        if self.hl is not None:
            self.end_hl()
        if self.transaction is None:
            self.transaction = self.make_transaction()
            yield self.transaction
        self.claim_segments = [clm]

    def end_claim(self) -> Iterator[Event]:
        segments = self.claim_segments
        self.claim_segments = None
        claim = build_claim(segments, self.delimiters.component)
        if self.patient is None:
            yield self.problem(
                "env-claim-without-patient",
                f"claim {claim.id!r} (CLM at line {segments[0].line}) is not inside a "
                "subscriber or patient HL loop", "transaction", segments[0])
        yield ClaimRecord(self.interchange, self.group, self.transaction,
                          self.billing_provider, self.subscriber, self.patient, claim)


_ENVELOPE_IDS = frozenset({"ISA", "GS", "ST", "SE", "GE", "IEA", "TA1"})
_ISA_PROBLEMS = frozenset({"syntax-isa-length"})


def _open(source: Source) -> tuple[BinaryIO | None, Problem | None]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return io.BytesIO(bytes(source)), None
    if hasattr(source, "read"):
        return source, None  # type: ignore[return-value]
    path = Path(os.fspath(source))
    reason = None
    if path.is_dir():
        reason = f"{path} is a directory, not a file"
    elif not path.exists():
        reason = f"{path} does not exist"
    elif not path.is_file():
        reason = f"{path} is not a regular file"
    if reason is None:
        try:
            return open(path, "rb"), None
        except OSError as exc:
            reason = f"{path} cannot be opened: {exc.strerror or exc}"
    return None, Problem("file-unreadable", reason, "file", fatal=True)


def read(source: Source) -> Iterator[Event]:
    """Yield the events of an 837 source: a path, bytes, or a binary stream.

    Nothing about the input raises: a missing file, a directory, binary junk
    or a broken envelope comes out as a ``Problem`` (``fatal`` when nothing at
    all could be read), and reading goes on wherever it can.
    """
    stream, problem = _open(source)
    if problem is not None:
        yield problem
        return
    owned = not (hasattr(source, "read") or isinstance(source, (bytes, bytearray, memoryview)))
    try:
        yield from _Walker(stream).events()
    finally:
        if owned:
            stream.close()


def claims(events: Iterable[Event]) -> Iterator[ClaimRecord]:
    """Only the claims of an event stream."""
    for event in events:
        if event.__class__ is ClaimRecord:
            yield event
