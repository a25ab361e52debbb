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


_MONTH_NAMES = ("january", "february", "march", "april", "may", "june", "july", "august",
                "september", "october", "november", "december")
# a month as CMS writes it in a file name: "April", "Apr", "JAN", between non-letters
_MONTH = re.compile(r"(?<![a-z])(" + "|".join(f"{m[:3]}(?:{m[3:]})?" for m in _MONTH_NAMES)
                    + r")(?![a-z])", re.IGNORECASE)
_YEAR = re.compile(r"(?<![0-9])(20[0-9]{2})(?![0-9])")


def month_number(word: str) -> int:
    """1 for "JAN", "Jan" or "January" ..., as CMS writes months in file names."""
    return next(n for n, m in enumerate(_MONTH_NAMES, 1) if m.startswith(word.lower()[:3]))


def release_named(name: str, source: str, context: str = "") -> Release | None:
    """The release a CMS file name says: ``icd10cm_order_2026.txt`` is FY2026,
    ``icd10cm-order-April-2025.txt`` the April 1, 2025 update, a January one the
    January 1 update; None without a year.

    ``context``: another name that may say it (the zip's, for a member): the
    year comes from ``name`` first, the month of a mid-year update from either.
    A mid-year update (any month from January to September) is in force from
    the first of its month to the September 30 that ends its fiscal year.
    """
    found = _YEAR.search(name) or _YEAR.search(context)
    if found is None:
        return None
    year = int(found.group(1))
    end = date(year, 9, 30)
    month = _MONTH.search(name) or _MONTH.search(context)
    number = month_number(month.group(1)) if month is not None else 10
    if number < 10:
        title = _MONTH_NAMES[number - 1].title()
        return Release(f"ICD-10-CM {title} 1, {year} update", date(year, number, 1), end,
                       source)
    return Release(f"ICD-10-CM FY{year}", date(year - 1, 10, 1), end, source)


# -- the bundled release --------------------------------------------------------------------

def bundled_code_list() -> tuple[Path, str]:
    """The code list ``simple-icd-10-cm`` ships, and the library's version."""
    return bundled_file(r"code-list-[A-Za-z]+-20[0-9]{2}\.txt", "code list (code-list-*.txt)")


def bundled_file(pattern: str, what: str) -> tuple[Path, str]:
    """A data file ``simple-icd-10-cm`` ships (its name matches ``pattern``), and the
    library's version; CodeSetError naming ``what`` when there is none.

    Found through the package metadata, not by importing the library: its
    import parses the whole tabular XML, seconds we need not spend.
    """
    from importlib import metadata  # tens of ms to import: only when an index is opened

    try:
        dist = metadata.distribution(LIBRARY)
    except metadata.PackageNotFoundError:
        raise CodeSetError(f"{LIBRARY} is not installed: pip install {LIBRARY}") from None
    for file in dist.files or ():
        if re.fullmatch(pattern, file.name):
            return Path(str(dist.locate_file(file))), dist.version
    raise CodeSetError(f"{LIBRARY} {dist.version} ships no {what}")


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

# What CMS ships beside the file we read, in the same zip: the ICD-10-CM order zip holds
# the addenda (icd10cm_order_addenda_2027.txt), the HCPCS zip the record layout, a
# readme, the Excel copy and proc notes.
ICD_ORDER = (r"order.*\.txt$", r"addend")
HCPCS_FILE = (r"^HCPC.*\.txt$", r"layout|read_?me|transaction|notes|changes")
CPT_LIST = (r"\.(txt|csv)$", r"read_?me")
# a line of the tabular order file: order number, code, 0 header / 1 valid, descriptions
ORDER_LINE = re.compile(r"[0-9]{5}\s+[A-Z][0-9][0-9A-Z]{1,5}\s+[01]\s")


def zip_members(path: Path) -> list[str] | None:
    """The files a zip holds (folders and macOS metadata left out); None: not a zip."""
    if not zipfile.is_zipfile(path):
        return None
    with zipfile.ZipFile(path) as archive:
        return [n for n in archive.namelist() if not n.endswith("/")
                and not n.startswith("__MACOSX/") and not Path(n).name.startswith(".")]


def _pick(path: Path, names: list[str], kind: tuple[str, str], what: str,
          prefer: str | None = None) -> str:
    """The one member of the zip at ``path`` that is ``kind`` (pattern, pattern left out)."""
    pattern, left_out = kind
    found = [n for n in names if re.search(pattern, Path(n).name, re.IGNORECASE)
             and not re.search(left_out, Path(n).name, re.IGNORECASE)]
    if len(found) > 1 and prefer is not None:
        found = [n for n in found if re.search(prefer, Path(n).name, re.IGNORECASE)] or found
    if len(found) != 1:
        listed = ", ".join(Path(n).name for n in names[:8]) or "nothing"
        raise CodeSetError(f"{path}: expected one {what} in the zip, found {len(found)} "
                           f"(it holds {listed})")
    return found[0]


