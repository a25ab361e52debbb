"""Read CMS NCCI files as CMS publishes them: PTP and MUE rows, streamed.

A path is a tab-delimited ``.txt`` or a ``.csv``, or a ``.zip`` holding one or
several of them (other members, such as a PDF or an end-user agreement, are
passed over). The lines above the first data row (copyright notice, titles,
column headings) are skipped; from the first data row on, every non-blank line
must be a row of the layout, or ``NcciError`` names the file, zip member and line.

Layouts (CMS NCCI PTP and MUE files, any quarter):
- PTP: column 1 code, column 2 code, "*=in existence prior to 1996", effective
  date (YYYYMMDD), deletion date (YYYYMMDD or ``*``), modifier indicator
  (0 not allowed, 1 allowed, 9 not applicable), PTP edit rationale.
- MUE: HCPCS/CPT code, MUE value (units), MUE adjudication indicator ("1 Line
  Edit", "2 Date of Service Edit: Policy", "3 Date of Service Edit: Clinical"),
  MUE rationale.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO

# CPT (Category I, II "1234F", III "0123T", PLA "0001U") or HCPCS Level II ("J1234").
CODE = re.compile(r"\d{4}[0-9A-Z]|[A-Z]\d{4}")
HEADER_LINES = 100  # more lines than this before the first row: not a CMS file
NO_DELETION = 99999999  # a deletion date of "*": the edit is in force
DATA_SUFFIXES = (".txt", ".csv")

# (column 1, column 2, prior 1996, effective, deletion, modifier indicator, rationale)
PtpRow = tuple[str, str, bool, int, int, int, str]
# (code, units, adjudication indicator, rationale)
MueRow = tuple[str, int, int, str]


class NcciError(Exception):
    """A CMS file that cannot be used: missing, not in the layout, or a row that does not fit."""


@dataclass(frozen=True, slots=True)
class Where:
    """A position in a CMS file, for error messages: path, zip member, line."""

    path: str
    member: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        text = self.path
        if self.member is not None:
            text += f" (zip member {self.member})"
        if self.line is not None:
            text += f", line {self.line}"
        return text


def ptp_rows(path: str | Path) -> Iterator[PtpRow]:
    """Every PTP row of ``path`` (a .txt, .csv or .zip of them), in file order."""
    yield from _rows(path, "PTP", 6, _ptp_row)


def mue_rows(path: str | Path) -> Iterator[MueRow]:
    """Every MUE row of ``path`` (a .txt, .csv or .zip of them), in file order."""
    yield from _rows(path, "MUE", 3, _mue_row)


def _rows(path: str | Path, what: str, width: int, parse: Callable) -> Iterator:
    for where, lines in _texts(Path(path)):
        yield from _table(where, lines, what, width, parse)


def _texts(path: Path) -> Iterator[tuple[Where, Iterator[tuple[int, str]]]]:
    """(where, numbered lines) per text in ``path``: the file itself, or each zip member."""
    if not path.is_file():
        raise NcciError(f"{path}: no such file")
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as fh:
            yield Where(str(path)), _lines(fh)
        return
    try:
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.infolist() if _is_data(m)]
            if not members:
                names = ", ".join(m.filename for m in archive.infolist()) or "nothing"
                raise NcciError(
                    f"{path}: the zip holds no .txt or .csv file (it holds {names}); "
                    "CMS publishes the tables as tab-delimited text or CSV")
            for member in members:
                # ZipExtFile reads lines in Python; a buffer over it reads them in C.
                member_file = archive.open(member)
                assert isinstance(member_file, zipfile.ZipExtFile)  # opened for reading
                with io.BufferedReader(member_file, 1 << 20) as fh:
                    yield Where(str(path), member.filename), _lines(fh)
    except (zipfile.BadZipFile, NotImplementedError, OSError) as exc:
        raise NcciError(f"{path}: cannot read the zip: {exc}") from exc


def _is_data(member: zipfile.ZipInfo) -> bool:
    name = member.filename
    return (not member.is_dir() and not name.startswith("__MACOSX/")
            and not Path(name).name.startswith(".") and name.lower().endswith(DATA_SUFFIXES))


def _lines(fh: BinaryIO) -> Iterator[tuple[int, str]]:
    """Numbered text lines; UTF-8, else Windows-1252 (the code columns are ASCII either way)."""
    for number, raw in enumerate(fh, 1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("cp1252", errors="replace")
        if number == 1:
            text = text.lstrip("\ufeff")
        yield number, text.rstrip("\r\n")


def _fields(text: str) -> list[str]:
    """A line's fields: tab-delimited when it has a tab, else CSV."""
    if "\t" in text:
        fields = [f.strip() for f in text.split("\t")]
        return [_unquote(f) for f in fields] if '"' in text else fields
    return [f.strip() for f in next(csv.reader((text,)), [])]


