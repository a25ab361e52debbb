"""A claim's body: what its segments say after CLM, read into the claim model.

The walker keeps a claim's segments as sent (``ClaimSource``); this is what
turns them into dates, diagnoses, providers and service lines, the first time
anyone asks. 2320/2330 (other payers) are skipped: they are not this claim's.
``line_keys`` reads the little the day index keeps of each line through the
same 2400 loop reader (``_LineBuilder``), without building the rest.
"""

from __future__ import annotations

from datetime import date
from typing import NamedTuple

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
    one_day,
)
from scrubber.model.values import PAD, date_range, parse_decimal, small_int
from scrubber.x12.tokenizer import Segment

_DIAGNOSIS_QUALIFIERS = frozenset(
    {"ABK", "ABF", "ABJ", "APR", "ABN", "BK", "BF", "BJ", "PR", "BN"}
)
_PAD_LIST = [""] * 8
_new = tuple.__new__
#: LX01 as most files send it ("1".."50"), read as ``small_int`` would read it
_LINE_NUMBERS = {str(n): n for n in range(1, 1000)}
#: SV107 texts ("1", "1:2" ...) already read into their pointers, per component separator
_POINTERS: dict[tuple[str, str], tuple[int, ...]] = {}


def _line_number(text: str) -> int | None:
    number = _LINE_NUMBERS.get(text)
    return number if number is not None else small_int(text)


def _pointers(text: str, component: str) -> tuple[int, ...]:
    """SV107's diagnosis pointers (those that are numbers), read once per text."""
    pointers = _POINTERS.get((text, component))
    if pointers is None:
        if len(_POINTERS) > 10000:
            _POINTERS.clear()
        pointers = _POINTERS[text, component] = tuple(
            n for n in (small_int(p) for p in text.split(component)) if n is not None)
    return pointers


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


def _service(svc: Segment) -> tuple[str, ...]:
    """SV1 (837P) or SV2 (837I) elements in one order: SV201 revenue code, the procedure
    composite, charge, unit basis, units (as sent), SV105 place of service, SV107 pointers."""
    el = svc.elements + PAD
    if svc.id == "SV1":
        composite, charge_text, basis, units_text, pos = el[1:6]
        return "", composite, charge_text, basis, units_text, pos, el[7]
    revenue, composite, charge_text, basis, units_text = el[1:6]
    return revenue, composite, charge_text, basis, units_text, "", ""


def _procedure(composite: str, component: str) -> tuple[str, str, tuple[str, ...], str]:
    """SV101 / SV202: qualifier, procedure code, modifiers (blanks dropped), description."""
    parts = composite.split(component) + _PAD_LIST
    return parts[0], parts[1], tuple(filter(None, parts[2:6])) if parts[2] else (), parts[6]


_NO_SERVICE = ("", "", "", "", "", "", "")


class LineKey(NamedTuple):
    """What the day index keeps of a service line (``line_keys``); as ``ServiceLine`` reads it."""

    number: int | None  # LX01
    procedure: str  # SV101-2 / SV202-2
    modifiers: tuple[str, ...]  # SV101-3..6 / SV202-3..6, blanks dropped
    units_text: str  # SV104 / SV205 as sent
    dated: bool  # the line has a DTP*472
    day: date | None  # its single day (ServiceLine.date_of_service)
    location: Location  # SV1 / SV2, or LX when the line has neither


