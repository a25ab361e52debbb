"""Files as CMS publishes them: a download (a zip, or the text taken out of it) and its quarter.

CMS ships its reference tables as a zip holding a text copy (CSV, tab-delimited or
fixed width), an Excel copy and notes; a user may give the zip as downloaded or
the text alone. ``member_text`` returns the one text a reader wants from either;
``quarter_named`` reads the quarter a CMS name says (RVU26A, PPRRVU26_JAN,
PPRRVU2026_Jan_nonQPP, AOC_V2026Q1-MCR); ``headed_rows`` splits a table whose
column headings (possibly over several lines) sit above its rows.
"""

from __future__ import annotations

import csv
import re
import zipfile
from collections.abc import Callable, Iterator
from datetime import date
from functools import lru_cache
from pathlib import Path

QUARTER_MONTHS = {"JAN": 1, "APR": 4, "JUL": 7, "OCT": 10}
RVU_LETTERS = {"A": 1, "B": 4, "C": 7, "D": 10}  # RVU26A: January ... RVU26D: October
CODE = re.compile(r"\d{4}[0-9A-Z]|[A-Z]\d{4}")  # CPT or HCPCS Level II


def member_text(path: Path, pattern: str, what: str, error: type[Exception],
                rank: Callable[[str], tuple] | None = None) -> tuple[str, str]:
    """(name, text) of the zip member whose name matches ``pattern``, or of the file itself.

    Several members may match (CSV and text copies of one table): ``rank`` orders
    them by name, the lowest wins. UTF-8, else Windows-1252 (CMS uses both).
    ``error`` (naming the file) when it is missing, unreadable or holds no match.
    """
    try:
        if not zipfile.is_zipfile(path):
            return path.name, decode(path.read_bytes())
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist()
                     if not n.endswith("/") and not n.startswith("__MACOSX/")
                     and re.search(pattern, Path(n).name, re.IGNORECASE)]
            if not names:
                listed = ", ".join(archive.namelist()[:8]) or "nothing"
                raise error(f"{path}: the zip holds no {what} (it holds {listed})")
            name = min(names, key=rank or (lambda n: (n,)))
            return Path(name).name, decode(archive.read(name))
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except IsADirectoryError:
        raise error(f"{path}: is a folder; give the CMS file (the zip as downloaded, or "
                    f"the {what} in it)") from None
    except (OSError, zipfile.BadZipFile, NotImplementedError) as exc:
        raise error(f"{path}: cannot read: {exc}") from None


def zip_names(path: Path) -> tuple[str, ...]:
    """The member names of a zip; () for any other file (or one that cannot be read)."""
    try:
        if path.is_file() and zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                return tuple(Path(n).name for n in archive.namelist())
    except (OSError, zipfile.BadZipFile):
        pass
    return ()


def looks_named(path: Path, member: str, name: str) -> bool:
    """A zip holding a member whose name matches ``member``, or a file whose name starts
    the way ``name`` says: how a recognizer tells CMS's files by CMS's names."""
    names = zip_names(path)
    if names:
        return any(re.search(member, n, re.IGNORECASE) for n in names)
    return bool(re.match(name, path.name, re.IGNORECASE))


def decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8").lstrip("\ufeff")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def quarter_named(*names: str) -> date | None:
    """The first day of the quarter the first of ``names`` that says one says, or None."""
    for name in names:
        upper = Path(name).name.upper()
        found = re.search(r"RVU(\d{2})([A-D])(?![A-Z])|RVU(\d{2})([A-D])R", upper)
        if found:
            year, letter = (found.group(1), found.group(2)) if found.group(1) else \
                (found.group(3), found.group(4))
            return date(2000 + int(year), RVU_LETTERS[letter], 1)
        found = re.search(r"(?<![0-9])(20\d{2})[ _-]?Q([1-4])(?![0-9])", upper)
        if found:
            return date(int(found.group(1)), 3 * int(found.group(2)) - 2, 1)
        found = re.search(r"(?<![0-9])(20\d{2}|\d{2})[ _-]?(JAN|APR|JUL|OCT)", upper)
        if found:
            year = int(found.group(1))
            return date(year if year > 99 else 2000 + year, QUARTER_MONTHS[found.group(2)], 1)
    return None


@lru_cache(maxsize=256)  # a fee-schedule finding names its release: a few quarters, each often
def quarter_label(start: date) -> str:
    """"2026 January quarter"."""
    return f"{start.year} {start:%B} quarter"


def normal(heading: str) -> str:
    """A column heading reduced to its letters and digits, upper case: "CO- SURG" -> "COSURG"."""
    return re.sub(r"[^0-9A-Z]", "", heading.upper())


def cells(line: str) -> list[str]:
    """A line's cells: tab-delimited when it has a tab, else CSV; each stripped."""
    if "\t" in line:
        return [c.strip().strip('"').strip() for c in line.split("\t")]
    return [c.strip() for c in next(csv.reader((line,)), [])]


def headed_rows(text: str, first: str, *, fixed: bool = False, head_lines: int = 100
                ) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """(headings, numbered rows) of a table whose heading line starts with ``first``.

    Lines above the heading (a notice, titles) are passed over; heading lines
    just above it with as many cells (a heading split over lines) are joined
    into it, column by column. With ``fixed``, the table is fixed width: each
    column starts where its heading starts, and headings are set apart by two
    or more spaces. Returns no headings when none is found in ``head_lines``.
    """
    lines = text.splitlines()
    want = normal(first)
    for number, line in enumerate(lines[:head_lines]):
        if fixed:
            found = _fixed_headings(line)
            if found and normal(found[0][1]) == want:
                return ([normal(name) for _, name in found],
                        _fixed_rows(lines, number + 1, [start for start, _ in found]))
            continue
        headings = cells(line)
        if not headings or normal(headings[0]) != want:
            continue
        above = number - 1
        while above >= 0:
            upper = cells(lines[above])
            if sum(1 for c in upper if c) < 3:
                break
            headings = [" ".join(filter(None, (u, h))) for u, h in
                        zip(upper + [""] * len(headings), headings, strict=False)]
            above -= 1
        return [normal(h) for h in headings], _delimited_rows(lines, number + 1)
    return [], iter(())


def _fixed_headings(line: str) -> list[tuple[int, str]]:
    return [(m.start(), m.group()) for m in re.finditer(r"\S+(?: \S+)*", line)]


def _fixed_rows(lines: list[str], start: int, starts: list[int]
                ) -> Iterator[tuple[int, list[str]]]:
    ends = starts[1:] + [None]
    for number in range(start, len(lines)):
        line = lines[number]
        if line.strip():
            yield number + 1, [line[a:b].strip() for a, b in zip(starts, ends, strict=True)]


def _delimited_rows(lines: list[str], start: int) -> Iterator[tuple[int, list[str]]]:
    for number in range(start, len(lines)):
        if lines[number].strip():
            yield number + 1, cells(lines[number])


def day_number(text: str) -> int | None:
    """YYYYMMDD as an int; None for a blank or "*" (no date). ValueError for anything else."""
    text = text.strip()
    if text in ("", "*"):
        return None
    if len(text) == 8 and text.isdigit():
        date(int(text[:4]), int(text[4:6]), int(text[6:]))
        return int(text)
    raise ValueError(f"{text!r} is not a date (YYYYMMDD)")


def as_date(value: int | None) -> date | None:
    return date(value // 10000, value // 100 % 100, value % 100) if value else None


def as_number(day: date) -> int:
    return day.year * 10000 + day.month * 100 + day.day