def _unquote(field: str) -> str:
    if len(field) >= 2 and field[0] == field[-1] == '"':
        return field[1:-1].replace('""', '"').strip()
    return field


def _table(where: Where, lines: Iterator[tuple[int, str]], what: str, width: int,
           parse: Callable) -> Iterator:
    """The rows of one text: headings skipped up to the first row, then every line a row."""
    started = False
    for number, text in lines:
        fields = _fields(text)
        if not any(fields):
            continue
        if not started:
            if not CODE.fullmatch(fields[0].upper()):
                if number > HEADER_LINES:
                    raise NcciError(f"{where}: no {what} row in the first {HEADER_LINES} "
                                    f"lines; is this a CMS {what} file?")
                continue
            started = True
        try:
            yield parse(fields, width)
        except ValueError as exc:
            shown = text if len(text) <= 120 else text[:117] + "..."
            raise NcciError(f"{Where(where.path, where.member, number)}: not a {what} row "
                            f"({exc}): {shown!r}") from None
    if not started:
        raise NcciError(f"{where}: no {what} rows found; is this a CMS {what} file?")


def _ptp_row(fields: list[str], width: int) -> PtpRow:
    _width(fields, width, 7, "column 1, column 2, prior-1996 flag, effective date, "
                             "deletion date, modifier indicator, rationale")
    column1, column2 = _code(fields[0], "column 1"), _code(fields[1], "column 2")
    if fields[2] not in ("", "*"):
        raise ValueError(f"the prior-1996 flag is {fields[2]!r}, expected '*' or nothing")
    effective = _date(fields[3], "effective date")
    deletion = NO_DELETION if fields[4] == "*" else _date(fields[4], "deletion date")
    if fields[5] not in ("0", "1", "9"):
        raise ValueError(f"the modifier indicator is {fields[5]!r}, expected 0, 1 or 9")
    rationale = fields[6] if len(fields) > 6 else ""
    return column1, column2, fields[2] == "*", effective, deletion, int(fields[5]), rationale


def _mue_row(fields: list[str], width: int) -> MueRow:
    _width(fields, width, 4, "code, MUE value, adjudication indicator, rationale")
    code = _code(fields[0], "code")
    if not fields[1].isdigit():
        raise ValueError(f"the MUE value is {fields[1]!r}, expected a whole number of units")
    indicator = fields[2][:1]
    if indicator not in ("1", "2", "3") or (len(fields[2]) > 1 and fields[2][1].isdigit()):
        raise ValueError(f"the adjudication indicator is {fields[2]!r}, expected "
                         "'1 Line Edit', '2 Date of Service Edit: Policy' or "
                         "'3 Date of Service Edit: Clinical'")
    rationale = fields[3] if len(fields) > 3 else ""
    return code, int(fields[1]), int(indicator), rationale


def _width(fields: list[str], least: int, most: int, names: str) -> None:
    if len(fields) < least or any(fields[most:]):
        raise ValueError(f"{len(fields)} columns, expected {names}")


@lru_cache(maxsize=1 << 14)  # a table repeats some 15,000 codes over millions of rows
def _code(text: str, name: str) -> str:
    code = text.upper()
    if not CODE.fullmatch(code):
        raise ValueError(f"the {name} code is {text!r}, expected a 5-character CPT/HCPCS code")
    return code


@lru_cache(maxsize=1 << 12)
def _date(text: str, name: str) -> int:
    if len(text) == 8 and text.isdigit():
        try:
            date(int(text[:4]), int(text[4:6]), int(text[6:]))
            return int(text)
        except ValueError:
            pass
    raise ValueError(f"the {name} is {text!r}, expected YYYYMMDD")


# -- telling a file as CMS ships it (scrub data add) --------------------------------------

PRACTITIONER, OUTPATIENT = "practitioner", "outpatient"
_QUARTERS = ("January", "April", "July", "October")
_SETTING_WORDS = ((OUTPATIENT, r"ccioph|outpatient|hospital|facility"),
                  (PRACTITIONER, r"ccipra|practitioner"))
_DME = r"(?<![a-z])dme(?![a-z])|dme.?supplier"


