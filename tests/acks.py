"""Test helper: an acknowledgement we wrote, split into its interchanges by our own tokenizer.

``interchanges(data)`` fails the test unless ``data`` reads as whole
interchanges (ISA ... IEA, IEA02 = ISA13, nothing between or after them) and
every segment id is one an acknowledgement may hold: a value that smuggled a
delimiter into the text shows up as a foreign segment or a second ISA.
"""

from __future__ import annotations

import io

from scrubber.x12 import Segment, SyntaxProblem, Tokenizer

ACK_SEGMENTS = frozenset((
    "ISA", "GS", "ST", "SE", "GE", "IEA", "TA1",  # envelopes and the TA1
    "AK1", "AK2", "IK3", "CTX", "IK4", "IK5", "AK9",  # 999
    "BHT", "HL", "NM1", "TRN", "DTP", "STC", "QTY", "AMT", "REF", "SVC",  # 277CA
))


def interchanges(data: bytes) -> list[list[Segment]]:
    """The interchanges of an acknowledgement, each a list of its segments."""
    assert data.isascii(), "an acknowledgement is ASCII"
    found: list[list[Segment]] = []
    current: list[Segment] | None = None
    for item in Tokenizer(io.BytesIO(data)):
        assert not isinstance(item, SyntaxProblem), item
        assert item.id in ACK_SEGMENTS, f"foreign segment {item.id!r}: {item.elements}"
        if item.id == "ISA":
            assert current is None, "an ISA inside an interchange"
            assert len(item.elements) == 17, item.elements
            current = [item]
            continue
        assert current is not None, f"{item.id} outside an interchange"
        current.append(item)
        if item.id == "IEA":
            assert item.get(2) == current[0].get(13), "IEA02 is not ISA13"
            found.append(current)
            current = None
    assert current is None, "an interchange without its IEA"
    return found
