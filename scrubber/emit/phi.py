"""What a report hides unless ``--show-phi``: one masking, used wherever a report quotes input.

A report names a claim's patient masked ("F*******, A****"), and the segments
it quotes (a finding's segment and its neighbours, a problem's segment) are
masked the same way: the person's name and id in NM1*IL (subscriber, 2010BA
and 2330A) and NM1*QC (patient, 2010CA), the birth date (DMG02), the date of
death (PAT06), the social security and member numbers (REF*SY, REF*1W), and
the person's street, city and postal code (N3, N4 in those loops). An N3/N4
whose loop cannot be told (a segment quoted on its own) is masked too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from scrubber.x12.tokenizer import Segment

if TYPE_CHECKING:
    from scrubber.rules.findings import Finding, ScrubbedClaim

PERSON = frozenset({"IL", "QC"})  # NM101 of the subscriber (2010BA, 2330A), patient (2010CA)
_NAME = (3, 4, 5, 7, 9)  # NM103 last, NM104 first, NM105 middle, NM107 suffix, NM109 id
_REF_IDS = frozenset({"SY", "1W"})  # social security number, member identification number
_MASKED = {"DMG": (2,), "PAT": (6,), "N3": (1, 2), "N4": (1, 3)}  # N402 (state) is kept


def mask(text: str, fill: str = "*") -> str:
    """Keep the first character, hide the rest: enough to tell people apart, no more."""
    return text[:1] + fill * (len(text) - 1) if text else ""


def fill_for(separator: str) -> str:
    """The character that hides a quoted segment's values: not its element separator
    ("Z#########", where "Z*********" would read as empty elements)."""
    return "*" if separator == "#" else "#"


def mask_elements(elements: Sequence[str], person: bool | None = None, fill: str = "#"
                  ) -> list[str]:
    """A segment's elements (``elements[0]`` its id) with a person's identity masked.

    ``person`` says whether an N3/N4 is in a person's loop (None: cannot be told,
    so masked); ``fill`` hides (see ``fill_for``).
    """
    out = list(elements)
    seg_id = out[0] if out else ""
    if seg_id == "NM1":
        places: Iterable[int] = _NAME if len(out) > 1 and out[1] in PERSON else ()
    elif seg_id == "REF":
        places = (2,) if len(out) > 1 and out[1] in _REF_IDS else ()
    elif seg_id in ("N3", "N4"):
        places = _MASKED[seg_id] if person is not False else ()
    else:
        places = _MASKED.get(seg_id, ())
    for place in places:
        if place < len(out):
            out[place] = mask(out[place], fill)
    return out


def mask_segment(text: str, person: bool | None = None) -> str:
    """A segment as quoted (its delimiters, whatever they are) with a person's identity
    masked; ``person`` as for ``mask_elements``."""
    at = 0
    while at < len(text) and at < 3 and text[at].isalnum():
        at += 1
    if at < 2 or at >= len(text) or text[at].isalnum():
        return text  # no element follows the id: nothing to mask
    separator = text[at]
    return separator.join(mask_elements(text.split(separator), person, fill_for(separator)))


def in_person_loops(segments: Iterable[Segment]) -> dict[int, bool | None]:
    """For each segment (by ordinal), whether it follows an NM1 of a person (None before
    any NM1): what tells a patient's N3/N4 from a provider's."""
    person: bool | None = None
    found = {}
    for seg in segments:
        if seg.id == "NM1":
            person = seg.get(1) in PERSON
        found[seg.ordinal] = person
    return found


def quoted(event: ScrubbedClaim, finding: Finding) -> str:
    """The segment a finding quotes, masked; an N3/N4 by the loop it is in."""
    text = finding.segment_text
    person: bool | None = None
    if text.startswith(("N3", "N4")) and finding.location is not None:
        record = event.record
        provider = record.billing_provider
        for segments in (record.claim.segments, provider.segments if provider else ()):
            loops = in_person_loops(segments)
            if finding.location.segment in loops:
                person = loops[finding.location.segment]
                break
    return mask_segment(text, person)
