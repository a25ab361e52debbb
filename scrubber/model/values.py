"""X12 values read into Python ones: dates and decimals, each parsed once per text.

A batch repeats the same dates and amounts thousands of times, so both parsers
keep what they parsed (bounded); ``None`` stands for text that is not a value.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, Final

#: appended to an element tuple so that absent trailing elements read ""
PAD: tuple[str, ...] = ("",) * 10

_dates: dict[str, date | None] = {}
_decimals: dict[str, Decimal | None] = {}
_UNSEEN: Final[Any] = object()  # a cache miss: no parsed value is this object
# X12 R and N values: digits, an optional sign and decimal point, no exponent; at most 18
# digits (CLM02, SV102 are R 1/18), so no sum of them can overflow or grow without bound
_NUMBER = re.compile(r"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)", re.ASCII)
_NUMBER_TEXT = 20  # 18 digits, a sign and a point


def parse_date(text: str) -> date | None:
    """CCYYMMDD (or YYMMDD, read as 20YY) to a date; None when not a real date."""
    value = _dates.get(text, _UNSEEN)
    if value is not _UNSEEN:
        return value
    value = None
    if text.isdigit() and len(text) in (6, 8):
        digits = text if len(text) == 8 else "20" + text
        try:
            value = date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
        except ValueError:
            value = None
    if len(_dates) > 100000:
        _dates.clear()
    _dates[text] = value
    return value


def parse_decimal(text: str) -> Decimal | None:
    """An X12 R or N value to a Decimal; None when it is not a number."""
    value = _decimals.get(text, _UNSEEN)  # charges are mostly new: no KeyError to raise
    if value is not _UNSEEN:
        return value
    value = None
    if text and len(text) <= _NUMBER_TEXT and _NUMBER.fullmatch(text) and \
            len(text) - text.startswith("-") - ("." in text) <= 18:
        try:
            value = Decimal(text)
        except (InvalidOperation, ValueError):
            value = None
    if len(_decimals) > 100000:
        _decimals.clear()
    _decimals[text] = value
    return value


def small_int(text: str, digits: int = 6) -> int | None:
    """A count or pointer of at most ``digits`` ASCII digits (LX01 is N0 1/6); else None.

    ``int()`` alone takes "\u00b2" (read from a Latin-1 byte) and raises on 4,300 digits.
    """
    return int(text) if len(text) <= digits and text.isascii() and text.isdigit() else None


def date_range(fmt: str, text: str) -> tuple[date | None, date | None]:
    """A DTP's first and last day from its format (D8, RD8, DT) and text; None when unreadable."""
    if fmt == "RD8":
        start, sep, end = text.partition("-")
        if not sep:
            return None, None
        return parse_date(start), parse_date(end)
    if fmt == "D8":
        day = parse_date(text)
        return day, day
    if fmt == "DT" and len(text) >= 8:
        day = parse_date(text[:8])
        return day, day
    return None, None
