"""A claim's segments as read, kept so that its body is built only when asked for."""

from __future__ import annotations

from typing import NamedTuple

from scrubber.model.claim_body import LINE_KEY_IDS, LineKey, claim_body, line_keys
from scrubber.model.claims import Claim, DateValue, Location
from scrubber.model.values import PAD, parse_decimal
from scrubber.x12.tokenizer import Run, Segment

_new = tuple.__new__


class ClaimSource(NamedTuple):
    """A claim's segments as read: CLM, then Segments and Runs, in order."""

    component: str  # the interchange's component separator
    pieces: tuple  # Segment | Run

    def segments(self) -> list[Segment]:
        return select_segments(self.pieces)

    def body(self) -> tuple:
        """The claim's fields after CLM, in the order ``Claim`` keeps them."""
        return claim_body(self.segments(), self.component)

    def line_keys(self) -> tuple[DateValue | None, list[LineKey]]:
        """The statement period and what the day index keeps of each line, without the body:
        only the segments that say them are split (``claim_body.line_keys``)."""
        return line_keys(select_segments(self.pieces, LINE_KEY_IDS), self.component)

    # equal when the segments are, however the reader happened to cut them into pieces
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ClaimSource):
            return NotImplemented
        return self.component == other.component and self.segments() == other.segments()

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    def __hash__(self) -> int:
        return hash(tuple(self.segments()))


def claim_from(clm: Segment, pieces: tuple, component: str) -> Claim:
    """A Claim from its CLM segment; ``pieces`` (CLM first) are built into the rest on demand."""
    el = clm[1] + PAD
    clm05 = el[5].split(component)
    return Claim(
        el[1], parse_decimal(el[2]), el[2],  # id, charge, charge as sent
        clm05[0], clm05[1] if len(clm05) > 1 else "", clm05[2] if len(clm05) > 2 else "",
        el[6], el[7], el[8], el[9],  # signature, assignment, benefits, release of information
        _new(Location, (clm[2], clm[3], clm[4])),
        _new(ClaimSource, (component, pieces)),
    )


def select_segments(pieces: list | tuple, ids: frozenset[str] | None = None) -> list[Segment]:
    """The Segments of ``pieces`` (Segments and Runs) whose id is in ``ids`` (None: all)."""
    out: list[Segment] = []
    for piece in pieces:
        if piece.__class__ is Run:  # a claim's Run is a slice of a block: a few segments
            out.extend(piece.segments() if ids is None else piece.select(ids))
        elif ids is None or piece[0] in ids:
            out.append(piece)
    return out
