"""Values from an input made safe to carry in the acknowledgements we write.

Our 277CA, 999 and TA1 use ``*`` ``:`` ``^`` ``~``, whatever delimiters the
837 used, so a sender's data may hold our delimiters: a claim id ``A~IEA*1``
copied as is would end our interchange early and inject segments of the
sender's choosing. Every value taken from an input goes through ``carry``
(or ``isa_value`` for the fixed-width ISA): our delimiters, control
characters and anything outside the X12 extended character set become a
space or ``?``, so an acknowledgement always parses as the one interchange we
meant. ``altered`` tells a writer when a value could not be carried as sent.

``shown`` does the same for what people read (text and HTML reports, logs): a
control character in a claim id would otherwise drive the reader's terminal
(``ESC[2J``), forge a log line, or break the HTML page (XML forbids it).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
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
