"""Delimiters of one interchange, read from its fixed-width ISA segment."""

from __future__ import annotations

from dataclasses import dataclass

ISA_LENGTH = 106  # ISA01..ISA16 plus the segment terminator (X12.5 fixed width)


@dataclass(frozen=True, slots=True)
class Delimiters:
    """The four separators an interchange declares in its ISA header."""

    element: str  # ISA byte 4
    component: str  # ISA16
    segment: str  # the byte after ISA16
    repetition: str | None = None  # ISA11 in 00402 and later; None when it is a letter

    def check(self) -> str | None:
        """Return why these delimiters cannot work, or None when they can."""
        seps = [self.element, self.component, self.segment]
        if self.repetition:
            seps.append(self.repetition)
        for sep in seps:
            if sep.isalnum():
                return f"delimiter {sep!r} is a letter or digit"
        if len(set(seps)) != len(seps):
            return "two delimiters are the same character: " + ", ".join(repr(s) for s in seps)
        return None


DEFAULT = Delimiters(element="*", component=":", segment="~", repetition="^")
