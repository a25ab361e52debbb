"""Provider identity: the NPIs of a claim against NPPES, PECOS and the NUCC taxonomy.

Sources: CMS's NPPES downloadable file (monthly; the user's ``--nppes``), the
PECOS Order and Referring file (about twice a month; ``--pecos-order-refer``)
and the NUCC Health Care Provider Taxonomy code set (twice a year;
``--nucc-taxonomy``), each as published (scrubber.providers reads and indexes
them). Medicare contractors return "billing provider identifier" and
"rendering provider" among their commonest unprocessable claims, and deny
lab, imaging, DME and home-health claims whose ordering or referring provider
is not enrolled to order (CARC 183/N264, N265). A rule whose file is not
installed does not run, and the run says so once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from functools import lru_cache, partial
from pathlib import Path

from scrubber.model.claims import BillingProvider, Location, Provider, ServiceLine
from scrubber.providers import (
    NpiRecord,
    NppesIndex,
    OrderReferring,
    ProviderFileError,
    TaxonomySet,
    load_nppes,
    load_nucc,
    load_pecos,
)
from scrubber.rules.context import ClaimContext
from scrubber.rules.findings import Notice
from scrubber.rules.profile import CodeList, Profile
from scrubber.rules.registry import REJECT, WARN, Gate, Hit, rule
from scrubber.rules.resources import (
    Release,
    ResourceError,
    ResourceKind,
    ResourceOption,
    resource_kind,
)

ORDER = 40  # after the add-on codes, before the fee schedule (scrubber.rules.registry.Pack)
FIXTURES = "providers"  # its rules' fixtures, scrubbed with the synthetic files beside them
NPPES, PECOS, NUCC = "nppes", "pecos-order-refer", "nucc-taxonomy"


def _loader(option: str, load, what: str):
    def loaded(given: Mapping[str, tuple[str, ...]]):
        if not given.get(option):
            return None
        try:
            return load(given[option])
        except ProviderFileError as exc:
            raise ResourceError(f"{what}: {exc}") from None
    return loaded


def _recognize_nppes(path: Path) -> Release | None:
    """An NPPES zip or npidata_pfile CSV; its headings and first rows are checked here, every
    row when it is indexed."""
    from scrubber.providers.files import looks_like_nppes, nppes_heading_check, nppes_snapshot

    if not looks_like_nppes(path):
        return None
    try:
        day = nppes_snapshot(path)
        nppes_heading_check(path)
    except ProviderFileError as exc:
        raise ResourceError(str(exc)) from None
    # a full snapshot knows every NPI's history up to its day: it judges every date
    return Release(NPPES, f"NPPES as of {day:%Y-%m-%d}", None)


def _recognize_pecos(path: Path) -> Release | None:
    from scrubber.providers.files import looks_like_pecos
    from scrubber.providers.index import pecos_as_of

    if not looks_like_pecos(path):
        return None
    day = pecos_as_of(path)
    return Release(PECOS, "PECOS Order and Referring" + (f" as of {day:%Y-%m-%d}" if day
                                                         else ""), None)


def _recognize_nucc(path: Path) -> Release | None:
    from scrubber.providers.files import looks_like_nucc, nucc_codes, nucc_version

    if not looks_like_nucc(path):
        return None
    try:
        nucc_codes(path)
    except ProviderFileError as exc:
        raise ResourceError(str(exc)) from None
    version = nucc_version(path.name)
    return Release(NUCC, f"NUCC taxonomy {version[0]}" if version else "NUCC taxonomy",
                   version[1] if version else None)


resource_kind(ResourceKind(NPPES, (
    ResourceOption(NPPES, "CMS NPPES downloadable file (the monthly NPPES_Data_Dissemination "
                          "zip as downloaded, or the npidata_pfile CSV in it); the newest "
                          "given judges. See docs/providers.md.", recognize=_recognize_nppes),
), _loader(NPPES, load_nppes, "NPPES file"), label="CMS NPPES file",
    in_use=lambda index: (index.label(),) if isinstance(index, NppesIndex) else ()))
resource_kind(ResourceKind(PECOS, (
    ResourceOption(PECOS, "CMS PECOS Order and Referring file (CSV: NPI, LAST_NAME, "
                          "FIRST_NAME, PARTB, DME, HHA, PMD, HOSPICE), zipped or not. See "
                          "docs/providers.md.", recognize=_recognize_pecos),
), _loader(PECOS, load_pecos, "Order and Referring file"),
    label="CMS PECOS Order and Referring file",
    in_use=lambda table: (table.label(),) if isinstance(table, OrderReferring) else ()))
resource_kind(ResourceKind(NUCC, (
    ResourceOption(NUCC, "NUCC Health Care Provider Taxonomy code set (nucc_taxonomy_251.csv "
                         "as downloaded), repeatable, one per version. See docs/providers.md.",
                   recognize=_recognize_nucc),
), _loader(NUCC, load_nucc, "NUCC taxonomy"), label="NUCC provider taxonomy code set",
    in_use=lambda found: (found.label(),) if isinstance(found, TaxonomySet) else ()))

ROLES = {"85": "billing", "82": "rendering", "71": "attending", "72": "operating",
         "ZZ": "other operating", "DN": "referring", "P3": "primary care", "DK": "ordering",
         "DQ": "supervising", "77": "service facility", "QB": "purchased service",
         "FA": "service facility"}
# roles the guides fill with a person (NM102 = 1) or an organisation (NM102 = 2) only
PERSONS = frozenset({"71", "72", "ZZ", "DN", "P3", "DK", "DQ"})
ORGANISATIONS = frozenset({"77", "FA"})
SOURCE_NPPES = "CMS NPPES downloadable file (the user's --nppes; see docs/providers.md), {}"


@dataclass(frozen=True, slots=True)
class Named:
    """One NPI the claim names: in which role, where, and the date it is judged on."""

    role: str  # NM101 (85 for the billing provider)
    entity_type: str  # NM102 as sent
    npi: str
    taxonomy: str  # PRV03 of the provider's loop
    location: Location
    line: ServiceLine | None  # for a 2420 provider
    day: date | None  # the line's date, else the claim's first date of service

    def who(self) -> str:
        place = f"line {self.line.number} " if self.line is not None and self.line.number \
            else ""
        return f"the {place}{ROLES.get(self.role, self.role)} provider (NM1*{self.role})"


def _first_day(ctx: ClaimContext) -> date | None:
    days = [day for _, day in ctx.dated_lines()]
    if days:
        return min(days)
    statement = ctx.claim.date("434")
    return statement.start if statement is not None else None


# an NPI as the claim sends it: (role, its provider, its 2400 line or None, the date it is
# judged on), what ``Named`` is made of
Sent = tuple[str, BillingProvider | Provider, ServiceLine | None, date | None]


def sent_npis(ctx: ClaimContext) -> tuple[Sent, ...]:
    """Every NPI of the claim: billing, 2310x and 2420x providers, as sent; worked out once.

    The gates read these as they are: a ``Named`` is made only for a claim a rule looks at.
    """
    return ctx.once("provider-npis-sent", _sent_of, ctx)


def _sent_of(ctx: ClaimContext) -> tuple[Sent, ...]:
    first = _first_day(ctx)
    out: list[Sent] = []
    billing = ctx.record.billing_provider
    if billing is not None and billing.npi:
        out.append(("85", billing, None, first))
    out += [(p.role, p, None, first) for p in ctx.claim.providers if p.npi]
    out += [(p.role, p, line, ctx.service_date(line) or first)
            for line in ctx.claim.lines for p in line.providers if p.npi]
    return tuple(out)


def named(ctx: ClaimContext) -> tuple[Named, ...]:
    """Every NPI of the claim: billing, 2310x and 2420x providers; worked out once."""
    return ctx.once("provider-npis", _named, ctx)


def _named(ctx: ClaimContext) -> tuple[Named, ...]:
    return tuple(Named(role, p.entity_type, p.npi, p.taxonomy, p.location, line, day)
                 for role, p, line, day in sent_npis(ctx))


def named_once_each(ctx: ClaimContext) -> tuple[Named, ...]:
    """``named``, each (role, NPI) once; worked out once for the rules that all ask."""
    return ctx.once("provider-npis-once-each", _once_each_of, ctx)


def _once_each_of(ctx: ClaimContext) -> tuple[Named, ...]:
    return tuple(_once_each(named(ctx)))


def _once_each(items) -> Iterator[Named]:
    """Each (role, NPI) once: a provider named on every line is one finding, not ten."""
    seen = set()
    for item in items:
        if (item.role, item.npi) not in seen:
            seen.add((item.role, item.npi))
            yield item


def looked_up(ctx: ClaimContext) -> tuple[tuple[Named, NpiRecord | None], ...]:
    """``named_once_each``, each with its NPPES record (None: the file does not list the NPI);
    looked up once for the four rules that read them. () without the file."""
    return ctx.once("provider-npi-records", _records_of, ctx)


def _records_of(ctx: ClaimContext) -> tuple[tuple[Named, NpiRecord | None], ...]:
    index = ctx.resource(NPPES, NppesIndex)
    if index is None:
        return ()
    record = index.record
    return tuple((item, record(item.npi)) for item in named_once_each(ctx))


def _entity_doubt(role: str, sent: str, record: NpiRecord, kind: str) -> bool:
    """Whether ``npi-entity-type`` may say something of an NPI in ``role`` sent with NM102
    ``sent``: NPPES gives another entity type, or one the role (or an 837I's billing
    provider) does not take."""
    entity = record.entity_type
    return bool(entity) and (
        entity != sent
        or (entity == "2" and role in PERSONS)
        or (entity == "1" and (role in ORGANISATIONS or (role == "85" and kind == "837I"))))


def _taxonomy_doubt(taxonomy: str, record: NpiRecord) -> bool:
    """Whether PRV03 ``taxonomy`` is one NPPES does not list for the NPI of ``record``."""
    return bool(taxonomy) and bool(record.taxonomies) and \
        taxonomy.upper() not in record.taxonomies


def _nppes_doubts(ctx: ClaimContext) -> bool:
    """True when NPPES does not list an NPI of the claim, or lists it out of force on its
    date, of another entity type than its loop says or takes, or without the taxonomy sent:
    the four NPPES rules look at nothing else (most claims have none of it)."""
    index = ctx.resource(NPPES, NppesIndex)
    if index is None:
        return False
    kind = ctx.kind
    for role, provider, _, day in sent_npis(ctx):
        record = index.record(provider.npi)
        if record is None or (day is not None and not record.active_on(day)) \
                or _entity_doubt(role, provider.entity_type, record, kind) \
                or _taxonomy_doubt(provider.taxonomy, record):
            return True
    return False


NPPES_GATE = Gate("nppes-doubts", _nppes_doubts)


@rule("npi-not-in-nppes", severity=REJECT, stc=("A7", "562"),
      summary="an NPI on the claim is not in the NPPES file",
      source=SOURCE_NPPES.format("every NPI issued, with its deactivation"), needs=(NPPES,),
      gate=NPPES_GATE)
def npi_not_in_nppes(ctx: ClaimContext) -> Iterator[Hit]:
    """Every NPI on the claim was issued: NPPES lists it (deactivated ones too).

    An NPI that passes its check digit but was never issued is a typing error
    the payer returns as an invalid billing or rendering provider identifier.
    A date of service after the day of the NPPES file makes it a warning: the
    NPI may have been issued since.
    Fails: NM1*82*1*...*XX*1112223338 (not in the NPPES file)
    Passes: NM1*82*1*...*XX*1093817462 (in the NPPES file)
    """
    index = ctx.resource(NPPES, NppesIndex)
    if index is None:
        return
    for item, record in looked_up(ctx):
        if record is not None:
            continue
        later = item.day is not None and item.day > index.snapshot
        yield Hit(f"{item.who()} NPI {item.npi} is not in the NPPES file ({index.label()})"
                  + (f"; the date of service {item.day:%Y-%m-%d} is later, so it may have "
                     "been issued since" if later else "") + ".",
                  "Correct the NPI (look the provider up in the NPPES registry); if it was "
                  "issued after the file's day, install the current NPPES file.",
                  line=item.line, segment=item.location, element="NM109",
                  ceiling=WARN if later else None)


@rule("npi-inactive", severity=REJECT, stc=("A7", "562"),
      summary="an NPI is deactivated (or not yet issued) on the date of service",
      source=SOURCE_NPPES.format("enumeration, deactivation and reactivation dates"),
      needs=(NPPES,), gate=NPPES_GATE)
def npi_inactive(ctx: ClaimContext) -> Iterator[Hit]:
    """An NPI must be in force on the date of service: issued, and not deactivated then.

    A deactivated NPI is in force again from its reactivation date.
    Fails: NM1*82 NPI deactivated 2025-06-30, service on 20260302
    Passes: NM1*82 NPI deactivated 2025-06-30 and reactivated 2026-01-15, service on 20260302
    """
    index = ctx.resource(NPPES, NppesIndex)
    if index is None:
        return
    for item, record in looked_up(ctx):
        if record is None or item.day is None or record.active_on(item.day):
            continue
        if record.enumerated is not None and item.day < record.enumerated:
            why = f"was issued only on {record.enumerated:%Y-%m-%d}"
        else:
            assert record.deactivated is not None
            why = f"was deactivated on {record.deactivated:%Y-%m-%d}" + (
                f" (reactivated only on {record.reactivated:%Y-%m-%d})"
                if record.reactivated else "")
        yield Hit(f"{item.who()} NPI {item.npi} {why}; the date of service is "
                  f"{item.day:%Y-%m-%d} ({index.label()}).",
                  "Bill under the NPI in force on the date of service (a deactivated NPI's "
                  "provider has a replacement, or must reactivate it first).",
                  line=item.line, segment=item.location, element="NM109")


@rule("npi-entity-type", severity=REJECT, stc=("A7", "562"),
      summary="an NPI's entity type (person or organisation) does not fit its loop",
      source=SOURCE_NPPES.format("Entity Type Code; 837P/837I 2010AA, 2310x, 2420x NM102"),
      needs=(NPPES,), gate=NPPES_GATE)
def npi_entity_type(ctx: ClaimContext) -> Iterator[Hit]:
    """NM102 says a person (1) or an organisation (2): NPPES must say the same of the NPI.

    Referring, ordering, attending, operating and supervising providers are
    people; a service facility is an organisation. A billing provider the guide
    wants as an organisation (every 837I; an 837P sent with NM102 2) whose NPI
    is an individual's is a warning.
    Fails: NM1*82*1 with an organisation's NPI (entity type 2)
    Passes: NM1*82*1 with an individual's NPI (entity type 1)
    """
    index = ctx.resource(NPPES, NppesIndex)
    if index is None:
        return
    kind = ctx.kind
    for item, record in looked_up(ctx):
        if record is None or not _entity_doubt(item.role, item.entity_type, record, kind):
            continue
        words = {"1": "an individual", "2": "an organisation"}
        found = words[record.entity_type]
        if item.role == "85" and record.entity_type == "1" and \
                (ctx.kind == "837I" or item.entity_type == "2"):
            wants = ("an institutional claim's billing provider is the facility"
                     if ctx.kind == "837I" else "the billing provider is sent as an "
                     "organisation (NM102 2)")
            yield Hit(f"{wants}, but NPPES lists NPI {item.npi} as an individual "
                      f"({index.label()}).",
                      "Bill under the organisation's NPI (entity type 2); an individual "
                      "billing under the own NPI is sent as a person (NM102 1) on an 837P.",
                      segment=item.location, element="NM109", ceiling=WARN)
        elif item.entity_type in words and item.entity_type != record.entity_type:
            yield Hit(f"{item.who()} is sent as {words[item.entity_type]} (NM102 "
                      f"{item.entity_type}), but NPPES lists NPI {item.npi} as {found} "
                      f"(entity type {record.entity_type}, {index.label()}).",
                      "Send the NPI of the provider the loop names: an individual's own NPI "
                      "for a person, the organisation's for a group or facility.",
                      line=item.line, segment=item.location, element="NM102")
        elif item.role in PERSONS and record.entity_type == "2" or \
                item.role in ORGANISATIONS and record.entity_type == "1":
            must = "a person" if item.role in PERSONS else "an organisation"
            yield Hit(f"{item.who()} must be {must}, but NPPES lists NPI {item.npi} as "
                      f"{found}.",
                      "Send the NPI of the individual (or the facility) the loop names.",
                      line=item.line, segment=item.location, element="NM109")


def _taxonomies(ctx: ClaimContext) -> Iterator[Named]:
    for item in named_once_each(ctx):
        if item.taxonomy:
            yield item


def _nucc_doubts(ctx: ClaimContext) -> bool:
    """True when a taxonomy of the claim dated by its service is not a code of the NUCC set
    in force then, or no set given is (that Notice): ``taxonomy-unknown`` looks at nothing
    else."""
    codes = ctx.resource(NUCC, TaxonomySet)
    if codes is None:
        return False
    for _, provider, _, day in sent_npis(ctx):
        if provider.taxonomy and day is not None:
            release = codes.release_for(day)
            if release is None or provider.taxonomy.upper() not in release.codes:
                return True
    return False


NUCC_GATE = Gate("nucc-doubts", _nucc_doubts)


@rule("taxonomy-unknown", severity=REJECT, stc=("A7", "145"),
      summary="a PRV taxonomy code is not in the NUCC code set in force on the date",
      source="NUCC Health Care Provider Taxonomy code set (the user's --nucc-taxonomy; see "
             "docs/providers.md); PRV03", needs=(NUCC,), gate=NUCC_GATE)
def taxonomy_unknown(ctx: ClaimContext) -> Iterator[Hit | Notice]:
    """A provider's taxonomy (PRV03) is a code of the NUCC set in force on the date of service.

    A date before every version given is not judged (the run says so once).
    Fails: PRV*PE*PXC*2080X0099X (a code the NUCC set given does not list)
    Passes: PRV*PE*PXC*207Q00000X (family medicine)
    """
    codes = ctx.resource(NUCC, TaxonomySet)
    if codes is None:
        return
    for item in _taxonomies(ctx):
        release = codes.release_for(item.day) if item.day is not None else None
        if release is None:
            if item.day is not None:
                yield Notice("nucc-uncovered-dates", "not checked: taxonomy codes of services "
                             f"dated before every NUCC version given ({codes.label()}); add "
                             "that version with --nucc-taxonomy", source=NUCC)
            continue
        if item.taxonomy.upper() not in release.codes:
            yield Hit(f"{item.who()} taxonomy {item.taxonomy} is not a code of the "
                      f"{release.label()}.",
                      "Correct PRV03: the provider's taxonomy as listed in NPPES, a code of "
                      "the current NUCC set.", line=item.line, segment=item.location,
                      element="PRV03")


@rule("taxonomy-not-npis", severity=WARN, stc=("A7", "145"),
      summary="a PRV taxonomy code is not one NPPES lists for the provider's NPI",
      source=SOURCE_NPPES.format("Healthcare Provider Taxonomy Code_1 to _15; PRV03"),
      needs=(NPPES,), gate=NPPES_GATE)
def taxonomy_not_npis(ctx: ClaimContext) -> Iterator[Hit]:
    """The taxonomy a claim gives for a provider is one the provider registered in NPPES.

    Payers match PRV03 against the NPI's taxonomies to choose the provider's
    enrolment: a code the NPI does not carry is denied or priced wrongly.
    Fails: NM1*82 NPI with 207Q00000X in NPPES, PRV*PE*PXC*207R00000X
    Passes: NM1*82 NPI with 207Q00000X in NPPES, PRV*PE*PXC*207Q00000X
    """
    index = ctx.resource(NPPES, NppesIndex)
    if index is None:
        return
    for item, record in looked_up(ctx):
        if record is None or not _taxonomy_doubt(item.taxonomy, record):
            continue
        yield Hit(f"{item.who()} taxonomy {item.taxonomy} is not one NPPES lists for NPI "
                  f"{item.npi} ({', '.join(record.taxonomies)}; {index.label()}).",
                  "Send one of the NPI's own taxonomies in PRV03, or have the provider add "
                  "this one to its NPPES record.", line=item.line, segment=item.location,
                  element="PRV03")


# -- ordering and referring providers --------------------------------------------------------

def _bill_needs(ctx: ClaimContext) -> str | None:
    """The PECOS column an institutional home-health or hospice bill needs of its ordering
    or referring provider, or None. Only an 837I has a type of bill: an 837P's CLM05-1 is
    its place of service, where 32-34 and 81-82 are places (a nursing facility, an
    independent laboratory ...), not home-health or hospice bills."""
    if ctx.kind != "837I":
        return None
    profile = ctx.profile
    kind = ctx.claim.facility_code[:2]
    if kind in profile.list("home-health-bill-types"):
        return "HHA"
    if kind in profile.list("hospice-bill-types"):
        return "HOSPICE"
    return None


def _ordered_lists(profile: Profile) -> tuple[CodeList, CodeList, CodeList]:
    """The code lists of the PMD, DME and PARTB columns, in the order they are tried."""
    return (profile.list("power-mobility-codes"), profile.list("dme-codes"),
            profile.list("order-refer-part-b-codes"))


@lru_cache(maxsize=8)  # one a profile
def _columns(lists: tuple[CodeList, CodeList, CodeList]) -> Callable[[str], str | None]:
    """``_column`` of ``lists``, by code: the same codes come back on every claim (and the
    lists are hashed once a claim, not once a line)."""
    return lru_cache(maxsize=4096)(partial(_column, lists))


def _column(lists: tuple[CodeList, CodeList, CodeList], code: str) -> str | None:
    """PMD, DME or PARTB: the first of the profile's lists (in that order) holding ``code``."""
    for column, codes in zip(("PMD", "DME", "PARTB"), lists, strict=True):
        if code in codes:
            return column
    return None


