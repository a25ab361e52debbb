"""Code-set files as published: the ICD-10-CM releases, the HCPCS quarterly file, a CPT list.

- ICD-10-CM: the code list that ``simple-icd-10-cm`` ships (one code a line,
  chapters and blocks among them), and CMS's "code descriptions in tabular
  order" file of a fiscal year (``icd10cm_order_2026.txt``, alone or in its
  zip): fixed width, order number, code, 0 for a header / 1 for a code valid
  on a claim, short and long description.
- HCPCS Level II: CMS's quarterly alpha-numeric file (``HCPC2026_JAN_ANWEB_...``),
  fixed width, 320 characters a record, with each code's added, action
  effective and termination dates.
- CPT: a plain list of codes, one a line (a licensed user's own export).

Each reader yields plain tuples for the index (scrubber.codesets.index) and
raises ``CodeSetError`` naming the file and line for anything that does not fit.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

ICD10CM = re.compile(r"[A-Z][0-9][0-9A-Z][0-9A-Z]{0,4}")
HCPCS = re.compile(r"[A-V][0-9]{4}")  # Level II: a letter and four digits
CPT = re.compile(r"[0-9]{4}[0-9FTU]")  # Category I, II (1234F), III (0123T), PLA (0001U)
LIBRARY = "simple-icd-10-cm"
_MONTHS = {"JAN": 1, "APR": 4, "JUL": 7, "OCT": 10}


class CodeSetError(Exception):
    """A code-set file cannot be used; the message names the file and what is wrong."""


@dataclass(frozen=True, slots=True)
class Release:
    """One ICD-10-CM release and the dates of service it is in force for."""

    name: str  # "ICD-10-CM FY2026", "ICD-10-CM April 1, 2026 update"
    start: date  # first date of service (October 1, or April 1 for an April update)
    end: date  # last date of service: September 30 that ends the fiscal year
    source: str  # the file, or the library that ships it

    def covers(self, day: date) -> bool:
        return self.start <= day <= self.end

    def distance(self, day: date) -> int:
        """Days between ``day`` and this release's window (0 inside it)."""
        if day < self.start:
            return (self.start - day).days
        return max(0, (day - self.end).days)

    def label(self) -> str:
        """The name with its window, for messages."""
        return f"{self.name} (in force {self.start:%Y-%m-%d} to {self.end:%Y-%m-%d})"


def fiscal_year(day: date) -> int:
    """The federal fiscal year of ``day``: FY2027 runs 2026-10-01 to 2027-09-30."""
    return day.year + 1 if day.month >= 10 else day.year


def release_named(name: str, source: str) -> Release | None:
    """The release a CMS file name says: ``icd10cm_order_2026.txt`` is FY2026,
    ``icd10cm-order-April-2025.txt`` the April 1, 2025 update; None without a year."""
    found = re.search(r"(?<![0-9])(20[0-9]{2})(?![0-9])", name)
    if found is None:
        return None
    year = int(found.group(1))
    end = date(year, 9, 30)
    if re.search(r"apr(il)?(?![a-z])", name, re.IGNORECASE):
        return Release(f"ICD-10-CM April 1, {year} update", date(year, 4, 1), end, source)
    return Release(f"ICD-10-CM FY{year}", date(year - 1, 10, 1), end, source)


# -- the bundled release --------------------------------------------------------------------

def bundled_code_list() -> tuple[Path, str]:
    """The code list ``simple-icd-10-cm`` ships, and the library's version.

    Found through the package metadata, not by importing the library: its
    import parses the whole tabular XML, seconds we need not spend.
    """
    from importlib import metadata  # tens of ms to import: only when an index is opened

    try:
        dist = metadata.distribution(LIBRARY)
    except metadata.PackageNotFoundError:
        raise CodeSetError(f"{LIBRARY} is not installed: pip install {LIBRARY}") from None
    for file in dist.files or ():
        if re.fullmatch(r"code-list-[A-Za-z]+-20[0-9]{2}\.txt", file.name):
            return Path(str(dist.locate_file(file))), dist.version
    raise CodeSetError(f"{LIBRARY} {dist.version} ships no code list (code-list-*.txt)")


