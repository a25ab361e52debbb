"""A claim's body: what its segments say after CLM, read into the claim model.

The walker keeps a claim's segments as sent (``ClaimSource``); this is what
turns them into dates, diagnoses, providers and service lines, the first time
anyone asks. 2320/2330 (other payers) are skipped: they are not this claim's.
"""

from __future__ import annotations

from scrubber.model.claims import (
    Attachment,
    CodeValue,
    DateValue,
    Diagnosis,
    Institutional,
    Location,
    Note,
    Provider,
    Reference,
    ServiceLine,
)
from scrubber.model.values import PAD, date_range, parse_decimal, small_int
from scrubber.x12.tokenizer import Segment

_DIAGNOSIS_QUALIFIERS = frozenset(
    {"ABK", "ABF", "ABJ", "APR", "ABN", "BK", "BF", "BJ", "PR", "BN"}
)
_PAD_LIST = [""] * 8


def _dtp(seg: Segment) -> DateValue:
    qualifier, fmt, text = (seg.elements + PAD)[1:4]
    start, end = date_range(fmt, text)
    return DateValue(qualifier, fmt, text, start, end, Location.of(seg))


def _note(seg: Segment) -> Note:
    el = seg.elements + PAD
    return Note(el[1], el[2], Location.of(seg))


def _pwk(seg: Segment) -> Attachment:
    el = seg.elements + PAD
    return Attachment(el[1], el[2], el[6], Location.of(seg))


def _ref(seg: Segment) -> Reference:
    el = seg.elements + PAD
    return Reference(el[1], el[2], Location.of(seg))


def _provider(seg: Segment, taxonomy: str = "") -> Provider:
    npi = seg.get(9) if seg.get(8) == "XX" else ""
    return Provider(seg.get(1), seg.get(2), seg.get(3), seg.get(4), npi, taxonomy, Location.of(seg))


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
            el = svc.elements + PAD
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
