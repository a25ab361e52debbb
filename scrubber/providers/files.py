"""Provider identity files as CMS and the NUCC publish them, read as streams of rows.

- NPPES downloadable file (CMS, monthly, about 8 million rows, 9 GB):
  ``NPPES_Data_Dissemination_<Month>_<Year>.zip`` holding
  ``npidata_pfile_20050523-YYYYMMDD.csv`` (the date after the dash is the day of
  the snapshot) beside its ``_fileheader.csv``, the other-name, practice-location
  and endpoint files and a readme. A quoted CSV of about 330 columns; the ones
  read are found by their headings: NPI, Entity Type Code, Provider Enumeration
  Date, NPI Deactivation Date, NPI Reactivation Date (MM/DD/YYYY) and Healthcare
  Provider Taxonomy Code_1 to _15. A deactivated NPI's row carries little more
  than its NPI and deactivation date. Read row by row, never whole.
- PECOS Order and Referring file (CMS, refreshed about twice a month): a CSV
  ``NPI,LAST_NAME,FIRST_NAME,PARTB,DME,HHA,PMD,HOSPICE`` (Y or N a service
  kind the provider may order or refer for), perhaps under a preamble line, perhaps
  zipped. Names are not kept.
- NUCC Health Care Provider Taxonomy code set (NUCC, twice a year: version yy.0
  in force from January 1, yy.1 from July 1): ``nucc_taxonomy_251.csv``,
  ``Code,Grouping,Classification,Specialization,Definition,...``.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from datetime import date
from operator import itemgetter
from pathlib import Path

from scrubber.cmsfiles import looks_named, normal

NPPES_MEMBER = r"^npidata_pfile_.*\.csv$"
TAXONOMY_SLOTS = 15
# (NPI, entity type "1"/"2"/"", enumerated, deactivated, reactivated as YYYYMMDD ints or
#  None, taxonomy codes)
NppesRow = tuple[int, str, int | None, int | None, int | None, tuple[str, ...]]
PECOS_FLAGS = ("PARTB", "DME", "HHA", "PMD", "HOSPICE")
_DATE_IN_NAME = re.compile(r"(?<!\d)(20\d{2})[-_]?(\d{2})[-_]?(\d{2})(?!\d)|"
                           r"(?<!\d)(\d{2})[-_](\d{2})[-_](20\d{2})(?!\d)")


class ProviderFileError(Exception):
    """A provider file that cannot be used: the message names the file and line."""


@contextmanager
def _text_stream(path: Path, pattern: str, what: str) -> Iterator[tuple[str, io.TextIOBase]]:
    """(member name, text stream) of the zip member matching ``pattern``, or of the file."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                names = [n for n in archive.namelist()
                         if re.search(pattern, Path(n).name, re.IGNORECASE)
                         and "fileheader" not in n.lower() and not n.startswith("__MACOSX/")]
                if not names:
                    listed = ", ".join(archive.namelist()[:8]) or "nothing"
                    raise ProviderFileError(f"{path}: the zip holds no {what} (it holds "
                                            f"{listed})")
                with archive.open(min(names)) as raw:
                    yield Path(min(names)).name, io.TextIOWrapper(
                        raw, encoding="utf-8", errors="replace", newline="")
                return
        with open(path, encoding="utf-8", errors="replace", newline="") as fh:
            yield path.name, fh
    except FileNotFoundError:
        raise ProviderFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ProviderFileError(f"{path}: is a folder; give the {what}") from None
    except (OSError, zipfile.BadZipFile, NotImplementedError) as exc:
        raise ProviderFileError(f"{path}: cannot read: {exc}") from None


