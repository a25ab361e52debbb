"""The claim model: frozen records of what an 837 says, and where it says it.

Every record keeps a ``Location`` so that a finding about it can point at the
segment, the line and the byte in the source file. Money and units are
``Decimal``; the text as sent is kept beside them, because a 277CA and a
person fixing the file both need it exactly as it was.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from datetime import date
from decimal import Decimal
from types import FunctionType
from typing import TYPE_CHECKING, Any, NamedTuple

from scrubber.x12.delimiters import Delimiters
from scrubber.x12.tokenizer import Segment

if TYPE_CHECKING:
    from scrubber.model.claim_source import ClaimSource

_new = tuple.__new__

#: the claim kinds, professional and institutional, in the order reports list them
KINDS = ("837P", "837I")
#: CLM05-3 frequency codes of a claim that changes an earlier one: 7 replacement, 8 void
CHANGE_FREQUENCIES = ("7", "8")
#: where a service line's fields stand in each kind: SV1 (837P) or SV2 (837I)
_SERVICE_ELEMENTS = {
    "837P": {"procedure": "SV101", "unit_basis": "SV103", "units": "SV104"},
    "837I": {"procedure": "SV202", "unit_basis": "SV204", "units": "SV205"},
}


def service_element(kind: str, field: str) -> str:
    """The X12 element that holds a service line's ``field`` (procedure, unit_basis, units)
    in a claim of ``kind``, for findings to point at: SV101 on an 837P, SV202 on an 837I."""
    return _SERVICE_ELEMENTS[kind][field]


def procedure_element(kind: str, part: int = 2) -> str:
    """The component of the procedure element: "SV101-2" (the code) on an 837P, "SV202-2" on
    an 837I; ``part`` 3 to 6 are its modifiers."""
    return f"{service_element(kind, 'procedure')}-{part}"
_NO_VALUE = object()  # a default_factory field left to its factory


class Location(NamedTuple):
    """Where a record starts in the source (immutable; a tuple because there are many)."""

    segment: int  # ordinal of the segment in its interchange (ISA = 1)
    line: int  # physical line, 1-based
    offset: int  # byte offset in the source

    @classmethod
    def of(cls, segment: Segment) -> Location:
        return _new(cls, (segment[2], segment[3], segment[4]))

    def as_dict(self) -> dict:
        return {"segment": self.segment, "line": self.line, "offset": self.offset}


@dataclass(frozen=True, slots=True)
class Problem:
    """Something wrong with the input itself, not with a claim's content.

    ``envelope`` says which envelope it belongs to (file, interchange, group,
    transaction) and ``control_number`` which one of them.
    """

    code: str  # stable id, e.g. "env-missing-se"
    message: str  # what is wrong and what to do
    envelope: str  # "file" | "interchange" | "group" | "transaction"
    location: Location | None = None
    control_number: str | None = None
    segment_text: str | None = None
    fatal: bool = False  # nothing could be read from the input

    def as_dict(self) -> dict:
        return {
            "code": self.code,
            "message": self.message,
            "envelope": self.envelope,
            "control_number": self.control_number,
            "location": self.location.as_dict() if self.location else None,
            "segment_text": self.segment_text,
        }


@dataclass(frozen=True, slots=True)
class Interchange:
    """ISA: who sent the interchange to whom, and how it is delimited."""

    sender_qualifier: str  # ISA05
    sender_id: str  # ISA06, trailing pad removed
    receiver_qualifier: str  # ISA07
    receiver_id: str  # ISA08
    date: date | None  # ISA09 (YYMMDD)
    time: str  # ISA10 (HHMM)
    version: str  # ISA12
    control_number: str  # ISA13
    ack_requested: str  # ISA14
    usage: str  # ISA15: P production, T test
    delimiters: Delimiters
    location: Location
    ordinal: int = 1  # 1 for the first interchange of the source


@dataclass(frozen=True, slots=True)
class FunctionalGroup:
    """GS: a batch of transaction sets of one kind."""

    functional_id: str  # GS01 (HC for claims)
    sender: str  # GS02
    receiver: str  # GS03
    date: date | None  # GS04
    time: str  # GS05
    control_number: str  # GS06
    version: str  # GS08
    location: Location


@dataclass(frozen=True, slots=True)
class Party:
    """A named party identified by an id: submitter, receiver, payer."""

    name: str  # NM103
    id_qualifier: str  # NM108
    id: str  # NM109


@dataclass(frozen=True, slots=True)
class Transaction:
    """ST..SE: one 837 transaction set, with its BHT header and 1000A/B parties."""

    kind: str  # "837P" or "837I"
    set_id: str  # ST01
    control_number: str  # ST02
    version: str  # ST03, or GS08 when ST03 is absent
    purpose: str  # BHT02: 00 original, 18 reissue
    reference: str  # BHT03: the submitter's batch reference
    created: date | None  # BHT04
    created_time: str  # BHT05
    claim_type: str  # BHT06: CH chargeable, RP reporting
    submitter: Party | None  # 1000A NM1*41
    receiver: Party | None  # 1000B NM1*40
    location: Location


@dataclass(frozen=True, slots=True)
class Address:
    line1: str  # N301
    line2: str  # N302
    city: str  # N401
    state: str  # N402
    postal_code: str  # N403


@dataclass(frozen=True, slots=True)
class BillingProvider:
    """2000A/2010AA: who bills; the NPI every payer keys on."""

    hl_id: str  # HL01
    entity_type: str  # NM102: 1 person, 2 organisation
    name: str  # NM103 (organisation or last name)
    first_name: str  # NM104
    npi: str  # NM109 when NM108 = XX
    tax_id: str  # REF*EI or REF*SY
    taxonomy: str  # PRV*BI*PXC
    address: Address | None
    location: Location
    segments: tuple = ()  # the 2000A/2010AA segments as read, so findings can quote them


@dataclass(frozen=True, slots=True)
class Subscriber:
    """2000B/2010BA: the insured member; 2010BB names the payer."""

    hl_id: str  # HL01
    payer_responsibility: str  # SBR01: P primary, S secondary ...
    relationship: str  # SBR02: 18 self, when the subscriber is the patient
    group_number: str  # SBR03
    claim_filing: str  # SBR09
    member_id: str  # NM109 of NM1*IL
    last_name: str  # NM103
    first_name: str  # NM104
    middle_name: str  # NM105
    birth_date: date | None  # DMG02
    gender: str  # DMG03
    payer: Party | None  # 2010BB NM1*PR
    has_dependents: bool  # HL04 = 1
    location: Location


@dataclass(frozen=True, slots=True)
class Patient:
    """The person treated: 2000C/2010CA when not the subscriber, else the subscriber."""

    hl_id: str  # HL01 of 2000C, or of 2000B when the subscriber is the patient
    is_subscriber: bool
    relationship: str  # PAT01 (2000C); "18" (self) otherwise
    member_id: str  # the subscriber's member id: 5010 has no patient id
    last_name: str
    first_name: str
    middle_name: str
    birth_date: date | None
    gender: str
    location: Location


@dataclass(frozen=True, slots=True)
class DateValue:
    """DTP: a date or a date range under its qualifier."""

    qualifier: str  # DTP01: 472 service, 434 statement, 435 admission, 431 onset ...
    format: str  # DTP02: D8 or RD8 (DT with time for 435)
    text: str  # DTP03 as sent
    start: date | None  # None when it is not a real date
    end: date | None  # same as start for D8
    location: Location


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """One HI composite whose qualifier names a diagnosis code list."""

    qualifier: str  # ABK principal, ABF other, ABJ admitting, APR reason for visit; BK/BF ICD-9
    code: str  # without a dot, as the guide requires
    position: int  # 1-based order across the claim's diagnosis composites (SV107 points here)
    location: Location


@dataclass(frozen=True, slots=True)
class CodeValue:
    """Any other HI composite: condition, occurrence, value codes, procedures (837I)."""

    qualifier: str
    code: str
    date_format: str
    date_text: str
    amount: str
    location: Location


@dataclass(frozen=True, slots=True)
class Note:
    """NTE: free text under a qualifier (ADD additional information, ...)."""

    qualifier: str  # NTE01
    text: str  # NTE02
    location: Location


@dataclass(frozen=True, slots=True)
class Attachment:
    """PWK: paperwork that backs the claim or line."""

    report_type: str  # PWK01: 09 progress report, NN nursing notes, OZ support data ...
    transmission: str  # PWK02: BM by mail, EL electronic, FX fax ...
    control_number: str  # PWK06 (with PWK05 = AC)
    location: Location


@dataclass(frozen=True, slots=True)
class Reference:
    """REF: an identifier under its qualifier (D9, F8, G1, 6R ...)."""

    qualifier: str  # REF01
    value: str  # REF02
    location: Location


@dataclass(frozen=True, slots=True)
class Provider:
    """A provider named on a claim or line (2310x / 2420x): rendering, attending ..."""

    role: str  # NM101: 82 rendering, 71 attending, 72 operating, DN referring, 77 facility ...
    entity_type: str  # NM102
    name: str  # NM103
    first_name: str  # NM104
    npi: str  # NM109 when NM108 = XX
    taxonomy: str  # PRV03
    location: Location


@dataclass(frozen=True, slots=True)
class Institutional:
    """CL1 (837I): admission type, source and patient status."""

    admission_type: str  # CL101
    admission_source: str  # CL102
    patient_status: str  # CL103
    location: Location


@dataclass(frozen=True, slots=True)
class ServiceLine:
    """2400: one service, with its own dates, notes and identifiers."""

    number: int | None  # LX01
    procedure_qualifier: str  # SV101-1 / SV202-1: HC (CPT/HCPCS), ER, IV, WK ...
    procedure: str  # SV101-2 / SV202-2
    modifiers: tuple[str, ...]  # SV101-3..6 / SV202-3..6, blanks dropped
    description: str  # SV101-7 / SV202-7
    revenue_code: str  # SV201 (837I)
    charge: Decimal | None  # SV102 / SV203; None when not a number
    charge_text: str  # as sent
    unit_basis: str  # SV103 / SV204: UN units, MJ minutes, DA days
    units: Decimal | None  # SV104 / SV205
    units_text: str
    place_of_service: str  # SV105 (837P)
    diagnosis_pointers: tuple[int, ...]  # SV107-1..4 (837P)
    date_from: date | None  # DTP*472 start
    date_to: date | None  # DTP*472 end (= start for D8)
    dates: tuple[DateValue, ...]  # every line DTP
    notes: tuple[Note, ...]  # NTE
    attachments: tuple[Attachment, ...]  # PWK
    references: tuple[Reference, ...]  # REF in 2400
    control_number: str  # REF*6R: the submitter's line item control number
    providers: tuple[Provider, ...]  # 2420x
    location: Location  # LX
    service_location: Location | None  # SV1 / SV2: the segment findings point at

    @property
    def date_of_service(self) -> date | None:
        """The single service date, or None when there is none or it spans days."""
        return one_day(self.date_from, self.date_to)


def one_day(start: date | None, end: date | None) -> date | None:
    """The day a date range covers when it is one day (``start == end``), else None."""
    return start if start is not None and start == end else None


#: the Claim attributes read from its built body, in the order ``claim_body`` returns them
_BODY_FIELDS = ("dates", "diagnoses", "codes", "notes", "attachments", "references",
                "institutional", "providers", "lines", "segments")


class _ClaimBody:
    """The slots of a Claim's body: empty until first read, then plain slot reads.

    An empty slot sends the read to ``__getattr__``, which builds the body once
    (``Claim._get_body``) and fills every slot: a claim's rules read these
    attributes hundreds of thousands of times a run, and a slot read is no
    Python call (a property over the body tuple was two per read).
    """

    __slots__ = _BODY_FIELDS
    dates: tuple[DateValue, ...]  # 2300 DTP
    diagnoses: tuple[Diagnosis, ...]  # HI diagnosis composites in order
    codes: tuple[CodeValue, ...]  # the other HI composites
    notes: tuple[Note, ...]  # 2300 NTE
    attachments: tuple[Attachment, ...]  # 2300 PWK
    references: tuple[Reference, ...]  # 2300 REF (D9, F8, G1 ...)
    institutional: Institutional | None  # CL1 (837I)
    providers: tuple[Provider, ...]  # 2310x
    lines: tuple[ServiceLine, ...]  # the 2400 service lines
    segments: tuple[Segment, ...]  # CLM through the claim's last segment, as sent

    def _get_body(self) -> tuple:
        raise NotImplementedError  # Claim's

    def __getattr__(self, name: str) -> Any:
        """Only reached when ``name`` is no filled slot: an unread body, or no attribute."""
        try:
            index = _BODY_FIELDS.index(name)
        except ValueError:
            raise AttributeError(
                f"{type(self).__name__!r} object has no attribute {name!r}") from None
        body = self._get_body()
        for fill, value in zip(_FILL_BODY, body, strict=True):
            fill(self, value)
        return body[index]


_FILL_BODY = tuple(_ClaimBody.__dict__[name].__set__ for name in _BODY_FIELDS)


@dataclass(frozen=True, slots=True)
class Claim(_ClaimBody):
    """2300: one claim with its service lines, as the payer will see it.

    The CLM fields are read when the claim is; the rest of the claim (its dates,
    diagnoses, providers, lines and segments) is built from ``source``, the
    claim's segments as sent, the first time any of it is asked for, then kept.
    A reader that only routes or counts claims need not pay for building every
    service line; to the code that asks, the claim looks the same either way.
    """

    id: str  # CLM01: patient control number, returned in 277CA TRN02
    charge: Decimal | None  # CLM02
    charge_text: str
    facility_code: str  # CLM05-1: place of service (837P) or facility type (837I)
    facility_qualifier: str  # CLM05-2: B (837P) or A (837I)
    frequency: str  # CLM05-3: 1 original, 7 replacement, 8 void
    provider_signature: str  # CLM06
    assignment: str  # CLM07
    benefits_assigned: str  # CLM08
    release_of_information: str  # CLM09
    location: Location
    source: ClaimSource  # CLM through the claim's end, as read
    _body: tuple | None = field(default=None, compare=False, repr=False)

    def _get_body(self) -> tuple:
        body = self._body
        if body is None:
            body = self.source.body()
            _set_claim_body(self, body)
        return body

    # the rest of the claim (``_ClaimBody``: dates, diagnoses, codes, notes, attachments,
    # references, institutional, providers, lines, segments) is built from ``source`` the
    # first time any of it is read

    def reference(self, qualifier: str) -> str:
        """The first REF value under ``qualifier``, or ""."""
        for ref in self.references:
            if ref.qualifier == qualifier:
                return ref.value
        return ""

    def date(self, qualifier: str) -> DateValue | None:
        """The first claim DTP under ``qualifier`` (434 statement period, ...)."""
        for value in self.dates:
            if value.qualifier == qualifier:
                return value
        return None

    @property
    def payer_claim_number(self) -> str:
        """REF*F8: the payer's number of the claim a replacement or void refers to."""
        return self.reference("F8")


