"""The Physician Fee Schedule RVU file (PPRRVU) as CMS publishes it, read into rows.

CMS publishes it quarterly as RVUyyA-D.zip ("RVU26A" the January 2026 release,
B April, C July, D October; "AR" a correction), holding PPRRVU in CSV, fixed-width
text and Excel, with notes. A path is that zip, or the CSV or text taken out of it.

- CSV: copyright and title lines, then the column headings (split over two or
  more lines: "STATUS" above "CODE", "GLOB" above "DAYS" ...), then a row per
  code and modifier. Columns are found by their headings, so a release that
  adds a column still reads.
- Text: a "HDR" line, then 200-character records: HCPCS 1-5, modifier 6-7,
  status 58, non-facility NA 73-74, facility NA 82-83, PC/TC 103, global days
  104-106, bilateral 117, assistant at surgery 118, co-surgeons 119, team 120.

The release's quarter comes from CMS's names (the member's, else the zip's).
The file carries CPT codes and descriptions (AMA copyright): the user brings it,
the scrubber ships none of it and keeps no description.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from scrubber.cmsfiles import CODE, headed_rows, member_text, normal, quarter_label, quarter_named

MEMBER = r"^PPRRVU.*\.(csv|txt)$"
# (code, modifier, status, PC/TC, global days, bilateral, assistant, co-surgeons, team,
#  non-facility NA, facility NA)
RvuRow = tuple[str, str, str, str, str, str, str, str, str, bool, bool]
COLUMNS = {  # our name -> the headings CMS has used for it, reduced by ``normal``
    "code": ("HCPCS",), "modifier": ("MOD", "MODIFIER"), "status": ("STATUSCODE",),
    "pctc": ("PCTCIND", "PCTCINDICATOR"), "global": ("GLOBDAYS", "GLOBALDAYS"),
    "bilateral": ("BILATSURG",), "assistant": ("ASSTSURG",), "cosurgeons": ("COSURG",),
    "team": ("TEAMSURG",), "nonfacility_na": ("NONFACNAINDICATOR",),
    "facility_na": ("FACILITYNAINDICATOR", "FACNAINDICATOR"),
}
# 0-based slices of the fixed-width record, in COLUMNS order
FIXED = (slice(0, 5), slice(5, 7), slice(57, 58), slice(102, 103), slice(103, 106),
         slice(116, 117), slice(117, 118), slice(118, 119), slice(119, 120), slice(72, 74),
         slice(81, 83))


class RvuError(Exception):
    """An RVU file that cannot be used: the message names the file and line."""


@dataclass(frozen=True, slots=True)
class RvuRelease:
    """One RVU file: the quarter it is in force from, and where it came from."""

    start: date
    source: str

    def label(self) -> str:
        return f"PFS RVU {quarter_label(self.start)}"


def _rank(name: str) -> tuple:
    # CSV before text; of the QPP and non-QPP copies (only the conversion factor
    # differs) the non-QPP one
    lower = name.lower()
    return (not lower.endswith(".csv"), "_qpp" in lower, lower)


def rvu_file(path: Path) -> tuple[RvuRelease, list[RvuRow]]:
    """The release and rows of a PPRRVU file (or its zip); RvuError for one that does not fit."""
    member, text = member_text(path, MEMBER, "PPRRVU file (PPRRVU*.csv or .txt)", RvuError,
                               _rank)
    start = quarter_named(member, path.name)
    if start is None:
        raise RvuError(f"{path}: the name does not say the quarter; keep CMS's name "
                       "(RVU26A.zip, PPRRVU26_JAN.csv, PPRRVU2026_Jan_nonQPP.csv)")
    rows = list(_csv_rows(path, text) if not text.startswith("HDR") else _fixed_rows(path, text))
    if not rows:
        raise RvuError(f"{path}: holds no RVU rows")
    return RvuRelease(start, str(path)), rows


def _csv_rows(path: Path, text: str) -> Iterator[RvuRow]:
    headings, rows = headed_rows(text, "HCPCS")
    if not headings:
        raise RvuError(f"{path}: no column headings starting with HCPCS in the first 100 "
                       "lines; is this CMS's PPRRVU file?")
    where = {}
    for name, names in COLUMNS.items():
        found = [n for n, heading in enumerate(headings) if heading in names]
        if not found:
            raise RvuError(f"{path}: no {name} column (headings: "
                           f"{', '.join(h for h in headings if h)})")
        where[name] = found[0]
    for number, cells in rows:
        if not cells or not cells[0]:
            continue
        padded = cells + [""] * (len(headings) - len(cells))
        yield _row(path, number, [padded[where[name]] for name in COLUMNS])


def _fixed_rows(path: Path, text: str) -> Iterator[RvuRow]:
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("HDR"):
            continue
        yield _row(path, number, [line[cut].strip() for cut in FIXED])


def _row(path: Path, number: int, values: list[str]) -> RvuRow:
    code, modifier, status, pctc, glob, bilat, asst, cosurg, team, nonfac, fac = values
    code, modifier, glob = code.upper(), modifier.upper(), glob.upper()
    if not CODE.fullmatch(code) or not re.fullmatch(r"[A-Z]?", status.upper()) or \
            not re.fullmatch(r"[0-9A-Z]{0,2}", modifier):
        raise RvuError(f"{path}: line {number} is not an RVU row (HCPCS {code!r}, modifier "
                       f"{modifier!r}, status {status!r})")
    for name, value in (("PC/TC", pctc), ("bilateral", bilat), ("assistant", asst),
                        ("co-surgeons", cosurg), ("team", team)):
        if value and not value.isdigit():
            raise RvuError(f"{path}: line {number}: the {name} indicator of {code} is "
                           f"{value!r}, not a digit")
    return (code, modifier, status.upper(), pctc, glob, bilat, asst, cosurg, team,
            normal(nonfac) == "NA", normal(fac) == "NA")


def looks_like(path: Path) -> bool:
    """True for an RVU zip (one holding PPRRVU) or a file CMS named PPRRVU*."""
    from scrubber.cmsfiles import zip_names

    names = zip_names(path)
    if names:
        return any(re.search(MEMBER, n, re.IGNORECASE) for n in names)
    return bool(re.match(r"PPRRVU", path.name, re.IGNORECASE))