def _text_member(path: Path, kind: tuple[str, str], what: str, prefer: str | None = None,
                 limit: int = -1) -> tuple[str, str]:
    """(member name, text) of the zip's one member of ``kind``, or of the file itself.

    ``limit``: read only this many bytes (enough to recognise the file).
    """
    try:
        names = zip_members(path)
        if names is None:
            with open(path, "rb") as fh:
                return path.name, fh.read(limit).decode("latin-1")
        member = _pick(path, names, kind, what, prefer)
        with zipfile.ZipFile(path) as archive, archive.open(member) as fh:
            return Path(member).name, fh.read(limit).decode("latin-1")
    except FileNotFoundError:
        raise CodeSetError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise CodeSetError(f"{path}: is a folder; give the CMS file (.zip or .txt)") from None
    except (OSError, zipfile.BadZipFile) as exc:
        raise CodeSetError(f"{path}: cannot read: {exc}") from None


def _icd_release(path: Path, member: str) -> Release:
    """The release the names say (the member's year first, then the zip's)."""
    context = path.name if member != path.name else ""
    release = release_named(member, str(path), context)
    if release is None:
        raise CodeSetError(
            f"{path}: the name does not say the fiscal year; keep CMS's name "
            "(icd10cm_order_2026.txt, or icd10cm-order-April-2026.txt for an April update)")
    return release


def icd10cm_file(path: Path) -> tuple[Release, list[tuple[str, bool]]]:
    """The release and (code, header) rows of a CMS order file (or its zip).

    The fiscal year comes from the name (the member's, else the zip's), as CMS
    names them; a file named otherwise is refused with how to name it. The
    addenda CMS puts in the same zip are passed over: the order file is whole.
    """
    member, text = _text_member(path, ICD_ORDER, "tabular order file (*order*.txt)")
    release = _icd_release(path, member)
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


def _hcpcs_record(line: str) -> bool:
    """Whether ``line`` is a record of CMS's HCPCS file (any record id)."""
    return (len(line.rstrip("\r\n")) >= 292 and line[10:11] in ("3", "4", "7", "8")
            and bool(HCPCS.fullmatch(line[:5]) or CPT.fullmatch(line[:5])
                     or line[10:11] in ("7", "8")))


