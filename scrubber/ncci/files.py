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
from datetime import date
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