def _day(text: str) -> int | None:
    """MM/DD/YYYY (NPPES) or YYYY-MM-DD as YYYYMMDD; None for a blank."""
    if not text:
        return None
    if len(text) == 10 and text[2] == "/" and text[5] == "/":
        value = int(text[6:]) * 10000 + int(text[:2]) * 100 + int(text[3:5])
    elif len(text) == 10 and text[4] == "-":
        value = int(text[:4]) * 10000 + int(text[5:7]) * 100 + int(text[8:])
    else:
        raise ValueError(text)
    date(value // 10000, value // 100 % 100, value % 100)
    return value


def snapshot_named(*names: str) -> date | None:
    """The day a CMS name says: npidata_pfile_20050523-20261207 -> 2026-12-07; a name with
    one date (OrderReferring_20261127, ..._2026-11-27, ..._11-27-2026) -> that date."""
    for name in names:
        stem = Path(name).name
        found = re.search(r"pfile_\d{8}-(\d{8})", stem)
        if found:
            text = found.group(1)
            return date(int(text[:4]), int(text[4:6]), int(text[6:]))
        found = _DATE_IN_NAME.search(stem)
        if found:
            if found.group(1):
                year, month, day = found.group(1, 2, 3)
            else:
                month, day, year = found.group(4, 5, 6)
            try:
                return date(int(year), int(month), int(day))
            except ValueError:
                continue
    return None


# -- NPPES -----------------------------------------------------------------------------------

def _nppes_columns(path: Path, headings: list[str]) -> itemgetter:
    where = {normal(h): n for n, h in enumerate(headings)}
    wanted = ["NPI", "ENTITYTYPECODE", "PROVIDERENUMERATIONDATE", "NPIDEACTIVATIONDATE",
              "NPIREACTIVATIONDATE"]
    wanted += [f"HEALTHCAREPROVIDERTAXONOMYCODE{n}" for n in range(1, TAXONOMY_SLOTS + 1)]
    missing = [w for w in wanted[:5] + wanted[5:6] if w not in where]
    if missing:
        raise ProviderFileError(f"{path}: not the NPPES file: no column {missing[0]} "
                                f"(first headings: {', '.join(headings[:4])})")
    return itemgetter(*(where[w] for w in wanted if w in where))


def nppes_snapshot(path: Path) -> date:
    """The day of an NPPES file's snapshot, from CMS's member (or file) name."""
    from scrubber.cmsfiles import zip_names

    members = [n for n in zip_names(path) if re.search(NPPES_MEMBER, n, re.IGNORECASE)
               and "fileheader" not in n.lower()]
    day = snapshot_named(*members, path.name)
    if day is None:
        raise ProviderFileError(f"{path}: the name does not say the day of the snapshot; keep "
                                "CMS's name (npidata_pfile_20050523-20261207.csv, or the "
                                "NPPES_Data_Dissemination zip holding it)")
    return day


def nppes_rows(path: Path) -> Generator[NppesRow, None, None]:
    """The rows of an NPPES file (or its zip), streamed; ProviderFileError for one that does
    not fit (the message names the line)."""
    with _text_stream(path, NPPES_MEMBER, "NPPES data file (npidata_pfile_*.csv)") as (_, fh):
        reader = csv.reader(fh)
        headings = next(reader, None)
        if not headings:
            raise ProviderFileError(f"{path}: is empty")
        pick = _nppes_columns(path, headings)
        try:
            for cells in reader:
                values = pick(cells)
                npi, entity = values[0], values[1]
                if len(npi) != 10 or not npi.isdigit() or entity not in ("1", "2", ""):
                    raise ValueError(npi)
                yield (int(npi), entity, _day(values[2]), _day(values[3]), _day(values[4]),
                       tuple(t for t in values[5:] if t))
        except (ValueError, IndexError):
            raise ProviderFileError(f"{path}: line {reader.line_num} is not an NPPES row"
                                    ) from None
        except csv.Error as exc:
            raise ProviderFileError(f"{path}: line {reader.line_num}: {exc}") from None


def looks_like_nppes(path: Path) -> bool:
    """An NPPES zip (holding npidata_pfile_*.csv) or a file CMS named npidata_pfile_*."""
    return looks_named(path, NPPES_MEMBER, r"npidata_pfile")


def nppes_heading_check(path: Path) -> None:
    """Read only the headings and the first rows: enough to tell the file, not to index it."""
    rows = nppes_rows(path)
    for _ in zip(range(100), rows, strict=False):
        pass
    rows.close()


# -- PECOS Order and Referring ---------------------------------------------------------------

def _headed_csv(path: Path, pattern: str, what: str, first: str
                ) -> Iterator[tuple[dict[str, int], int, list[str]]]:
    """(column positions by normalised heading, line number, cells) of a CSV whose heading
    line starts with ``first``; lines above it (a preamble) are passed over."""
    with _text_stream(path, pattern, what) as (_, fh):
        reader = csv.reader(fh)
        where: dict[str, int] | None = None
        try:
            for number, cells in enumerate(reader, 1):
                if where is None:
                    if cells and normal(cells[0]) == first:
                        where = {normal(c): n for n, c in enumerate(cells)}
                    elif number > 20:
                        break
                    continue
                if cells and any(cells):
                    yield where, number, cells
        except csv.Error as exc:
            raise ProviderFileError(f"{path}: line {reader.line_num}: {exc}") from None
        if where is None:
            raise ProviderFileError(f"{path}: no heading line starting with {first} in the "
                                    f"first 20 lines; is this the {what}?")


def pecos_rows(path: Path) -> Iterator[tuple[int, int]]:
    """(NPI, flags) of the Order and Referring file: bit n set when PECOS_FLAGS[n] is Y."""
    checked = False
    for where, number, cells in _headed_csv(path, r"\.csv$", "PECOS Order and Referring "
                                            "file (CSV)", "NPI"):
        if not checked:
            if not {"NPI", "PARTB", "DME", "HHA"} <= set(where):
                raise ProviderFileError(f"{path}: not the Order and Referring file: it needs "
                                        "the columns NPI, PARTB, DME, HHA (PMD, HOSPICE)")
            checked = True
        try:
            npi = cells[where["NPI"]].strip()
            if len(npi) != 10 or not npi.isdigit():
                raise ValueError(npi)
            flags = 0
            for bit, name in enumerate(PECOS_FLAGS):
                if name in where:
                    value = cells[where[name]].strip().upper()
                    if value not in ("Y", "N", ""):
                        raise ValueError(value)
                    flags |= (value == "Y") << bit
        except (ValueError, IndexError):
            raise ProviderFileError(f"{path}: line {number} is not an Order and Referring "
                                    "row (NPI, names, then Y or N a column)") from None
        yield int(npi), flags


def _heading_starts(path: Path, words: str) -> bool:
    """True when one of the first lines of the CSV (or the zip's CSV), reduced by ``normal``,
    starts with ``words``: how these files, which CMS and the NUCC name freely, are told."""
    try:
        with _text_stream(path, r"\.csv$", "CSV") as (_, fh):
            head = [fh.readline() for _ in range(3)]
    except ProviderFileError:
        return False
    return any(normal(line).startswith(words) for line in head)


def looks_like_pecos(path: Path) -> bool:
    """A CSV (or zip of one) whose heading line is NPI, LAST_NAME, FIRST_NAME, PARTB ..."""
    return _heading_starts(path, "NPILASTNAMEFIRSTNAMEPARTB")


# -- NUCC taxonomy ---------------------------------------------------------------------------

def nucc_version(name: str) -> tuple[str, date] | None:
    """("25.1", 2025-07-01) from nucc_taxonomy_251.csv: yy.0 is in force from January 1,
    yy.1 from July 1; None for a name without the version."""
    found = re.search(r"taxonomy[_-]?(\d{2})(\d)(?!\d)", Path(name).name, re.IGNORECASE)
    if not found or found.group(2) not in "01":
        return None
    year = 2000 + int(found.group(1))
    return f"{found.group(1)}.{found.group(2)}", date(year, 1 if found.group(2) == "0" else 7, 1)


TAXONOMY_CODE = re.compile(r"[0-9]{3}[0-9A-Z]{6}X")


def nucc_codes(path: Path) -> frozenset[str]:
    """The codes of the NUCC taxonomy CSV (or its zip)."""
    codes = set()
    for where, number, cells in _headed_csv(path, r"\.csv$", "NUCC taxonomy CSV", "CODE"):
        if "GROUPING" not in where or "CLASSIFICATION" not in where:
            raise ProviderFileError(f"{path}: not the NUCC taxonomy CSV (its headings are "
                                    "Code, Grouping, Classification, Specialization ...)")
        code = cells[where["CODE"]].strip().upper()
        if not TAXONOMY_CODE.fullmatch(code):
            raise ProviderFileError(f"{path}: line {number}: {code!r} is not a taxonomy code")
        codes.add(code)
    if not codes:
        raise ProviderFileError(f"{path}: holds no taxonomy codes")
    return frozenset(codes)


def looks_like_nucc(path: Path) -> bool:
    """A CSV (or zip of one) whose heading line is Code, Grouping, Classification ..."""
    return _heading_starts(path, "CODEGROUPINGCLASSIFICATION")