def quarter_of(day: date) -> tuple[date, date]:
    """The first and last day of the calendar quarter of ``day``."""
    start = date(day.year, (day.month - 1) // 3 * 3 + 1, 1)
    end = (date(start.year + (start.month + 2) // 12, (start.month + 2) % 12 + 1, 1)
           - timedelta(days=1))
    return start, end


def hcpcs_quarter_named(member: str, path: Path) -> tuple[date, date] | None:
    """The quarter CMS's names say: ``HCPC2026_APR_ANWEB...``, else a zip named with a
    month and year (``january-2025-alpha-numeric-hcpcs-file.zip``); None when neither."""
    named = re.search(r"HCPC(20[0-9]{2})_(JAN|APR|JUL|OCT)", member + " " + path.name,
                      re.IGNORECASE)
    if named:
        return quarter_of(date(int(named.group(1)), _MONTHS[named.group(2).upper()], 1))
    year, month = _YEAR.search(path.name), _MONTH.search(path.name)
    if year and month:
        return quarter_of(date(int(year.group(1)), month_number(month.group(1)), 1))
    return None


def hcpcs_file(path: Path) -> tuple[tuple[date, date], list[HcpcsRow]]:
    """The dates the file speaks for (its quarter) and (code, added, effective, terminated).

    Fixed width, positions 1-5 code, 11 record id (3: a procedure's first
    line), 269-276 added, 277-284 action effective, 285-292 termination date.
    The quarter comes from CMS's name (HCPC2026_APR_...), else from the latest
    date in the file. In CMS's zip the record layout, readme and Excel copy
    beside the file are passed over.
    """
    member, text = _text_member(path, HCPCS_FILE, "HCPCS file (HCPC*.txt)", prefer="ANWEB")
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
    window = hcpcs_quarter_named(member, path)
    if window is None:
        dates = [d for row in rows for d in row[1:] if d is not None]
        if not dates:
            raise CodeSetError(f"{path}: neither the name (HCPC2026_APR_...) nor a date in "
                               "the file says its quarter; keep CMS's name")
        window = quarter_of(max(dates))
    return window, rows


# -- telling a file as CMS ships it (scrub data add) -----------------------------------------

SNIFF = 1 << 14  # bytes read to tell a file: the first lines


def _first_lines(text: str, count: int = 20) -> list[str]:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[:count]


def recognize_icd10cm(path: Path) -> Release | None:
    """The release of a CMS ICD-10-CM order file (or its zip, addenda beside it); None when
    it is not one. Raises ``CodeSetError`` for CMS's plain codes file (it lacks the
    header flag) and for an order file whose name says no year."""
    names = zip_members(path)
    if names is not None and not any(re.search(ICD_ORDER[0], Path(n).name, re.IGNORECASE)
                                     for n in names):
        if any(re.search(r"icd10cm.*codes.*\.txt$", Path(n).name, re.IGNORECASE)
               for n in names):
            raise CodeSetError(f"{path}: holds CMS's ICD-10-CM codes file, which does not "
                               "mark headers; give the code descriptions in tabular order "
                               "zip (icd10cm_order_YYYY.txt)")
        return None
    member, text = _text_member(path, ICD_ORDER, "tabular order file (*order*.txt)",
                                limit=SNIFF)
    lines = _first_lines(text, 2)
    if lines and ORDER_LINE.match(lines[0]):
        return _icd_release(path, member)
    if lines and re.match(r"[A-Z][0-9][0-9A-Z]{1,5}\s+\S", lines[0]) and \
            re.search(r"icd.?10", member + path.name, re.IGNORECASE):
        raise CodeSetError(f"{path}: this looks like CMS's ICD-10-CM codes file, which does "
                           "not mark headers; give the code descriptions in tabular order "
                           "file (icd10cm_order_YYYY.txt, or its zip)")
    return None


def recognize_hcpcs(path: Path) -> tuple[date, date] | None:
    """The quarter of a CMS HCPCS Level II file (or its quarterly zip); None when it is not
    one. Raises ``CodeSetError`` for a zip that holds only the Excel copy."""
    names = zip_members(path)
    if names is not None:
        if not any(re.search(HCPCS_FILE[0], Path(n).name, re.IGNORECASE) for n in names):
            if any(re.search(r"^HCPC.*\.xlsx?$", Path(n).name, re.IGNORECASE) for n in names):
                raise CodeSetError(f"{path}: holds only the Excel copy of the HCPCS file; "
                                   "give the zip with the text file (HCPC..._ANWEB....txt)")
            return None
    member, text = _text_member(path, HCPCS_FILE, "HCPCS file (HCPC*.txt)", prefer="ANWEB",
                                limit=SNIFF)
    lines = _first_lines(text, 1)
    if not lines or not _hcpcs_record(lines[0]):
        return None
    return hcpcs_quarter_named(member, path) or hcpcs_file(path)[0]


def recognize_cpt(path: Path) -> bool:
    """Whether ``path`` is a plain CPT code list: a code and perhaps words a line (a heading
    may lead), "CPT" in its name or heading. Not a table of codes and numbers (an MUE
    file), nor of code pairs (PTP)."""
    names = zip_members(path)
    if names is not None and sum(bool(re.search(CPT_LIST[0], n, re.IGNORECASE))
                                 for n in names) != 1:
        return False
    member, text = _text_member(path, CPT_LIST, "code list (.txt or .csv)", limit=SNIFF)
    lines = _first_lines(text)
    if not re.search(r"cpt", " ".join([path.name, member, *lines[:1]]), re.IGNORECASE):
        return False  # a list of codes of another kind (CLIA's, a payer's) looks the same
    if len(text) == SNIFF and lines:
        lines = lines[:-1]  # the last may be cut short
    rows = lines[1:] if lines and not CPT.fullmatch(_words(lines[0])[0]) else lines
    if not rows:
        return False
    for line in rows:
        words = _words(line)
        if not CPT.fullmatch(words[0]):
            return False
        rest = words[1] if len(words) > 1 else ""
        if rest[:1].isdigit() or re.match(r"[A-Z][0-9]{2}", rest.upper()):
            return False  # units (MUE), a second code (PTP), a diagnosis or order number
    return True


def _words(line: str) -> list[str]:
    """The code (upper case, unquoted) and what follows it on a line of a code list."""
    words = re.split(r"[\s,;|\t]+", line.strip(), maxsplit=1)
    return [words[0].strip('"').upper(), *(w.strip('"') for w in words[1:])]


LAB_CERTIFICATION = slice(180, 204)  # LABCERT1-8, three characters each, positions 181-204


def hcpcs_modifiers_and_labs(path: Path) -> tuple[list[HcpcsRow], list[tuple[str, str]]]:
    """The HCPCS file's Level II modifiers with their dates, and its lab certification codes.

    Modifier records have record id 7 in position 11 (8: a continuation line),
    the modifier in the code field; a procedure's LABCERT1-8 (positions 181-204,
    three characters each) name the CLIA certification specialties that may
    perform it: a code with any is subject to CLIA. Returns (modifier, added,
    effective, terminated) rows and (code, certification codes joined by ",").
    """
    _, text = _text_member(path, HCPCS_FILE, "HCPCS file (HCPC*.txt)", prefer="ANWEB")
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
    _, text = _text_member(path, CPT_LIST, "code list (.txt or .csv)")
    codes = []
    for number, line in enumerate(io.StringIO(text), 1):
        word = _words(line)[0]
        if not word:
            continue
        if CPT.fullmatch(word):
            codes.append(word)
        elif codes or number > 1:
            raise CodeSetError(f"{path}: line {number}: {word!r} is not a CPT code; give one "
                               "code a line (a description may follow it)")
    if not codes:
        raise CodeSetError(f"{path}: holds no CPT codes")
    return codes
