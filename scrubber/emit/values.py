"""Values from an input made safe to carry in the acknowledgements we write.

Our 277CA, 999 and TA1 use ``*`` ``:`` ``^`` ``~``, whatever delimiters the
837 used, so a sender's data may hold our delimiters: a claim id ``A~IEA*1``
copied as is would end our interchange early and inject segments of the
sender's choosing. Every value taken from an input goes through ``carry``
(or ``isa_value`` for the fixed-width ISA): our delimiters, control
characters and anything outside the X12 extended character set become a
space or ``?``, so an acknowledgement always parses as the one interchange we
meant. ``altered`` tells a writer when a value could not be carried as sent.

Carrying is not enough for a receiver that validates what it gets: each
element also has a type and a length in its guide (999 005010X231A1, 277CA
005010X214, TA1 in the interchange control structure). ``fit_text``,
``fit_number``, ``fit_code`` and ``fit_amount`` fit a value to its element or
give "" when it cannot be fitted; the writer then puts the stand-in it
documents (docs/conformance.md, "Values an acknowledgement cannot carry").

``shown`` does the same for what people read (text and HTML reports, logs): a
control character in a claim id would otherwise drive the reader's terminal
(``ESC[2J``), forge a log line, or break the HTML page (XML forbids it).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from decimal import Decimal, InvalidOperation
from typing import TypeAlias

from scrubber.ig.elements import BAD_CHAR

ELEMENT, COMPONENT, REPETITION, TERMINATOR = "*", ":", "^", "~"
DELIMITERS = (ELEMENT, COMPONENT, REPETITION, TERMINATOR)
REPLACEMENT = "?"

#: one element of a segment we write: a simple value, or a composite's components
Element: TypeAlias = str | tuple[str, ...]

_BREAKING = re.compile(r"[*:^~\x00-\x1f\x7f]")
# the extended character set without our delimiters: such a value is carried as it is
_PLAIN = re.compile(r"""[A-Z0-9!"&'()+,\-\./;?= a-z%@\[\]_{}\\|<>`#$]*""", re.ASCII)


def carry(value: str, limit: int | None = None) -> str:
    """``value`` as an element of our acknowledgement: no delimiter, X12 characters only.

    Delimiters and control characters become spaces, other characters
    ``?``; the result is cut to ``limit`` (and then loses trailing spaces).
    """
    if not _PLAIN.fullmatch(value):
        value = BAD_CHAR.sub(REPLACEMENT, _BREAKING.sub(" ", value))
    return value[:limit].rstrip() if limit else value


def altered(value: str) -> bool:
    """Whether ``carry`` has to change ``value`` to carry it."""
    return not _PLAIN.fullmatch(value)


def isa_value(value: str, width: int, default: str = "") -> str:
    """``value`` carried into a fixed-width ISA element: padded or cut to ``width``."""
    return (carry(value, width) or default)[:width].ljust(width)


def fit_text(value: str, low: int, high: int, *, cut: bool = True) -> str:
    """``value`` as an AN element of ``low`` to ``high`` characters, or "" when it cannot be.

    Carried (no delimiter, X12 characters only) and trailing spaces dropped (a
    receiver flags them), then cut to ``high`` when ``cut`` (free text, a copy
    of bad data), else refused when longer (an identifier cut short would
    name something else).
    """
    text = carry(value).rstrip()
    if len(text) > high:
        if not cut:
            return ""
        text = text[:high].rstrip()
    return text if len(text.strip()) >= low else ""


def fit_number(value: object, low: int, high: int) -> str:
    """``value`` as an N0 element (a whole number, ``low`` to ``high`` digits), or "".

    Only a value that is all digits (or an int) is a number here; zeros on the
    left are added up to ``low`` or taken off down to ``high``, which keeps
    the number it is.
    """
    text = str(value) if isinstance(value, int) else str(value).strip()
    if not text.isascii() or not text.isdigit():
        return ""
    if len(text) > high:
        text = text.lstrip("0").rjust(low, "0")
        if len(text) > high:
            return ""
    return text.rjust(low, "0")


def fit_code(value: str, codes: Collection[str]) -> str:
    """``value`` when it is one of the element's ``codes`` (an ID element), else ""."""
    return value if value in codes else ""


def fit_amount(value: Decimal | int | None, high: int = 18) -> str:
    """An R element (an amount, at most ``high`` digits), or "" when it cannot be written.

    Written in plain notation as it was kept (``100.00`` stays so); a
    fraction too long for ``high`` digits is rounded; a value whose whole part
    alone is longer, that is not finite, or none, gives "".
    """
    if value is None:
        return ""
    try:
        number = Decimal(value)
        if not number.is_finite() or number.adjusted() >= high:
            return ""
        places = high - max(number.adjusted() + 1, 1)  # fraction digits left over
        exponent = number.as_tuple().exponent
        if isinstance(exponent, int) and -exponent > places:
            number = number.quantize(Decimal(1).scaleb(-places))
        return format(abs(number) if number == 0 else number, "f")  # never "-0"
    except (InvalidOperation, ValueError, OverflowError):
        return ""


#: ISA05/ISA07 codes of the HIPAA guides (pyx12's interchange control and 277CA maps)
ISA_QUALIFIERS = frozenset(("01", "14", "20", "27", "28", "29", "30", "33", "ZZ"))


def isa_qualifier(code: str) -> str:
    """An ISA05/ISA07 identification qualifier: ``code`` when the guides list it, else ZZ."""
    code = code.strip()
    return code if code in ISA_QUALIFIERS else "ZZ"


def join(elements: Sequence[Element]) -> str:
    """One segment's text (no terminator), every element carried; trailing empties dropped."""
    parts = [COMPONENT.join(carry(c) for c in e) if isinstance(e, tuple) else carry(e)
             for e in elements]
    while len(parts) > 1 and parts[-1] == "":
        parts.pop()
    return ELEMENT.join(parts)


def shown(text: str) -> str:
    """``text`` for a person to read: anything not printable written as an escape (``\\x1b``).

    Control characters (C0 and C1, newlines included), undecodable bytes and
    non-characters are escaped, so the text can neither drive a terminal, nor
    split a log line, nor be refused by an XML serializer.
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                   for c in text)