@dataclass(frozen=True, slots=True)
class ClaimRecord:
    """A claim with the context it was sent in: who billed, for whom, in which envelope."""

    interchange: Interchange
    group: FunctionalGroup | None  # None for a set sent without GS (env-outside-group)
    transaction: Transaction
    billing_provider: BillingProvider | None
    subscriber: Subscriber | None
    patient: Patient | None
    claim: Claim

    @property
    def kind(self) -> str:
        """ "837P" or "837I", from the transaction set's version."""
        return self.transaction.kind


@dataclass(frozen=True, slots=True)
class EnvelopeEnd:
    """The end of an envelope: its trailer (SE, GE, IEA), or where it was found cut short."""

    envelope: str  # "transaction" | "group" | "interchange"
    control_number: str
    closed: bool  # True when the trailer was there
    location: Location | None
    counted: int = 0  # transactions (group), groups (interchange) or segments (transaction)


def fast_init(cls: type) -> None:
    """Give a frozen slotted dataclass an __init__ that fills its slots at plain speed.

    A frozen dataclass's generated __init__ goes through object.__setattr__ for
    each field (about 8 us for a ServiceLine); slot descriptors called one by one
    still cost 1.8 us. A reader that builds millions of records cannot afford
    either. So the new instance is briefly given a twin class with the same
    slots and no frozen __setattr__, filled with ordinary attribute stores, and
    given its class back (0.9 us). Nobody else can see it in between, and
    afterwards it is as immutable as before (__setattr__ still refuses).

    It does what the dataclass __init__ did: defaults, ``default_factory`` (called
    per instance) and ``__post_init__``. What it cannot do (InitVar, init=False,
    keyword-only fields) it refuses when the class is defined, not at first use.
    """
    slots = cls.__dict__.get("__slots__")
    params = getattr(cls, "__dataclass_params__", None)
    if slots is None or params is None or not params.frozen:
        raise TypeError(f"fast_init: {cls.__name__} is not a frozen, slotted dataclass")
    generated = cls.__dict__["__init__"].__code__
    if generated.co_kwonlyargcount or generated.co_varnames[1:generated.co_argcount] != \
            tuple(f.name for f in fields(cls)):
        raise TypeError(f"fast_init: {cls.__name__} has InitVar, init=False or keyword-only "
                        "fields, which its generated __init__ handles and this one would not")
    # the same bases: a Claim's twin has its body's slots too (the same layout)
    twin = type(f"_{cls.__name__}Filling", cls.__bases__, {"__slots__": slots})
    args, body = [], []
    env: dict[str, object] = {"_twin": twin, "_cls": cls, "_set_class": object.__setattr__,
                              "_NO_VALUE": _NO_VALUE}
    for f in fields(cls):
        if f.default is not MISSING:
            env[f"_default_{f.name}"] = f.default
            args.append(f"{f.name}=_default_{f.name}")
            body.append(f"    self.{f.name} = {f.name}")
        elif f.default_factory is not MISSING:
            env[f"_factory_{f.name}"] = f.default_factory
            args.append(f"{f.name}=_NO_VALUE")
            body.append(f"    self.{f.name} = _factory_{f.name}() if {f.name} is _NO_VALUE "
                        f"else {f.name}")
        else:
            args.append(f.name)
            body.append(f"    self.{f.name} = {f.name}")
    body.append("    self.__class__ = _cls")
    if hasattr(cls, "__post_init__"):
        body.append("    self.__post_init__()")
    source = (f"def __init__(self, {', '.join(args)}):\n"
              "    _set_class(self, '__class__', _twin)\n" + "\n".join(body) + "\n")
    exec(source, env)  # generated from the class's own field names, nothing else
    init = env["__init__"]
    assert isinstance(init, FunctionType)
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    type.__setattr__(cls, "__init__", init)


for _cls in (Problem, Interchange, FunctionalGroup, Party, Transaction, Address,
             BillingProvider, Subscriber, Patient, DateValue, Diagnosis, CodeValue, Note,
             Attachment, Reference, Provider, Institutional, ServiceLine, Claim, ClaimRecord,
             EnvelopeEnd):
    fast_init(_cls)
del _cls
_set_claim_body = Claim.__dict__["_body"].__set__  # the slot's own setter fills it once