def _ordered_services(ctx: ClaimContext) -> tuple[tuple[ServiceLine | None, str], ...]:
    """What needs an orderer enrolled for it: the bill (None), then each line, with the PECOS
    column; worked out once for the gate and the rule."""
    return ctx.once("order-refer-services", _services_of, ctx)


def _services_of(ctx: ClaimContext) -> tuple[tuple[ServiceLine | None, str], ...]:
    wanted: list[tuple[ServiceLine | None, str]] = []
    claim_needs = _bill_needs(ctx)
    if claim_needs is not None:
        wanted.append((None, claim_needs))
    if ctx.kind == "837P":  # a professional line's HCPCS code, by the profile's lists
        column = _columns(_ordered_lists(ctx.profile))
        wanted += [(line, need) for line in ctx.claim.lines
                   if line.procedure_qualifier == "HC" and (need := column(line.procedure))]
    return tuple(wanted)


def _bills_ordered_services(ctx: ClaimContext) -> bool:
    return bool(_ordered_services(ctx))


# the rule looks at the services that need an enrolled orderer only
ORDERED_GATE = Gate("order-refer-services", _bills_ordered_services)


WORDS = {"PARTB": "Part B clinical laboratory and imaging services", "DME": "DMEPOS",
         "HHA": "home health services", "PMD": "power mobility devices",
         "HOSPICE": "hospice services"}


