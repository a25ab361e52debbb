"""CLIA: which lab tests need the laboratory's CLIA number, and which are waived (modifier QW).

Sources: CMS's list of tests granted waived status under CLIA (the user's
``--clia-waived``: CSV or text as CMS posts it, zipped or not; codes may carry
QW, "81003QW"), a lab certification code file (``--clia-codes``: a code and its
certification codes a row, such as a MAC's or the HCPCS file's LABCERT export),
and the HCPCS file's LABCERT fields (the code sets' ``--hcpcs``). Every code
subject to CLIA (waived or not) needs the CLIA number (REF*X4) on an 837P.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from scrubber.cmsfiles import cells, member_text

# a code cell: CPT or Level II, possibly followed by QW; several may share one cell
_CODE = re.compile(r"(?<![0-9A-Z])(\d{4}[0-9A-Z]|[A-Z]\d{4})(?:-?QW)?(?![0-9A-Z])")


class CliaError(Exception):
    """A CLIA list that cannot be used; the message names the file."""


@dataclass(frozen=True, slots=True)
class CliaLists:
    """The CLIA-waived tests and the other codes subject to CLIA, as given."""

    waived: frozenset[str] = frozenset()
    subject: frozenset[str] = frozenset()  # codes with a lab certification code
    sources: tuple[str, ...] = ()

    def needs_clia(self, code: str) -> bool:
        return code in self.subject or code in self.waived


def code_list(path: Path) -> frozenset[str]:
    """The codes of a list file: in each row, the codes of the first cell that holds any."""
    _, text = member_text(path, r"\.(csv|txt)$", "list (.csv or .txt)", CliaError)
    codes: set[str] = set()
    for line in text.splitlines():
        for cell in cells(line):
            found = _CODE.findall(cell.upper())
            if found:
                codes.update(found)
                break
    if not codes:
        raise CliaError(f"{path}: holds no CPT or HCPCS codes")
    return frozenset(codes)


def load_clia(waived: tuple[str, ...] = (), subject: tuple[str, ...] = ()) -> CliaLists:
    """The lists of the files given; CliaError for one that cannot be read."""
    return CliaLists(frozenset().union(*(code_list(Path(p)) for p in waived)),
                     frozenset().union(*(code_list(Path(p)) for p in subject)),
                     tuple(str(p) for p in (*waived, *subject)))
