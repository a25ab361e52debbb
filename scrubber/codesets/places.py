"""Place of service codes: CMS's code set, with the dates each code is in force.

The table is public domain (CMS keeps it; there is no machine-readable file), so
a copy ships here: each code with our short name and, where the code was added
or changed after 2015, the date of service it is in force from. A user may give
their own table instead (``--pos``: CSV with the headings code, name,
effective_from, effective_to; dates YYYY-MM-DD or YYYYMMDD, blank for none).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from scrubber.cmsfiles import decode


class PlaceError(Exception):
    """A place-of-service table that cannot be used; the message names the file and line."""


@dataclass(frozen=True, slots=True)
class Place:
    """One place of service code and the dates of service it is in force for."""

    code: str  # two digits
    name: str
    start: date | None = None  # None: in force since before 2016
    end: date | None = None  # None: still in force

    def in_force(self, day: date) -> bool:
        return (self.start is None or self.start <= day) and (self.end is None or day <= self.end)


def _d(text: str) -> date:
    return date.fromisoformat(text)


# CMS Place of Service Code Set. Dates: 02 and 19 (2016-01-01), 58 (2020-01-01) and 10
# (2022-01-01) are CMS's; 27 and 66 are unconfirmed here (2023-10-01 as we read CMS's
# table): a payer who needs otherwise gives its own table with --pos.
SHIPPED = tuple(Place(code, name, start) for code, name, start in (
    ("01", "Pharmacy", None), ("02", "Telehealth other than in patient's home",
                               _d("2016-01-01")),
    ("03", "School", None), ("04", "Homeless shelter", None),
    ("05", "Indian Health Service free-standing facility", None),
    ("06", "Indian Health Service provider-based facility", None),
    ("07", "Tribal 638 free-standing facility", None),
    ("08", "Tribal 638 provider-based facility", None),
    ("09", "Prison/correctional facility", None),
    ("10", "Telehealth in patient's home", _d("2022-01-01")),
    ("11", "Office", None), ("12", "Home", None), ("13", "Assisted living facility", None),
    ("14", "Group home", None), ("15", "Mobile unit", None), ("16", "Temporary lodging", None),
    ("17", "Walk-in retail health clinic", None), ("18", "Place of employment/worksite", None),
    ("19", "Off campus-outpatient hospital", _d("2016-01-01")),
    ("20", "Urgent care facility", None), ("21", "Inpatient hospital", None),
    ("22", "On campus-outpatient hospital", None), ("23", "Emergency room - hospital", None),
    ("24", "Ambulatory surgical center", None), ("25", "Birthing center", None),
    ("26", "Military treatment facility", None),
    ("27", "Outreach site/street", _d("2023-10-01")),
    ("31", "Skilled nursing facility", None), ("32", "Nursing facility", None),
    ("33", "Custodial care facility", None), ("34", "Hospice", None),
    ("41", "Ambulance - land", None), ("42", "Ambulance - air or water", None),
    ("49", "Independent clinic", None), ("50", "Federally qualified health center", None),
    ("51", "Inpatient psychiatric facility", None),
    ("52", "Psychiatric facility - partial hospitalization", None),
    ("53", "Community mental health center", None),
    ("54", "Intermediate care facility/individuals with intellectual disabilities", None),
    ("55", "Residential substance abuse treatment facility", None),
    ("56", "Psychiatric residential treatment center", None),
    ("57", "Non-residential substance abuse treatment facility", None),
    ("58", "Non-residential opioid treatment facility", _d("2020-01-01")),
    ("60", "Mass immunization center", None),
    ("61", "Comprehensive inpatient rehabilitation facility", None),
    ("62", "Comprehensive outpatient rehabilitation facility", None),
    ("65", "End-stage renal disease treatment facility", None),
    ("66", "Programs of All-Inclusive Care for the Elderly (PACE) center", _d("2023-10-01")),
    ("71", "Public health clinic", None), ("72", "Rural health clinic", None),
    ("81", "Independent laboratory", None), ("99", "Other place of service", None),
))


@dataclass(frozen=True, slots=True)
class PlaceTable:
    """The place of service codes of a run: the shipped table, or the user's."""

    places: tuple[Place, ...] = SHIPPED
    source: str = "CMS Place of Service Code Set (shipped copy)"
    _by_code: dict = field(init=False, repr=False, compare=False, default_factory=dict)

    def __post_init__(self) -> None:
        by_code: dict[str, tuple[Place, ...]] = {}
        for place in self.places:
            by_code[place.code] = (*by_code.get(place.code, ()), place)
        object.__setattr__(self, "_by_code", by_code)

    def find(self, code: str) -> tuple[Place, ...]:
        """Every row of ``code`` (a code may come back with new dates after a change)."""
        return self._by_code.get(code, ())


SHIPPED_TABLE = PlaceTable()


def read_places(path: Path) -> PlaceTable:
    """A user's table: CSV with headings code, name, effective_from, effective_to."""
    try:
        text = decode(path.read_bytes())
    except OSError as exc:
        raise PlaceError(f"{path}: cannot read: {exc.strerror or exc}") from None
    rows = list(csv.DictReader(io.StringIO(text)))
    places = []
    for number, row in enumerate(rows, 2):
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items()}
        code = row.get("code", "")
        try:
            if not (len(code) == 2 and code.isdigit()):
                raise ValueError(f"the code is {code!r}, expected two digits")
            places.append(Place(code, row.get("name", ""), _date(row.get("effective_from", "")),
                                _date(row.get("effective_to", ""))))
        except ValueError as exc:
            raise PlaceError(f"{path}: line {number}: {exc} (headings: code, name, "
                             "effective_from, effective_to)") from None
    if not places:
        raise PlaceError(f"{path}: holds no place of service codes (headings: code, name, "
                         "effective_from, effective_to)")
    return PlaceTable(tuple(places), str(path))


def _date(text: str) -> date | None:
    if not text:
        return None
    if len(text) == 8 and text.isdigit():
        text = f"{text[:4]}-{text[4:6]}-{text[6:]}"
    return date.fromisoformat(text)
