"""Walk a stream of segments into the claim model, one claim at a time.

``read(source)`` yields, in document order: ``Interchange``, ``FunctionalGroup``,
``Transaction``, ``ClaimRecord`` and ``EnvelopeEnd`` records, and a ``Problem``
wherever the input is not what an 837 must be. Memory stays flat: a claim is
handed out when the next claim, HL or trailer begins, then forgotten.

Speed comes from not splitting what nobody asked about. The tokenizer passes
regular stretches of segments on as ``Run`` text; the walker splits only the
segments that open or close a loop or an envelope, and a claim keeps the rest
of its text, from which its lines and other loops are built the first time
they are read (``Claim``, ``ClaimSource``).

Who belongs to whom is decided by the HL tree (HL01 id, HL02 parent, HL03
level), as the 837 guides define it, not by where a segment happens to sit.
"""

from __future__ import annotations

import io
import itertools
import os
import re
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator, NamedTuple, Union

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
from scrubber.x12.tokenizer import CHUNK_SIZE, Run, Segment, SyntaxProblem, Tokenizer

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
_new = tuple.__new__
_UNSEEN = object()
# X12 R and N values: digits, an optional sign and decimal point, no exponent; at most 18
# digits (CLM02, SV102 are R 1/18), so no sum of them can overflow or grow without bound
_NUMBER = re.compile(r"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)", re.ASCII)
_NUMBER_TEXT = 20  # 18 digits, a sign and a point


def parse_date(text: str) -> date | None:
    """CCYYMMDD (or YYMMDD, read as 20YY) to a date; None when not a real date."""
    value = _dates.get(text, _UNSEEN)
    if value is not _UNSEEN:
        return value
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
    value = _decimals.get(text, _UNSEEN)  # charges are mostly new: no KeyError to raise
    if value is not _UNSEEN:
        return value
    value = None
    if text and len(text) <= _NUMBER_TEXT and _NUMBER.fullmatch(text) and \
            len(text) - text.startswith("-") - ("." in text) <= 18:
        try:
            value = Decimal(text)
        except (InvalidOperation, ValueError):
            value = None
    if len(_decimals) > 100000:
        _decimals.clear()
    _decimals[text] = value
    return value


def small_int(text: str, digits: int = 6) -> int | None:
    """A count or pointer of at most ``digits`` ASCII digits (LX01 is N0 1/6); else None.

    ``int()`` alone takes "\u00b2" (read from a Latin-1 byte) and raises on 4,300 digits.
    """
    return int(text) if len(text) <= digits and text.isascii() and text.isdigit() else None


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


SEGMENT_TEXT = 2000  # characters of a segment quoted in a problem: a report stays small
SYNTAX_LISTED = 100  # syntax problems of one kind listed in full per interchange


def _segment_text(seg: Segment, delimiters: Delimiters | None) -> str:
    sep = delimiters.element if delimiters else "*"
    text = sep.join(seg.elements)
    if len(text) > SEGMENT_TEXT:
        text = f"{text[:SEGMENT_TEXT]}... ({len(text) - SEGMENT_TEXT} more characters)"
    return text


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
        number = small_int(number_text)
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
                    pointers = tuple(n for n in (small_int(p) for p in el[7].split(component))
                                     if n is not None)
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


class ClaimSource(NamedTuple):
    """A claim's segments as read: CLM, then Segments and Runs, in order."""

    component: str  # the interchange's component separator
    pieces: tuple  # Segment | Run

    def segments(self) -> list[Segment]:
        return _select(self.pieces)

    def body(self) -> tuple:
        """The claim's fields after CLM, in the order ``Claim`` keeps them."""
        return claim_body(self.segments(), self.component)

    # equal when the segments are, however the reader happened to cut them into pieces
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ClaimSource):
            return NotImplemented
        return self.component == other.component and self.segments() == other.segments()

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    def __hash__(self) -> int:
        return hash(tuple(self.segments()))


def claim_from(clm: Segment, pieces: tuple, component: str) -> Claim:
    """A Claim from its CLM segment; ``pieces`` (CLM first) are built into the rest on demand."""
    el = clm[1] + _PAD
    clm05 = el[5].split(component)
    return Claim(
        el[1], parse_decimal(el[2]), el[2],  # id, charge, charge as sent
        clm05[0], clm05[1] if len(clm05) > 1 else "", clm05[2] if len(clm05) > 2 else "",
        el[6], el[7], el[8], el[9],  # signature, assignment, benefits, release of information
        _new(Location, (clm[2], clm[3], clm[4])),
        _new(ClaimSource, (component, pieces)),
    )