def bundled_release(path: Path, version: str) -> Release:
    release = release_named(path.name, f"{LIBRARY} {version}")
    if release is None:
        raise CodeSetError(f"{path}: cannot tell the release from the name")
    return release


def bundled_codes(path: Path) -> Iterator[tuple[str, bool]]:
    """(code, header) of the library's list: a code is a header when a longer code extends it.

    Chapters ("1") and blocks ("A00-A09") are left out; they are no codes.
    """
    codes = sorted({c for c in path.read_text(encoding="utf-8").split() if ICD10CM.fullmatch(c)})
    for n, code in enumerate(codes):
        yield code, n + 1 < len(codes) and codes[n + 1].startswith(code)


# -- CMS files ------------------------------------------------------------------------------

def _text_member(path: Path, pattern: str, what: str) -> tuple[str, str]:
    """(member name, text) of the one member of a zip matching ``pattern``, or of the file."""
    try:
        if not zipfile.is_zipfile(path):
            return path.name, path.read_bytes().decode("latin-1")
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist()
                     if re.search(pattern, Path(n).name, re.IGNORECASE)]
            if len(names) != 1:
                listed = ", ".join(archive.namelist()[:8]) or "nothing"
                raise CodeSetError(f"{path}: expected one {what} in the zip, found "
                                   f"{len(names)} (it holds {listed})")
            return Path(names[0]).name, archive.read(names[0]).decode("latin-1")
    except FileNotFoundError:
        raise CodeSetError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise CodeSetError(f"{path}: is a folder; give the CMS file (.zip or .txt)") from None
    except (OSError, zipfile.BadZipFile) as exc:
        raise CodeSetError(f"{path}: cannot read: {exc}") from None


def icd10cm_file(path: Path) -> tuple[Release, list[tuple[str, bool]]]:
    """The release and (code, header) rows of a CMS order file (or its zip).

    The fiscal year comes from the name (the member's, else the zip's), as CMS
    names them; a file named otherwise is refused with how to name it.
    """
    member, text = _text_member(path, r"order.*\.txt$", "tabular order file (*order*.txt)")
    release = release_named(member, str(path)) or release_named(path.name, str(path))
    if release is None:
        raise CodeSetError(
            f"{path}: the name does not say the fiscal year; keep CMS's name "
            "(icd10cm_order_2026.txt, or icd10cm-order-April-2026.txt for an April update)")
    rows = []
    for number, line in enumerate(io.StringIO(text), 1):
        if not line.strip():
            continue
        parts = line.split(None, 3)
        if (len(parts) < 3 or not parts[0].isdigit() or not ICD10CM.fullmatch(parts[1])
                or parts[2] not in ("0", "1")):
            hint = (" (this looks like the codes file; give the order file, which marks "
                    "headers)" if number == 1 and len(parts) > 1 and
                    ICD10CM.fullmatch(parts[0]) else "")
            raise CodeSetError(f"{path}: line {number} is not in the layout of CMS's "
                               f"tabular order file (order number, code, 0/1, "
                               f"descriptions){hint}")
        rows.append((parts[1], parts[2] == "0"))
    if not rows:
        raise CodeSetError(f"{path}: holds no codes")
    return release, rows


def _day(text: str, path: Path, number: int) -> date | None:
    text = text.strip()
    if not text:
        return None
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        raise CodeSetError(f"{path}: line {number}: {text!r} is not a date (CCYYMMDD)") from None


HcpcsRow = tuple[str, date | None, date | None, date | None]  # code, added, effective, ended