@dataclass(frozen=True, slots=True)
class NcciFile:
    """What a CMS NCCI file is: its table, the setting it serves and its quarter."""

    table: str  # "ptp" or "mue"
    setting: str  # PRACTITIONER (837P) or OUTPATIENT (hospital outpatient, 837I)
    start: date | None  # the first day of its quarter; None: neither name nor heading says
    version: str = ""  # CMS's version: "32.1" from ccipra-v321r0-f1

    @property
    def end(self) -> date | None:
        """The last day of its quarter (CMS replaces the files every quarter)."""
        if self.start is None:
            return None
        month = (self.start.month - 1) // 3 * 3 + 3
        return date(self.start.year + month // 12, month % 12 + 1, 1) - timedelta(days=1)

    def label(self) -> str:
        what = "PTP edits" if self.table == "ptp" else "MUEs"
        setting = "practitioner" if self.setting == PRACTITIONER else "hospital outpatient"
        when = ""
        if self.start is not None:
            quarter = _QUARTERS[(self.start.month - 1) // 3]
            when = f", {quarter} {self.start.year} quarter"
        version = f" (version {self.version})" if self.version else ""
        return f"NCCI {setting} {what}{when}{version}"


def recognize(path: str | Path) -> NcciFile | None:
    """What the CMS NCCI file (or zip) at ``path`` is; None when it is not one.

    The table from the first row (PTP: two codes, dates and a modifier indicator;
    MUE: a code, units and an adjudication indicator); the setting and quarter
    from CMS's names (``ccipra-v321r0-f1.zip``: practitioner PTP, version 32.1,
    April 2026; ``MCR_MUE_OutpatientHospitalServices_Eff_07-01-2026.csv``), else
    from the headings above the rows. Reads the first lines only. Raises
    ``NcciError`` for the DME supplier MUE table (for DME claims, which the
    rules do not tell apart) and for a zip of several kinds.
    """
    path = Path(path)
    names = [path.name]
    found: list[tuple[str, str]] = []  # (table, heading text) per text in the file
    try:
        for where, lines in _texts(path):
            if where.member is not None:
                names.append(Path(where.member).name)
            found.append(_first_row(lines))
    except NcciError:
        return None
    tables = {table for table, _ in found}
    if not found or "" in tables:
        return None
    if len(tables) > 1:
        raise NcciError(f"{path}: holds both PTP and MUE tables; give each as CMS ships it")
    table = tables.pop()
    words = " ".join(names)
    headings = " ".join(text for _, text in found)
    if re.search(_DME, words, re.IGNORECASE) or re.search(_DME, headings, re.IGNORECASE):
        raise NcciError(f"{path}: the DME supplier MUE table is for DME supplier claims, "
                        "which the scrubber does not tell apart; add the practitioner "
                        "(837P) and outpatient hospital (837I) tables")
    setting = next((s for s, pattern in _SETTING_WORDS if re.search(pattern, words, re.I)),
                   None) or next((s for s, pattern in _SETTING_WORDS
                                  if re.search(pattern, headings, re.I)), PRACTITIONER)
    start, version = _quarter(words)
    return NcciFile(table, setting, start, version)


def _first_row(lines: Iterator[tuple[int, str]]) -> tuple[str, str]:
    """("ptp" or "mue", the heading text above it) of a text's first row; "" for no row."""
    headings = []
    for number, text in lines:
        fields = _fields(text)
        if not any(fields):
            continue
        if not CODE.fullmatch(fields[0].upper()):
            if number > HEADER_LINES:
                break
            headings.append(text)
            continue
        for table, parse, width in (("ptp", _ptp_row, 6), ("mue", _mue_row, 3)):
            try:
                parse(fields, width)
                return table, " ".join(headings)
            except ValueError:
                continue
        break
    return "", ""


def _quarter(words: str) -> tuple[date | None, str]:
    """(first day of the quarter, version) from CMS's names, else (None, "")."""
    version = re.search(r"v(\d\d)(\d)r\d", words, re.IGNORECASE)
    if version and version.group(2) in "0123":  # version 32.1: the second quarter of 2026
        year, index = 1994 + int(version.group(1)), int(version.group(2))
        return date(year, index * 3 + 1, 1), f"{version.group(1)}.{version.group(2)}"
    effective = re.search(r"eff\w*?[_ -]?(\d\d)[-_](\d\d)[-_](20\d\d)", words, re.IGNORECASE)
    if effective:
        try:
            day = date(int(effective.group(3)), int(effective.group(1)), int(effective.group(2)))
        except ValueError:
            return None, ""
        return date(day.year, (day.month - 1) // 3 * 3 + 1, 1), ""
    named = re.search(r"(20\d\d)[-_ ]?q([1-4])", words, re.IGNORECASE)
    if named:
        return date(int(named.group(1)), int(named.group(2)) * 3 - 2, 1), ""
    return None, ""


def release_start(path: str | Path) -> date | None:
    """The first day of the quarter CMS's names say a file is the release of (None: they
    do not say). Reads the names only (a zip's directory), never the rows: every run
    that opens the index asks it."""
    path = Path(path)
    names = [path.name]
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                names += [Path(n).name for n in archive.namelist()]
    except (OSError, zipfile.BadZipFile):
        return None
    return _quarter(" ".join(names))[0]