def claim_body(segments: list[Segment], component: str) -> tuple:
    """What a claim's segments say after CLM, as the tuple ``Claim`` keeps (see its properties)."""
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
    return (tuple(dates), tuple(diagnoses), tuple(codes), tuple(notes), tuple(attachments),
            tuple(references), institutional, tuple(providers), tuple(lines), tuple(segments))


def _party(seg: Segment | None) -> Party | None:
    if seg is None:
        return None
    el = seg[1] + _PAD
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
    first = name = dmg = _PAD
    found = payer = None
    current = ""  # NM101 of the last NM1
    for seg in segments:
        sid = seg[0]
        if sid == "NM1":
            el = seg[1] + _PAD
            current = el[1]
            if current == entity:
                found, name = seg, el
            elif current == "PR" and payer is None:
                payer = seg
        elif sid == "DMG":
            if current == entity:
                dmg = seg[1] + _PAD
        elif sid == head and first is _PAD:
            first = seg[1] + _PAD
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
        _party(payer),
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

    def __init__(self, stream: BinaryIO, chunk_size: int = CHUNK_SIZE):
        self.tokenizer = Tokenizer(stream, chunk_size)
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
        self.hl_tree = ("", "", "")  # HL01, HL02, HL03 of self.hl
        self.hl_segments: list[Segment | Run] = []  # the HL loop's segments, some unsplit
        self.providers: dict[str, BillingProvider] = {}
        self.subscribers: dict[str, Subscriber] = {}
        self.hl_levels: dict[str, str] = {}
        self.billing_provider: BillingProvider | None = None
        self.subscriber: Subscriber | None = None
        self.patient: Patient | None = None
        self.patient_is_subscriber = False  # after a 2000B: self.patient is made on demand
        self.claim_segments: list[Segment | Run] | None = None  # CLM and what follows it
        self.isa_problems: list[SyntaxProblem] = []  # about the ISA that comes next
        self.stray = 0
        self.syntax_seen: dict[str, int] = {}  # syntax problems of this interchange, by code
        self.out: list[Event] = []  # events not yet handed out
        self.emit = self.out.append

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
        # the methods below emit() their events into a list that is handed out here
        # after each item, which costs less than a chain of generators
        segment_class, run_class = Segment, Run
        out = self.out
        for item in self.tokenizer.items():
            cls = item.__class__
            if cls is run_class:
                yield from self.run(item)
            elif cls is segment_class:
                self.segment(item)
            elif item.code in _ISA_PROBLEMS:
                self.isa_problems.append(item)
            else:
                self.syntax(item)
            if out:
                yield from out
                out.clear()
        self.finish()
        yield from out
        out.clear()

    def segment(self, seg: Segment) -> None:
        """One segment, wherever it stands."""
        sid = seg[0]
        if self.claim_segments is not None:
            if sid not in _BOUNDARY_IDS:
                self.claim_segments.append(seg)
                return
            self.end_claim()
        if self.st is not None and sid not in _ENVELOPE_IDS:
            if not self.kind:
                return  # inside a transaction set we do not read
            if sid == "CLM":
                self.begin_claim(seg)
            elif sid == "HL":
                self.begin_hl(seg)
            elif self.hl is not None:
                self.hl_segments.append(seg)
            else:
                self.header.append(seg)
            return
        self.envelope(seg)

    def run(self, run: Run) -> Iterator[Event]:
        """A Run: only the segments that open or close a loop or envelope are split.

        Between two of them, every segment goes to the same place: the claim in
        hand takes them as a piece of the Run, unsplit; an HL loop or the header
        takes them as Segments. Events go out claim by claim, not at the end of
        the Run: a consumer that builds each claim's lines would otherwise keep
        a whole Run's worth alive, and the garbage collector would scan them all.
        """
        out = self.out
        text, joint, sep = run.text, run.joint, run.separator
        step, inc = len(joint), run.lines_per_segment
        term = joint[0]  # once per joint in a Run, and a one-character count is faster
        first, finder = _boundary_patterns(joint, sep)
        matches = finder.finditer(text)
        opening = first.match(text)
        cursor = 0  # where the next segment not yet handled starts
        ordinal = run.ordinal
        new, segment_class = tuple.__new__, Segment
        for match in (matches if opening is None else itertools.chain((opening,), matches)):
            start = match.start(1)
            if start > cursor:
                self.plain(run.slice(cursor, start - step, ordinal))
                ordinal += text.count(term, cursor, start - step) + 1
            end = text.find(joint, start)
            if end < 0:
                end = len(text)
            elements = text[start:end].split(sep)
            self.segment(new(segment_class, (
                elements[0], tuple(elements), ordinal,
                run.line + (ordinal - run.ordinal) * inc, run.offset + start, end - start)))
            if out:
                yield from out
                out.clear()
            ordinal += 1
            cursor = end + step
        if cursor < len(text):
            self.plain(run.slice(cursor, len(text), ordinal))

    def plain(self, run: Run) -> None:
        """Segments none of which opens or closes a loop or an envelope."""
        if self.claim_segments is not None:
            self.claim_segments.append(run)
        elif self.st is not None and self.kind and self.hl is not None:
            self.hl_segments.append(run)
        elif self.st is not None and not self.kind:
            return  # inside a transaction set we do not read
        else:
            for seg in run.segments():
                self.segment(seg)

    def syntax(self, item: SyntaxProblem) -> None:
        """A syntax problem, in full the first SYNTAX_LISTED times per interchange, then counted.

        4,096 NUL bytes are 4,095 empty segments: one problem each made a report
        of a megabyte from a 7 KB input.
        """
        seen = self.syntax_seen[item.code] = self.syntax_seen.get(item.code, 0) + 1
        if seen <= SYNTAX_LISTED or item.fatal:
            self.emit(self.syntax_problem(item))

    def syntax_counted(self) -> None:
        """One problem for each kind of syntax problem beyond those listed in full."""
        for code, seen in self.syntax_seen.items():
            if seen > SYNTAX_LISTED:
                control = self.interchange.control_number if self.interchange else None
                self.emit(Problem(
                    code, f"{seen - SYNTAX_LISTED} more problems like the above ({code}) in "
                    f"interchange {control} were not listed one by one",
                    "interchange" if self.interchange else "file",
                    self.interchange.location if self.interchange else None, control))
        self.syntax_seen = {}

    def syntax_problem(self, item: SyntaxProblem) -> Problem:
        envelope = "interchange" if self.interchange is not None else "file"
        return Problem(
            code=item.code, message=item.message, envelope=envelope,
            location=Location(0, item.line, item.offset),
            control_number=self.interchange.control_number if self.interchange else None,
            fatal=item.fatal,
        )

    def envelope(self, seg: Segment) -> None:
        sid = seg.id
        if sid == "ISA":
            if self.interchange is not None:
                self.close_interchange(seg, closed=False)
            self.syntax_counted()  # those before this ISA, outside any interchange
            self.delimiters = self.tokenizer.delimiters
            self.interchange_count += 1
            self.interchange = _interchange(seg, self.delimiters, self.interchange_count)
            self.group_count = 0
            self.stray = 0  # segments outside any transaction set in this interchange
            self.emit(self.interchange)
            for item in self.isa_problems:
                self.emit(self.syntax_problem(item))
            self.isa_problems.clear()
            if self.interchange.version != "00501":
                self.emit(self.problem(
                    "env-isa-version",
                    f"ISA12 is {self.interchange.version!r}, but a 5010 837 travels in a 00501 "
                    "interchange; set ISA12 to 00501", "interchange", seg))
        elif sid == "GS":
            if self.interchange is None:
                self.emit(self.problem("env-outside-interchange",
                                       "GS outside any interchange (no ISA before it)", "file",
                                       seg))
            if self.group is not None:
                self.close_group(seg, closed=False)
            self.group = _group(seg)
            self.group_count += 1
            self.set_count = 0
            self.emit(self.group)
        elif sid == "ST":
            if self.st is not None:
                self.close_transaction(seg, closed=False)
            if self.group is None:
                self.emit(self.problem("env-outside-group",
                                       "ST outside any functional group (no GS before it)",
                                       "interchange", seg))
            self.set_count += 1
            self.begin_transaction(seg)
        elif sid == "SE":
            if self.st is None:
                self.emit(self.problem("env-unexpected-trailer", "SE without a matching ST",
                                       "group", seg))
                return
            self.close_transaction(seg, closed=True)
        elif sid == "GE":
            if self.st is not None:
                self.close_transaction(seg, closed=False)
            if self.group is None:
                self.emit(self.problem("env-unexpected-trailer", "GE without a matching GS",
                                       "interchange", seg))
                return
            self.close_group(seg, closed=True)
        elif sid == "IEA":
            if self.interchange is None:
                self.emit(self.problem("env-unexpected-trailer", "IEA without a matching ISA",
                                       "file", seg))
                return
            self.close_interchange(seg, closed=True)
        elif sid == "TA1":
            return  # an interchange acknowledgement request answer; nothing to read
        else:
            if sid[:3] == "CLM" and not sid[3:4].isalnum():
                self.stray_claim(seg)
                return
            # Report the first stray segment of an interchange in full and count the rest:
            # a file whose body uses other delimiters than its ISA declares would
            # otherwise give one problem per segment.
            self.stray += 1
            if self.stray > 1:
                return
            envelope = "group" if self.group else "interchange" if self.interchange else "file"
            other = next((ch for ch in sid[2:] if not ch.isalnum()), None)
            if other is not None and self.delimiters is not None:
                self.emit(self.problem(
                    "env-wrong-delimiter",
                    f"segments here use {other!r} between elements, but the ISA declares "
                    f"{self.delimiters.element!r}: the interchange cannot be read. Make the "
                    "ISA's element separator (its 4th character) match the body, or re-export "
                    "the file", envelope, seg))
            else:
                self.emit(self.problem(
                    "env-outside-transaction",
                    f"segment {sid} stands outside any transaction set (between envelopes); "
                    "it was ignored", envelope, seg))

    def stray_claim(self, seg: Segment) -> None:
        """A CLM outside any transaction set: a located problem of its own, never a count.

        Each such claim is named, so that a damaged file accounts for every claim
        it holds; its id is read with any separator the segment uses.
        """
        sep = seg.id[3:4] or (self.delimiters.element if self.delimiters else "*")
        claim_id = seg.get(1) if len(seg.id) == 3 else seg.id[4:].split(sep, 1)[0]
        envelope = "group" if self.group else "interchange" if self.interchange else "file"
        self.emit(self.problem(
            "env-claim-outside-transaction",
            f"claim {claim_id[:38]!r} stands outside any transaction set (its ST, GS or ISA is "
            "missing or out of order): it was not scrubbed. Put it inside an ST...SE of a "
            "GS...GE group, or re-export the file", envelope, seg))

    # -- transaction sets --------------------------------------------------
    def begin_transaction(self, st: Segment) -> None:
        self.st = st
        self.header = []
        self.transaction = None
        self.hl = None
        self.hl_segments = []
        self.providers.clear()
        self.subscribers.clear()
        self.hl_levels.clear()
        self.billing_provider = self.subscriber = self.patient = None
        self.patient_is_subscriber = False
        version = st.get(3) or (self.group.version if self.group else "")
        set_id = st.get(1)
        self.kind = VERSIONS.get(version, "") if set_id == "837" else ""
        if self.kind:
            return  # the Transaction is yielded once its BHT and 1000A/B are read
        self.transaction = self.make_transaction()
        self.emit(self.transaction)
        if set_id != "837":
            what = {"835": "an 835 remittance advice", "277": "a 277 claim status",
                    "999": "a 999 acknowledgement", "270": "a 270 eligibility inquiry",
                    "834": "an 834 enrollment"}.get(set_id, f"transaction set {set_id!r}")
            self.emit(self.problem(
                "env-unsupported-transaction",
                f"ST01 is {set_id!r}: this is {what}, not an 837 claim; it was not read. "
                "Send 837P (005010X222A1) or 837I (005010X223A2) claims.",
                "transaction", st))
        elif version not in VERSIONS:
            self.emit(self.problem(
                "env-unsupported-version",
                f"837 version {version!r} is not 5010 (005010X222A1 professional or "
                "005010X223A2 institutional); it was not read. Convert the claims to 5010.",
                "transaction", st))

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

    def close_transaction(self, at: Segment, closed: bool) -> None:
        st = self.st
        if self.transaction is None:
            self.transaction = self.make_transaction()
            self.emit(self.transaction)
        if self.hl is not None:
            self.end_hl()
        control = st.get(2)
        count = at.ordinal - st.ordinal + 1 if closed else 0  # ST through SE
        if not closed:
            where = "the end of the file" if at is None else f"{at.id} at line {at.line}"
            self.emit(self.problem(
                "env-missing-se",
                f"transaction set {control} (ST at line {st.line}) has no SE before {where}: "
                "the file is truncated or the trailer was lost; resend the whole batch",
                "transaction", st))
        else:
            if at.get(2) != control:
                self.emit(self.problem(
                    "env-se-control",
                    f"SE02 {at.get(2)!r} does not match ST02 {control!r}; set SE02 to {control}",
                    "transaction", at, control=control))
            if at.get(1) != str(count):
                self.emit(self.problem(
                    "env-se-count",
                    f"SE01 says {at.get(1)!r} segments but the transaction set has "
                    f"{count} (ST through SE); set SE01 to {count}",
                    "transaction", at, control=control))
        self.emit(EnvelopeEnd("transaction", control, closed,
                              Location.of(at) if at is not None else None, count))
        self.st = None
        self.kind = ""
        self.transaction = None

    # -- functional groups and interchanges ----------------------------------
    def close_group(self, at: Segment | None, closed: bool) -> None:
        if self.st is not None:
            self.close_transaction(at, closed=False)
        group = self.group
        control = group.control_number
        if not closed:
            where = "the end of the file" if at is None else f"{at.id} at line {at.line}"
            self.emit(self.problem(
                "env-missing-ge",
                f"functional group {control} (GS at line {group.location.line}) has no GE "
                f"before {where}; the file is truncated or the trailer was lost",
                "group", at, control=control,
                location=group.location if at is None else None))
        else:
            if at.get(2) != control:
                self.emit(self.problem(
                    "env-ge-control",
                    f"GE02 {at.get(2)!r} does not match GS06 {control!r}; set GE02 to {control}",
                    "group", at, control=control))
            if at.get(1) != str(self.set_count):
                self.emit(self.problem(
                    "env-ge-count",
                    f"GE01 says {at.get(1)!r} transaction sets but the group has "
                    f"{self.set_count}; set GE01 to {self.set_count}",
                    "group", at, control=control))
        self.emit(EnvelopeEnd("group", control, closed,
                              Location.of(at) if at is not None else None, self.set_count))
        self.group = None

    def close_interchange(self, at: Segment | None, closed: bool) -> None:
        if self.claim_segments is not None:
            self.end_claim()
        if self.group is not None:
            self.close_group(at, closed=False)
        elif self.st is not None:
            self.close_transaction(at, closed=False)
        ic = self.interchange
        control = ic.control_number
        if self.stray > 1:
            self.emit(self.problem(
                "env-outside-transaction",
                f"{self.stray - 1} more segments outside any transaction set were ignored in "
                f"interchange {control}", "interchange", None, control=control,
                location=ic.location))
        self.syntax_counted()
        if not closed:
            where = "the end of the file" if at is None or at.id != "ISA" else \
                f"the next ISA at line {at.line}"
            self.emit(self.problem(
                "env-missing-iea",
                f"interchange {control} (ISA at line {ic.location.line}) has no IEA before "
                f"{where}; the file is truncated or the trailer was lost",
                "interchange", None, control=control, location=ic.location))
        else:
            if at.get(2) != control:
                self.emit(self.problem(
                    "env-iea-control",
                    f"IEA02 {at.get(2)!r} does not match ISA13 {control!r}; set IEA02 to "
                    f"{control}", "interchange", at, control=control))
            if at.get(1) != str(self.group_count):
                self.emit(self.problem(
                    "env-iea-count",
                    f"IEA01 says {at.get(1)!r} functional groups but the interchange has "
                    f"{self.group_count}; set IEA01 to {self.group_count}",
                    "interchange", at, control=control))
        self.emit(EnvelopeEnd("interchange", control, closed,
                              Location.of(at) if at is not None and closed else None,
                              self.group_count))
        self.interchange = None

    def finish(self) -> None:
        if self.interchange is not None:
            self.close_interchange(None, closed=False)
        self.syntax_counted()

    # -- the HL tree -----------------------------------------------------------
    def begin_hl(self, hl: Segment) -> None:
        if self.transaction is None:
            self.transaction = self.make_transaction()
            self.emit(self.transaction)
        if self.hl is not None:
            self.end_hl()
        self.hl = hl
        self.hl_segments = []
        el = hl[1] + _PAD
        hl_id, parent, level = self.hl_tree = el[1], el[2], el[3]
        if level == "20":
            if parent:
                self.emit(self.problem(
                    "env-hl-parent",
                    f"billing provider HL {hl_id} names a parent ({parent}); a 2000A HL has "
                    "none", "transaction", hl))
        elif level in ("22", "23"):
            want = "20" if level == "22" else "22"
            if self.hl_levels.get(parent) != want:
                what = "billing provider (20)" if want == "20" else "subscriber (22)"
                self.emit(self.problem(
                    "env-hl-parent",
                    f"HL {hl_id} (level {level}) names parent {parent!r}, which is not a "
                    f"{what} HL seen before it; fix HL02. The nearest preceding {what} "
                    "was used.", "transaction", hl))
        else:
            self.emit(self.problem(
                "env-hl-level",
                f"HL {hl_id} has level code {level!r}; an 837 uses 20 (billing provider), "
                "22 (subscriber) and 23 (patient)", "transaction", hl))
        self.hl_levels[hl_id] = level
        if len(self.hl_levels) > _HL_LIMIT:
            for key in list(self.hl_levels)[: _HL_LIMIT // 2]:
                if self.hl_levels[key] != "20":
                    del self.hl_levels[key]
                    self.subscribers.pop(key, None)

    def end_hl(self) -> None:
        """Freeze the entity of the HL loop in hand and make it the current one."""
        hl, pieces = self.hl, self.hl_segments
        hl_id, parent, level = self.hl_tree
        if level == "20":
            provider = build_billing_provider(hl, _select(pieces))
            self.providers[hl_id] = provider
            self.billing_provider = provider
            self.subscriber = self.patient = None
            self.patient_is_subscriber = False
        elif level == "22":
            self.billing_provider = self.providers.get(parent, self.billing_provider)
            sub = build_subscriber(hl, _select(pieces, _SUBSCRIBER_IDS))
            self.subscribers[hl_id] = sub
            self.subscriber = sub
            self.patient = None  # the subscriber, made a Patient when a claim needs it
            self.patient_is_subscriber = True
        elif level == "23":
            sub = self.subscribers.get(parent, self.subscriber)
            if sub is not None and sub is not self.subscriber:
                self.subscriber = sub
            self.patient = build_patient(hl, _select(pieces, _PATIENT_IDS), sub)
            self.patient_is_subscriber = False
        self.hl = None
        self.hl_segments = []

    # -- claims ----------------------------------------------------------------
    def begin_claim(self, clm: Segment) -> None:
        if self.hl is not None:
            self.end_hl()
        if self.transaction is None:
            self.transaction = self.make_transaction()
            self.emit(self.transaction)
        self.claim_segments = [clm]

    def end_claim(self) -> None:
        segments = self.claim_segments
        self.claim_segments = None
        claim = claim_from(segments[0], tuple(segments), self.delimiters.component)
        if self.patient is None and self.patient_is_subscriber:
            self.patient = patient_from_subscriber(self.subscriber)
        if self.patient is None:
            self.emit(self.problem(
                "env-claim-without-patient",
                f"claim {claim.id!r} (CLM at line {segments[0].line}) is not inside a "
                "subscriber or patient HL loop", "transaction", segments[0]))
        self.emit(ClaimRecord(self.interchange, self.group, self.transaction,
                              self.billing_provider, self.subscriber, self.patient, claim))


_ENVELOPE_IDS = frozenset({"ISA", "GS", "ST", "SE", "GE", "IEA", "TA1"})
_BOUNDARY_IDS = _ENVELOPE_IDS | {"CLM", "HL"}  # segments that end a claim
_patterns: dict[tuple[str, str], tuple[re.Pattern, re.Pattern]] = {}
_SUBSCRIBER_IDS = frozenset({"SBR", "NM1", "DMG"})  # what build_subscriber reads
_PATIENT_IDS = frozenset({"PAT", "NM1", "DMG"})  # what build_patient reads


def _select(pieces: list | tuple, ids: frozenset[str] | None = None) -> list[Segment]:
    """The Segments of ``pieces`` (Segments and Runs) whose id is in ``ids`` (None: all)."""
    out: list[Segment] = []
    for piece in pieces:
        if piece.__class__ is Run:
            out.extend(piece.iter_segments() if ids is None else piece.select(ids))
        elif ids is None or piece[0] in ids:
            out.append(piece)
    return out


def _boundary_patterns(joint: str, sep: str) -> tuple[re.Pattern, re.Pattern]:
    """Regexes for a boundary segment at the start of a Run's text, and after a joint."""
    try:
        return _patterns[joint, sep]
    except KeyError:
        pass
    ids = "|".join(sorted(_BOUNDARY_IDS - {"ISA", "IEA"}))  # a Run never holds those
    tail = f"(?:{re.escape(sep)}|{re.escape(joint)}|\\Z)"
    patterns = (re.compile(f"((?:{ids}){tail})"),
                re.compile(f"{re.escape(joint)}((?:{ids}){tail})"))
    _patterns[joint, sep] = patterns
    return patterns
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