def _orderer(ctx: ClaimContext, line: ServiceLine | None) -> Provider | None:
    """The line's ordering (2420E) or referring (2420F) provider, else the claim's referring
    (2310A/2310F) or, on an institutional claim, its attending provider (who certifies the
    home-health or hospice plan of care)."""
    roles = ("DK", "DN")
    if line is not None:
        for provider in line.providers:
            if provider.role in roles and provider.npi:
                return provider
    for role in ("DK", "DN", "71") if ctx.kind == "837I" else roles:
        for provider in ctx.claim.providers:
            if provider.role == role and provider.npi:
                return provider
    return None


@rule("order-refer-not-eligible", severity=REJECT, stc=("A7", "562"),
      summary="the ordering/referring provider of a lab, imaging, DME or home-health service "
              "may not order it (PECOS)",
      source="CMS PECOS Order and Referring file (the user's --pecos-order-refer; see "
             "docs/providers.md); 42 CFR 424.507", needs=(PECOS,), gate=ORDERED_GATE)
def order_refer_not_eligible(ctx: ClaimContext) -> Iterator[Hit]:
    """Medicare pays ordered services only when the orderer is enrolled to order them.

    Clinical laboratory and imaging services (PARTB), DMEPOS (DME), power
    mobility devices (PMD), home health (HHA: bill types 032x-034x) and hospice
    (HOSPICE: 081x-082x) need an ordering or referring provider whom the Order
    and Referring file lists with Y in that column. The codes and bill types are
    profile lists (order-refer-part-b-codes, dme-codes, power-mobility-codes,
    home-health-bill-types, hospice-bill-types).
    Fails: SV1*HC:80053 with NM1*DN NPI listed PARTB N
    Passes: SV1*HC:80053 with NM1*DN NPI listed PARTB Y
    """
    table = ctx.resource(PECOS, OrderReferring)
    if table is None:
        return
    seen = set()
    for line, need in _ordered_services(ctx):
        provider = _orderer(ctx, line)
        if provider is None or (provider.npi, need) in seen:
            continue
        seen.add((provider.npi, need))
        allowed = table.eligible(provider.npi)
        if allowed is not None and need in allowed:
            continue
        what = f"{line.procedure}" if line is not None else "this bill"
        said = ("is not in" if allowed is None else f"is listed without {need} in")
        yield Hit(f"the {ROLES.get(provider.role, provider.role)} provider of {what} "
                  f"({WORDS[need]}), NPI {provider.npi}, {said} the {table.label()}: "
                  "Medicare denies it.",
                  "Get the order from a provider enrolled in PECOS to order these services, "
                  "or have this provider enrol; then name that provider (NM1*DK or NM1*DN).",
                  line=line, segment=provider.location, element="NM109")
