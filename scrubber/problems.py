"""The problem codes: every id a report prints that is not a rule, with what to do about it.

Rules (scrubber.rules) judge a claim's content. Before them, the tokenizer
(``syntax-*``), the envelope walker (``env-*``, ``file-*``) and the
implementation-guide check (``ig-*``) find what is wrong with the input
itself: a payer's front end answers those with a TA1 (the interchange) or a
999 (the transaction set), and never looks at the claims. Their ids are
permanent like rule ids, and `scrub rules`, ``--select``, ``--ignore`` and
profiles accept them, so every id a report prints can be looked up.

A test reads every string literal of the package that looks like a problem
code and checks it is here (and that each one here is still produced), and
scrubs every fixture and the shared corpus to check each id a report prints is
a rule or a problem code: the table cannot drift from the code that produces
the ids.

``--ignore`` (or ``--select``) cannot switch a problem code off: it is the
payer's check, not ours. The problem still holds its claims, still decides the
verdict, the exit code and the acknowledgements, and is still listed; the run
says once, in every report, that the pattern named the payer's check (see
``pattern_notices``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

FAMILIES = {
    "syntax": "the bytes cannot be read as X12 (the tokenizer)",
    "file": "the input cannot be read at all",
    "env": "the envelopes (ISA/GS/ST ... SE/GE/IEA) and the HL tree, as a payer's front end "
           "checks them",
    "ig": "the implementation guide (005010X222A1/X223A2) as a payer's 999 checks it",
}
TA1, ACK999, NONE = "TA1", "999", "none"  # how a payer answers the problem


@dataclass(frozen=True, slots=True)
class ProblemCode:
    """One problem code: what it means, what to do, and how a payer answers it."""

    id: str  # permanent: "env-missing-se"
    summary: str  # one line, for `scrub rules`
    fix: str  # what to do about it
    answer: str  # TA1, 999, or none (the input is not an 837 a payer can answer)
    source: str  # the standard that makes it an error

    @property
    def family(self) -> str:
        return self.id.partition("-")[0]

    @property
    def answered(self) -> str:
        """How a payer answers the problem, in words."""
        if self.answer == TA1:
            return "a payer answers this interchange with a TA1 (rejected before any 999)"
        if self.answer == ACK999:
            return "a payer answers this transaction set with a 999 (IK5 R), no 277CA"
        return "a payer cannot answer it: the input is not an 837 it can read"


_ISA = "ASC X12 005010 interchange control structure (ISA/IEA, TA1)"
_ENV = "ASC X12 005010 envelopes (GS/GE, ST/SE) as a 999 checks them"
_IG = "ASC X12N 005010X222A1 / 005010X223A2 implementation guides (pyx12 maps), 999"
_HL = "ASC X12N 837 implementation guides, 2000A/B/C HL hierarchy"
_RESEND = "Export the file again from the billing system, or repair it, and scrub it again."

_CODES = (
    # -- the tokenizer ------------------------------------------------------------------
    ProblemCode("syntax-empty", "the input is empty", "Export the claims again: the file "
                "holds nothing.", NONE, _ISA),
    ProblemCode("syntax-binary", "the input is binary, not X12 text (a PDF, a zip ...)",
                "Send the 837 itself; unpack an archive first.", NONE, _ISA),
    ProblemCode("syntax-no-isa", "no ISA header: the input is not an X12 interchange",
                "Check the file is an 837 (it starts ISA*); an 835 or a report is not.",
                NONE, _ISA),
    ProblemCode("syntax-isa-unreadable", "an ISA header without 16 elements: its delimiters "
                "cannot be known and the interchange is skipped", _RESEND, TA1, _ISA),
    ProblemCode("syntax-isa-length", "the ISA header is not 106 characters", "Pad ISA "
                "elements to their fixed widths (ISA06/ISA08 15 characters, ISA13 nine "
                "digits ...).", TA1, _ISA),
    ProblemCode("syntax-delimiters", "the ISA declares unusable delimiters (the same "
                "character twice, or a letter or digit)", "Choose distinct separators "
                "that appear in no value (* : ~ ^ are usual) and export again.", TA1, _ISA),
    ProblemCode("syntax-unterminated", "the last segment has no terminator: the file looks "
                "cut short", "Resend the complete file.", TA1, _ISA),
    ProblemCode("syntax-empty-segment", "an empty segment (two terminators in a row)",
                "Remove the empty segment; it usually comes from a blank line the export "
                "added.", ACK999, _ISA),
    ProblemCode("syntax-segment-too-long", "a segment far longer than any 837 segment: "
                "probably a missing terminator", "Check the segment terminator the ISA "
                "declares is used after every segment.", ACK999, _ISA),
    ProblemCode("syntax-junk", "bytes that are not X12 stand before an ISA header; they are "
                "skipped", "Remove what stands between the interchanges (mail headers, "
                "banners).", NONE, _ISA),
    ProblemCode("syntax-bom", "a byte-order mark (EF BB BF) stands before the ISA: read "
                "past, but some payers' front ends refuse the file", "Save the file without a "
                "BOM (plain ASCII); `scrub fix` removes it.", NONE, _ISA),
    ProblemCode("syntax-whitespace", "line breaks or spaces between or inside segments that "
                "the interchange's delimiters do not call for", "Export without them; "
                "`scrub fix` makes the line breaks the interchange's own.", NONE, _ISA),
    ProblemCode("syntax-trailing-junk", "bytes that are not X12 follow the last "
                "interchange; they are ignored", "Remove what follows the IEA.", NONE, _ISA),
    # -- the file ------------------------------------------------------------------------
    ProblemCode("file-unreadable", "the input cannot be opened or read (missing, a folder, "
                "no permission)", "Check the path and its permissions.", NONE,
                "the scrubber: nothing could be read"),
    ProblemCode("file-not-837", "the file holds X12 transaction sets, none of them an 837 "
                "(an 835 remittance, a 277, a 999 ...): it is not scrubbed", "Check that the "
                "claim file was sent, not another file of the exchange.", NONE,
                "the scrubber: what the file is"),
    # -- envelopes and the HL tree --------------------------------------------------------
    ProblemCode("env-isa-version", "the interchange version (ISA12) is not 00501",
                "Export in version 5010 (ISA12 00501).", TA1, _ISA),
    ProblemCode("env-missing-iea", "the file ends before the interchange trailer (IEA)",
                "Resend the complete file: it was cut short.", TA1, _ISA),
    ProblemCode("env-iea-control", "IEA02 does not repeat the ISA13 control number",
                "Make IEA02 equal ISA13.", TA1, _ISA),
    ProblemCode("env-iea-count", "IEA01 does not give the number of functional groups",
                "Set IEA01 to the number of GS segments of the interchange.", TA1, _ISA),
    ProblemCode("env-isa-element", "an ISA element is not valid (a qualifier, a date, a "
                "time, the usage indicator ...)", "Correct the ISA element the TA1 note "
                "names; the interchange header is filled by the billing system's settings.",
                TA1, _ISA),
    ProblemCode("env-isa-control-repeated", "ISA13 repeats the control number of an earlier "
                "interchange of the file", "Give every interchange its own ISA13 (and IEA02).",
                TA1, _ISA),
    ProblemCode("env-gs-element", "a GS element is not valid", "Correct the GS element "
                "(GS01 HC, GS08 the guide's version ...).", ACK999, _ENV),
    ProblemCode("env-gs-control-repeated", "GS06 repeats the control number of an earlier "
                "group of the interchange", "Give every group its own GS06 (and GE02).",
                ACK999, _ENV),
    ProblemCode("env-st-control-repeated", "ST02 repeats the control number of an earlier "
                "transaction set of the group", "Give every set its own ST02 (and SE02).",
                ACK999, _ENV),
    ProblemCode("env-outside-interchange", "segments stand outside any interchange (before "
                "an ISA or after an IEA)", _RESEND, TA1, _ISA),
    ProblemCode("env-outside-group", "a transaction set stands outside a functional group "
                "(ST without GS)", "Wrap the transaction sets in GS ... GE.", ACK999, _ENV),
    ProblemCode("env-outside-transaction", "a segment stands between envelopes, outside any "
                "transaction set; it is ignored", _RESEND, ACK999, _ENV),
    ProblemCode("env-unexpected-trailer", "a trailer (SE, GE or IEA) without its header",
                _RESEND, ACK999, _ENV),
    ProblemCode("env-wrong-delimiter", "the segments use another element separator than the "
                "ISA declares", "Make the ISA's element separator (its 4th character) match "
                "the body, or export again.", TA1, _ISA),
    ProblemCode("env-claim-outside-transaction", "a claim (CLM) stands outside any "
                "transaction set", _RESEND, ACK999, _ENV),
    ProblemCode("env-unsupported-transaction", "a transaction set that is not an 837 (an 835, "
                "a 270 ...)", "Send 837 claim files only; route other transactions "
                "elsewhere.", ACK999, _ENV),
    ProblemCode("env-unsupported-version", "an 837 of a version or guide the scrubber does "
                "not check (not 005010X222A1 / X223A2)", "Export 837P as 005010X222A1 or "
                "837I as 005010X223A2 (GS08, ST03).", ACK999, _ENV),
    ProblemCode("env-missing-se", "a transaction set without its SE trailer", _RESEND,
                ACK999, _ENV),
    ProblemCode("env-se-control", "SE02 does not repeat the ST02 control number",
                "Make SE02 equal ST02.", ACK999, _ENV),
    ProblemCode("env-se-count", "SE01 does not count the segments of the set (ST to SE)",
                "Set SE01 to the number of segments from ST to SE, both counted.", ACK999,
                _ENV),
    ProblemCode("env-missing-ge", "a functional group without its GE trailer", _RESEND,
                ACK999, _ENV),
    ProblemCode("env-ge-control", "GE02 does not repeat the GS06 control number",
                "Make GE02 equal GS06.", ACK999, _ENV),
    ProblemCode("env-ge-count", "GE01 does not count the transaction sets of the group",
                "Set GE01 to the number of ST segments of the group.", ACK999, _ENV),
    ProblemCode("env-hl-parent", "an HL names a parent it cannot have (a missing HL, or the "
                "wrong level)", "Number the HLs 1, 2, 3 ... and point each HL03 at its "
                "billing provider (20) or subscriber (22) HL; export again.", ACK999, _HL),
    ProblemCode("env-hl-level", "an HL level code an 837 does not use (not 20, 22 or 23)",
                "Use HL03 20 (billing provider), 22 (subscriber) or 23 (patient).", ACK999,
                _HL),
    ProblemCode("env-claim-without-patient", "a claim (CLM) outside any subscriber or patient "
                "HL loop", "Put each claim under its subscriber (HL 22) or patient (HL 23).",
                ACK999, _HL),
    # -- the implementation guide ---------------------------------------------------------
    ProblemCode("ig-999", "the claim's transaction set (or its group or interchange) was "
                "rejected before any business rule: it goes no further (the total of the "
                "errors listed with the set)", "Correct the errors listed for its transaction "
                "set (or envelope) and send the set again.", ACK999,
                "ASC X12 005010X231A1 (999): a rejected transaction set goes no further"),
    ProblemCode("ig-error", "an implementation-guide error of no finer kind", "Correct the "
                "segment the error points at, as the 999 (IK3/IK4) says.", ACK999, _IG),
    ProblemCode("ig-more-errors", "more implementation-guide errors in a set than a report "
                "lists one by one", "Correct the errors listed, scrub again; the 999 lists "
                "every one.", ACK999, _IG),
    ProblemCode("ig-missing", "a segment the guide requires is missing (999 IK304 3)",
                "Add the segment the guide requires in that loop.", ACK999, _IG),
    ProblemCode("ig-not-used", "a segment the guide does not use here (999 IK304 2)",
                "Remove the segment, or move it to the loop where the guide uses it.",
                ACK999, _IG),
    ProblemCode("ig-unexpected-segment", "a segment the guide does not know in this place "
                "(999 IK304 1)", "Remove it or correct its id.", ACK999, _IG),
    ProblemCode("ig-loop-repeat", "a loop occurs more often than the guide allows (999 "
                "IK304 4)", "Split the claims or lines over more loops, sets or files.",
                ACK999, _IG),
    ProblemCode("ig-segment-repeat", "a segment occurs more often than the guide allows "
                "(999 IK304 5)", "Remove the repeats beyond the guide's maximum.", ACK999,
                _IG),
    ProblemCode("ig-element", "an element is missing, too short or long, of the wrong "
                "characters or not a valid code (999 IK4)", "Correct the element the "
                "finding marks, as the IK4 code says.", ACK999, _IG),
    ProblemCode("ig-composite", "a composite element is wrong (999 IK4): a component "
                "missing, extra or invalid", "Correct the component the finding marks.",
                ACK999, _IG),
    ProblemCode("ig-syntax", "a segment breaks one of its syntax rules (paired, required "
                "one of, conditional: 999 IK4 2 / 10)", "Give both elements of a pair, or "
                "one of the required ones, as the message says.", ACK999, _IG),
    ProblemCode("ig-too-many-elements", "a segment has more elements than the guide defines "
                "(999 IK4 I12/3)", "Remove the extra elements (often a stray separator).",
                ACK999, _IG),
    ProblemCode("ig-trailing-separator", "a segment ends in an element separator (an empty "
                "last element)", "Drop the separators before the terminator.", ACK999, _IG),
    ProblemCode("ig-empty-segment", "a segment without any element", "Remove it.", ACK999,
                _IG),
    ProblemCode("ig-segment-id", "a segment id that is not two or three capitals and digits",
                "Correct the segment id, or the terminator before it.", ACK999, _IG),
    ProblemCode("ig-hl-sequence", "HL01 ids are not numbered 1, 2, 3 ... in order",
                "Number the HL segments from 1 in the order they come, and point each "
                "HL02 at its parent's new number.", ACK999, _HL),
    ProblemCode("ig-hl-parent", "an HL02 names a parent HL that does not come before it",
                "Point HL02 at the HL01 of the billing provider (20) or subscriber (22) HL "
                "above it.", ACK999, _HL),
    ProblemCode("ig-lx-sequence", "LX service line numbers are not 1, 2, 3 ... within a "
                "claim", "Number each claim's service lines (LX01) from 1.", ACK999, _IG),
)
PROBLEMS: dict[str, ProblemCode] = {code.id: code for code in _CODES}


def problem_code(code: str) -> ProblemCode | None:
    """The problem code ``code`` names, or None."""
    return PROBLEMS.get(code)


def is_problem_pattern(pattern: str) -> bool:
    """Whether a --select/--ignore pattern names problem codes (an id, a family, a prefix)."""
    return bool(pattern) and any(code.id.startswith(pattern) for code in _CODES)


def problems_of(patterns: Iterable[str]) -> tuple[ProblemCode, ...]:
    """The problem codes the patterns name, in table order."""
    patterns = tuple(patterns)
    return tuple(c for c in _CODES if any(c.id == p or c.id.startswith(p) for p in patterns))


def explain_problem(code: ProblemCode) -> str:
    """`scrub rules ID` for a problem code: what it means, how a payer answers, what to do."""
    return "\n".join([
        f"{code.id}: {code.summary}", "",
        "severity:      reject (the payer's check: --ignore and profiles do not switch it off)",
        f"answered by:   {code.answer}: {code.answered}",
        f"found by:      {FAMILIES[code.family]}",
        f"source:        {code.source}", "",
        f"what to do: {code.fix}"]) + "\n"


def problem_dict(code: ProblemCode) -> dict:
    """A problem code as `scrub rules --format json` gives it (beside the rules)."""
    return {"id": code.id, "kind": "problem", "family": code.family,
            "severity": {"837P": "reject", "837I": "reject"}, "status_code": None,
            "answer": code.answer, "summary": code.summary, "fix": code.fix,
            "source": code.source}


def pattern_notice(kind: str, patterns: Iterable[str]) -> str | None:
    """What a run says when ``kind`` (--ignore, --select, a profile) names problem codes."""
    named = problems_of(p for p in patterns if is_problem_pattern(p))
    if not named:
        return None
    ids = ", ".join(code.id for code in named[:6]) + (" ..." if len(named) > 6 else "")
    return (f"{kind} names the payer's own checks ({ids}): they are not rules of ours and "
            "cannot be switched off. Their problems are still listed, still reject their "
            "transaction sets or interchanges (a payer answers them with a 999 or a TA1) "
            "and still decide the verdict and the exit code.")