def hcpcs_file(path: Path) -> tuple[tuple[date, date], list[HcpcsRow]]:
    """The dates the file speaks for (its quarter) and (code, added, effective, terminated).

    Fixed width, positions 1-5 code, 11 record id (3: a procedure's first
    line), 269-276 added, 277-284 action effective, 285-292 termination date.
    The quarter comes from CMS's name (HCPC2026_APR_...), else from the latest
    date in the file.
    """
    member, text = _text_member(path, r"^HCPC.*\.txt$", "HCPCS file (HCPC*.txt)")
    rows: list[HcpcsRow] = []
    for number, line in enumerate(io.StringIO(text), 1):
        if not line.strip() or line[10:11] in ("4", "7", "8"):
            continue  # continuation lines (4) and modifiers (7, 8) name no new code
        code = line[:5]
        if line[10:11] != "3" or len(line.rstrip("\r\n")) < 292 or \
                not (HCPCS.fullmatch(code) or CPT.fullmatch(code)):
            raise CodeSetError(f"{path}: line {number} is not in the layout of CMS's HCPCS "
                               "file (320-character records, code in positions 1-5, record "
                               "id in 11; the Excel copy is not read)")
        rows.append((code, _day(line[268:276], path, number), _day(line[276:284], path, number),
                     _day(line[284:292], path, number)))
    if not rows:
        raise CodeSetError(f"{path}: holds no HCPCS records (record id 3 in position 11)")
    named = re.search(r"HCPC(20[0-9]{2})_(JAN|APR|JUL|OCT)", member + " " + path.name,
                      re.IGNORECASE)
    if named:
        start = date(int(named.group(1)), _MONTHS[named.group(2).upper()], 1)
    else:
        latest = max(d for row in rows for d in row[1:] if d is not None)
        start = date(latest.year, (latest.month - 1) // 3 * 3 + 1, 1)
    end = (date(start.year + (start.month + 2) // 12, (start.month + 2) % 12 + 1, 1)
           - timedelta(days=1))
    return (start, end), rows


LAB_CERTIFICATION = slice(180, 204)  # LABCERT1-8, three characters each, positions 181-204


def hcpcs_modifiers_and_labs(path: Path) -> tuple[list[HcpcsRow], list[tuple[str, str]]]:
    """The HCPCS file's Level II modifiers with their dates, and its lab certification codes.

    Modifier records have record id 7 in position 11 (8: a continuation line),
    the modifier in the code field; a procedure's LABCERT1-8 (positions 181-204,
    three characters each) name the CLIA certification specialties that may
    perform it: a code with any is subject to CLIA. Returns (modifier, added,
    effective, terminated) rows and (code, certification codes joined by ",").
    """
    _, text = _text_member(path, r"^HCPC.*\.txt$", "HCPCS file (HCPC*.txt)")
    modifiers: list[HcpcsRow] = []
    labs: list[tuple[str, str]] = []
    for number, line in enumerate(io.StringIO(text), 1):
        record = line[10:11]
        if record == "7" and len(line.rstrip("\r\n")) >= 292:
            code = line[:5].strip().upper()
            if len(code) == 2:
                modifiers.append((code, _day(line[268:276], path, number),
                                  _day(line[276:284], path, number),
                                  _day(line[284:292], path, number)))
        elif record == "3":
            certs = [line[n:n + 3].strip() for n in range(180, 204, 3)]
            if any(certs):
                labs.append((line[:5], ",".join(c for c in certs if c)))
    return modifiers, labs


def cpt_file(path: Path) -> list[str]:
    """The codes of a plain CPT list: the first word of each line (a heading line may lead)."""
    _, text = _text_member(path, r"\.(txt|csv)$", "code list (.txt or .csv)")
    codes = []
    for number, line in enumerate(io.StringIO(text), 1):
        words = re.split(r"[\s,;|\t]+", line.strip(), maxsplit=1)
        if not words[0]:
            continue
        word = words[0].strip('"').upper()
        if CPT.fullmatch(word):
            codes.append(word)
        elif codes or number > 1:
            raise CodeSetError(f"{path}: line {number}: {word!r} is not a CPT code; give one "
                               "code a line (a description may follow it)")
    if not codes:
        raise CodeSetError(f"{path}: holds no CPT codes")
    return codes