class _LineBuilder:
    """Collects one 2400 loop; becomes a frozen ServiceLine, or the LineKey of one."""

    __slots__ = ("lx", "service", "dates", "notes", "attachments", "references", "providers",
                 "sub_loop", "pending_provider")

    def __init__(self, lx: Segment):
        self.lx = lx
        self.service: Segment | None = None
        self.dates: list[Segment] = []  # DTP, read when built
        self.notes: list[Note] = []
        self.attachments: list[Attachment] = []
        self.references: list[Reference] = []
        self.providers: list[Provider] = []
        self.sub_loop = False  # inside 2410/2420/2430/2440, whose DTP/REF are not the line's
        self.pending_provider: Segment | None = None

    def take(self, sid: str, seg: Segment) -> None:
        """Add a segment that follows the LX (segment ``sid``) to the loop."""
        if sid == "SV1" or sid == "SV2":
            if self.service is None:
                self.service = seg
        elif sid == "DTP":
            if not self.sub_loop:
                self.dates.append(seg)
        elif sid == "NTE":
            self.notes.append(_note(seg))
        elif sid == "PWK":
            self.attachments.append(_pwk(seg))
        elif sid == "REF":
            if not self.sub_loop:
                self.references.append(_ref(seg))
        elif sid == "NM1":
            if self.pending_provider is not None:
                self.providers.append(_provider(self.pending_provider))
            self.sub_loop = True
            self.pending_provider = seg
        elif sid == "PRV":
            if self.pending_provider is not None:
                self.providers.append(_provider(self.pending_provider, seg.get(3)))
                self.pending_provider = None
        elif sid in ("LIN", "SVD", "LQ"):
            if self.pending_provider is not None:
                self.providers.append(_provider(self.pending_provider))
                self.pending_provider = None
            self.sub_loop = True

    def _served(self) -> int:
        """Which of the line's DTP is its date of service: the first DTP*472 (-1: none)."""
        for i, seg in enumerate(self.dates):
            if seg.get(1) == "472":
                return i
        return -1

    def key(self, component: str) -> LineKey:
        """What the day index keeps of the line: the same fields ``build`` reads."""
        svc = self.service
        _, composite, _, _, units_text, _, _ = _NO_SERVICE if svc is None else _service(svc)
        _, procedure, modifiers, _ = _procedure(composite, component)
        served = self._served()
        day = None
        if served >= 0:
            _, _, fmt, text = (self.dates[served].elements + PAD)[:4]
            day = one_day(*date_range(fmt, text))
        return _new(LineKey, (_line_number(self.lx.get(1)), procedure, modifiers, units_text,
                              served >= 0, day, Location.of(self.lx if svc is None else svc)))

    def build(self, component: str) -> ServiceLine:
        if self.pending_provider is not None:
            self.providers.append(_provider(self.pending_provider))
        svc = self.service
        revenue, composite, charge_text, basis, units_text, pos, pointer_text = \
            _NO_SERVICE if svc is None else _service(svc)
        qualifier, procedure, modifiers, description = _procedure(composite, component)
        pointers = _pointers(pointer_text, component) if pointer_text else ()
        dates = tuple(map(_dtp, self.dates))
        date_from = date_to = None
        served = self._served()
        if served >= 0:
            date_from, date_to = dates[served].start, dates[served].end
        control = ""
        for ref in self.references:
            if ref.qualifier == "6R":
                control = ref.value
                break
        return ServiceLine(
            _line_number(self.lx.get(1)), qualifier, procedure, modifiers, description, revenue,
            parse_decimal(charge_text), charge_text, basis, parse_decimal(units_text),
            units_text, pos, pointers, date_from, date_to, dates,
            tuple(self.notes), tuple(self.attachments), tuple(self.references), control,
            tuple(self.providers), Location.of(self.lx),
            Location.of(svc) if svc is not None else None,
        )


#: the segments ``line_keys`` reads: the 2400 loop's LX, SV1/SV2 and DTP, the segments that
#: open its sub-loops (whose DTP are not the line's), and the 2300 DTP up to 2320's SBR
LINE_KEY_IDS = frozenset({"LX", "SV1", "SV2", "DTP", "NM1", "LIN", "SVD", "LQ", "SBR"})


def line_keys(segments: list[Segment], component: str
              ) -> tuple[DateValue | None, list[LineKey]]:
    """The claim's statement period (its DTP*434, as ``Claim.date("434")``) and the LineKey
    of each service line, from its ``LINE_KEY_IDS`` segments (or all), as ``claim_body``
    reads them but without building the body."""
    statement = None
    keys = []
    line: _LineBuilder | None = None
    in_cob = False  # 2320/2330: other payers' data, not this claim's
    for seg in segments:
        sid = seg.id
        if sid == "LX":
            if line is not None:
                keys.append(line.key(component))
            line = _LineBuilder(seg)
        elif line is not None:
            line.take(sid, seg)
        elif sid == "SBR":
            in_cob = True
        elif sid == "DTP" and not in_cob and statement is None and seg.get(1) == "434":
            statement = _dtp(seg)
    if line is not None:
        keys.append(line.key(component))
    return statement, keys


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
            line.take(sid, seg)
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
