"""Walk a stream of segments into the claim model, one claim at a time.

``read(source)`` yields, in document order: ``Interchange``, ``FunctionalGroup``,
``Transaction``, ``ClaimRecord`` and ``EnvelopeEnd`` records, and a ``Problem``
wherever the input is not what an 837 must be. Memory stays flat: a claim is
handed out when the next claim, HL or trailer begins, then forgotten.

Speed comes from not splitting what nobody asked about. The tokenizer passes
regular stretches of segments on as ``Run`` text; the walker splits only the
segments that open or close a loop or an envelope, and a claim keeps the rest
of its text, from which its lines and other loops are built the first time
they are read (``Claim``, ``ClaimSource``).

Who belongs to whom is decided by the HL tree (HL01 id, HL02 parent, HL03
level), as the 837 guides define it, not by where a segment happens to sit.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol, TypeAlias

from scrubber.model.claim_source import claim_from, select_segments
from scrubber.model.claims import (
    BillingProvider,
    ClaimRecord,
    EnvelopeEnd,
    FunctionalGroup,
    Interchange,
    Location,
    Patient,
    Problem,
    Subscriber,
    Transaction,
)
from scrubber.model.envelopes import build_group, build_interchange, build_transaction
from scrubber.model.parties import (
    build_billing_provider,
    build_patient,
    build_subscriber,
    patient_from_subscriber,
)
from scrubber.model.source import Source, UnreadableSource, open_source
from scrubber.model.values import PAD
from scrubber.x12.delimiters import Delimiters
from scrubber.x12.tokenizer import CHUNK_SIZE, Run, Segment, SyntaxProblem, Tokenizer


@dataclass(frozen=True, slots=True)
class SkippedClaims:
    """The claims of a transaction set a reader was told to skip (``read(owns=...)``):
    only counted, so that the claims of the sets it reads are numbered as in a whole read."""

    count: int


Event: TypeAlias = (Interchange | FunctionalGroup | Transaction | ClaimRecord | EnvelopeEnd
                    | Problem | SkippedClaims)

#: 5010 837 versions read with one layout (errata A1/A2/A3 changed codes, not loops)
VERSIONS = {
    "005010X222A1": "837P",
    "005010X222A2": "837P",
    "005010X222": "837P",
    "005010X223A1": "837I",
    "005010X223A2": "837I",
    "005010X223A3": "837I",
    "005010X223": "837I",
}
_HL_LIMIT = 20000  # HL entries kept for parent look-ups; children follow parents closely
_ENVELOPE_IDS = frozenset({"ISA", "GS", "ST", "SE", "GE", "IEA", "TA1"})
_BOUNDARY_IDS = _ENVELOPE_IDS | {"CLM", "HL"}  # segments that end a claim
_SUBSCRIBER_IDS = frozenset({"SBR", "NM1", "DMG"})  # what build_subscriber reads
_PATIENT_IDS = frozenset({"PAT", "NM1", "DMG"})  # what build_patient reads
_ISA_PROBLEMS = frozenset({"syntax-isa-length"})
_patterns: dict[tuple[str, str], tuple[re.Pattern, re.Pattern]] = {}


SEGMENT_TEXT = 2000  # characters of a segment quoted in a problem: a report stays small
SYNTAX_LISTED = 100  # syntax problems of one kind listed in full per interchange


def _segment_text(seg: Segment, delimiters: Delimiters | None) -> str:
    sep = delimiters.element if delimiters else "*"
    text = sep.join(seg.elements)
    if len(text) > SEGMENT_TEXT:
        text = f"{text[:SEGMENT_TEXT]}... ({len(text) - SEGMENT_TEXT} more characters)"
    return text


class _Walker:
    """The state of one pass over a source: open envelopes, HL tree, claim in hand."""

    def __init__(self, stream: BinaryIO, chunk_size: int = CHUNK_SIZE,
                 tokens: Callable[[Tokenizer], Tokens] | None = None,
                 owns: Callable[[int], bool] | None = None):
        tokenizer = Tokenizer(stream, chunk_size)
        # the sets whose ST offset ``owns`` refuses are skipped: their CLMs only counted
        self.owns = owns
        self.skipped: int | None = None  # claims of the set being skipped; None: reading
        self.tokenizer: Tokens = tokens(tokenizer) if tokens is not None else tokenizer
        self.delimiters: Delimiters | None = None
        self.interchange: Interchange | None = None
        self.group: FunctionalGroup | None = None
        self.group_count = 0  # GS seen in the open interchange
        self.set_count = 0  # ST seen in the open group
        self.interchange_count = 0
        # the open transaction set
        self.st: Segment | None = None
        self.kind = ""  # "837P"/"837I", or "" while skipping an unsupported set
        self.header: list[Segment] = []  # BHT, 1000A/B before the first HL
        self.transaction: Transaction | None = None
        # the HL tree
        self.hl: Segment | None = None
        self.hl_tree = ("", "", "")  # HL01, HL02, HL03 of self.hl
        self.hl_segments: list[Segment | Run] = []  # the HL loop's segments, some unsplit
        self.providers: dict[str, BillingProvider] = {}
        self.subscribers: dict[str, Subscriber] = {}
        self.hl_levels: dict[str, str] = {}
        self.billing_provider: BillingProvider | None = None
        self.subscriber: Subscriber | None = None
        self.patient: Patient | None = None
        self.patient_is_subscriber = False  # after a 2000B: self.patient is made on demand
        self.claim_segments: list[Segment | Run] | None = None  # CLM and what follows it
        self.isa_problems: list[SyntaxProblem] = []  # about the ISA that comes next
        self.stray = 0
        self.syntax_seen: dict[str, int] = {}  # syntax problems of this interchange, by code
        self.out: list[Event] = []  # events not yet handed out
        self.emit = self.out.append
        # a file whose transaction sets are all of another kind (an 835 ...) is not an 837
        # at all, as a PDF is not: (what it is, where its first set starts); None: an 837
        self.sets_837 = 0
        self.other_kind: tuple[str, Location] | None = None
        # a part of a file (a Spark piece, cut at interchanges) cannot tell what the whole
        # file is: its other interchanges may hold the 837s
        self.part_of_file = bool(getattr(getattr(stream, "raw", stream), "part_of_file", False))

    # -- problems --------------------------------------------------------
    def problem(self, code: str, message: str, envelope: str, seg: Segment | None = None,
                control: str | None = None, location: Location | None = None) -> Problem:
        if control is None:
            control = {
                "transaction": self.st.get(2) if self.st else None,
                "group": self.group.control_number if self.group else None,
                "interchange": self.interchange.control_number if self.interchange else None,
            }.get(envelope)
        return Problem(
            code=code, message=message, envelope=envelope,
            location=Location.of(seg) if seg is not None else location,
            control_number=control,
            segment_text=_segment_text(seg, self.delimiters) if seg is not None else None,
        )

    # -- the walk ----------------------------------------------------------
    def events(self) -> Iterator[Event]:
        # the methods below emit() their events into a list that is handed out here
        # after each item, which costs less than a chain of generators
        out = self.out
        for item in self.tokenizer.items():
            if type(item) is Run:  # type() is cheap, and mypy narrows on it
                yield from self.run(item)
            elif type(item) is Segment:
                self.segment(item)
            elif isinstance(item, SyntaxProblem):
                if item.code in _ISA_PROBLEMS:
                    self.isa_problems.append(item)
                else:
                    self.syntax(item)
            if out:
                yield from out
                out.clear()
        self.finish()
        yield from out
        out.clear()

    def segment(self, seg: Segment) -> None:
        """One segment, wherever it stands."""
        sid = seg[0]
        if self.skipped is not None and sid not in _ENVELOPE_IDS:
            if sid == "CLM" and self.kind:
                self.skipped += 1  # one ClaimRecord had the set been read
            return
        if self.claim_segments is not None:
            if sid not in _BOUNDARY_IDS:
                self.claim_segments.append(seg)
                return
            self.end_claim()
        if self.st is not None and sid not in _ENVELOPE_IDS:
            if not self.kind:
                return  # inside a transaction set we do not read
            if sid == "CLM":
                self.begin_claim(seg)
            elif sid == "HL":
                self.begin_hl(seg)
            elif self.hl is not None:
                self.hl_segments.append(seg)
            else:
                self.header.append(seg)
            return
        self.envelope(seg)

    def run(self, run: Run) -> Iterator[Event]:
        """A Run: only the segments that open or close a loop or envelope are split.

        Between two of them, every segment goes to the same place: the claim in
        hand takes them as a piece of the Run, unsplit; an HL loop or the header
        takes them as Segments. Events go out claim by claim, not at the end of
        the Run: a consumer that builds each claim's lines would otherwise keep
        a whole Run's worth alive, and the garbage collector would scan them all.
        """
        out = self.out
        text, joint, sep = run.text, run.joint, run.separator
        step, inc = len(joint), run.lines_per_segment
        term = joint[0]  # once per joint in a Run, and a one-character count is faster
        first, finder = boundary_patterns(joint, sep)
        matches = finder.finditer(text)
        opening = first.match(text)
        cursor = 0  # where the next segment not yet handled starts
        ordinal = run.ordinal
        new, segment_class = tuple.__new__, Segment
        for match in (matches if opening is None else itertools.chain((opening,), matches)):
            start = match.start(1)
            if start > cursor:
                self.plain(run.slice(cursor, start - step, ordinal))
                ordinal += text.count(term, cursor, start - step) + 1
            end = text.find(joint, start)
            if end < 0:
                end = len(text)
            elements = text[start:end].split(sep)
            self.segment(new(segment_class, (
                elements[0], tuple(elements), ordinal,
                run.line + (ordinal - run.ordinal) * inc, run.offset + start, end - start)))
            if out:
                yield from out
                out.clear()
            ordinal += 1
            cursor = end + step
        if cursor < len(text):
            self.plain(run.slice(cursor, len(text), ordinal))

    def plain(self, run: Run) -> None:
        """Segments none of which opens or closes a loop or an envelope."""
        if self.skipped is not None:
            return
        if self.claim_segments is not None:
            self.claim_segments.append(run)
        elif self.st is not None and self.kind and self.hl is not None:
            self.hl_segments.append(run)
        elif self.st is not None and not self.kind:
            return  # inside a transaction set we do not read
        else:
            for seg in run.segments():
                self.segment(seg)

    def syntax(self, item: SyntaxProblem) -> None:
        """A syntax problem, in full the first SYNTAX_LISTED times per interchange, then counted.

        4,096 NUL bytes are 4,095 empty segments: one problem each made a report
        of a megabyte from a 7 KB input.
        """
        seen = self.syntax_seen[item.code] = self.syntax_seen.get(item.code, 0) + 1
        if seen <= SYNTAX_LISTED or item.fatal:
            self.emit(self.syntax_problem(item))

    def syntax_counted(self) -> None:
        """One problem for each kind of syntax problem beyond those listed in full."""
        for code, seen in self.syntax_seen.items():
            if seen > SYNTAX_LISTED:
                control = self.interchange.control_number if self.interchange else None
                self.emit(Problem(
                    code, f"{seen - SYNTAX_LISTED} more problems like the above ({code}) in "
                    f"interchange {control} were not listed one by one",
                    "interchange" if self.interchange else "file",
                    self.interchange.location if self.interchange else None, control))
        self.syntax_seen = {}

    def syntax_problem(self, item: SyntaxProblem) -> Problem:
        envelope = "interchange" if self.interchange is not None else "file"
        return Problem(
            code=item.code, message=item.message, envelope=envelope,
            location=Location(0, item.line, item.offset),
            control_number=self.interchange.control_number if self.interchange else None,
            fatal=item.fatal,
        )

    def envelope(self, seg: Segment) -> None:
        sid = seg.id
        if sid == "ISA":
            if self.interchange is not None:
                self.close_interchange(seg, closed=False)
            self.syntax_counted()  # those before this ISA, outside any interchange
            delimiters = self.delimiters = self.tokenizer.delimiters
            assert delimiters is not None, "the tokenizer sets them as it reads the ISA"
            self.interchange_count += 1
            self.interchange = build_interchange(seg, delimiters, self.interchange_count)
            self.group_count = 0
            self.stray = 0  # segments outside any transaction set in this interchange
            self.emit(self.interchange)
            for item in self.isa_problems:
                self.emit(self.syntax_problem(item))
            self.isa_problems.clear()
            if self.interchange.version != "00501":
                self.emit(self.problem(
                    "env-isa-version",
                    f"ISA12 is {self.interchange.version!r}, but a 5010 837 travels in a 00501 "
                    "interchange; set ISA12 to 00501", "interchange", seg))
        elif sid == "GS":
            if self.interchange is None:
                self.emit(self.problem("env-outside-interchange",
                                       "GS outside any interchange (no ISA before it)", "file",
                                       seg))
            if self.group is not None:
                self.close_group(seg, closed=False)
            self.group = build_group(seg)
            self.group_count += 1
            self.set_count = 0
            self.emit(self.group)
        elif sid == "ST":
            if self.st is not None:
                self.close_transaction(seg, closed=False)
            if self.group is None:
                self.emit(self.problem("env-outside-group",
                                       "ST outside any functional group (no GS before it)",
                                       "interchange", seg))
            self.set_count += 1
            self.begin_transaction(seg)
        elif sid == "SE":
            if self.st is None:
                self.emit(self.problem("env-unexpected-trailer", "SE without a matching ST",
                                       "group", seg))
                return
            self.close_transaction(seg, closed=True)
        elif sid == "GE":
            if self.st is not None:
                self.close_transaction(seg, closed=False)
            if self.group is None:
                self.emit(self.problem("env-unexpected-trailer", "GE without a matching GS",
                                       "interchange", seg))
                return
            self.close_group(seg, closed=True)
        elif sid == "IEA":
            if self.interchange is None:
                self.emit(self.problem("env-unexpected-trailer", "IEA without a matching ISA",
                                       "file", seg))
                return
            self.close_interchange(seg, closed=True)
        elif sid == "TA1":
            return  # an interchange acknowledgement request answer; nothing to read
        else:
            if sid[:3] == "CLM" and not sid[3:4].isalnum():
                self.stray_claim(seg)
                return
            # Report the first stray segment of an interchange in full and count the rest:
            # a file whose body uses other delimiters than its ISA declares would
            # otherwise give one problem per segment.
            self.stray += 1
            if self.stray > 1:
                return
            envelope = "group" if self.group else "interchange" if self.interchange else "file"
            other = next((ch for ch in sid[2:] if not ch.isalnum()), None)
            if other is not None and self.delimiters is not None:
                self.emit(self.problem(
                    "env-wrong-delimiter",
                    f"segments here use {other!r} between elements, but the ISA declares "
                    f"{self.delimiters.element!r}: the interchange cannot be read. Make the "
                    "ISA's element separator (its 4th character) match the body, or re-export "
                    "the file", envelope, seg))
            else:
                self.emit(self.problem(
                    "env-outside-transaction",
                    f"segment {sid} stands outside any transaction set (between envelopes); "
                    "it was ignored", envelope, seg))

    def stray_claim(self, seg: Segment) -> None:
        """A CLM outside any transaction set: a located problem of its own, never a count.

        Each such claim is named, so that a damaged file accounts for every claim
        it holds; its id is read with any separator the segment uses.
        """
        sep = seg.id[3:4] or (self.delimiters.element if self.delimiters else "*")
        claim_id = seg.get(1) if len(seg.id) == 3 else seg.id[4:].split(sep, 1)[0]
        envelope = "group" if self.group else "interchange" if self.interchange else "file"
        self.emit(self.problem(
            "env-claim-outside-transaction",
            f"claim {claim_id[:38]!r} stands outside any transaction set (its ST, GS or ISA is "
            "missing or out of order): it was not scrubbed. Put it inside an ST...SE of a "
            "GS...GE group, or re-export the file", envelope, seg))

    # -- transaction sets --------------------------------------------------
    def begin_transaction(self, st: Segment) -> None:
        self.st = st
        self.header = []
        self.transaction = None
        self.hl = None
        self.hl_segments = []
        self.providers.clear()
        self.subscribers.clear()
        self.hl_levels.clear()
        self.billing_provider = self.subscriber = self.patient = None
        self.patient_is_subscriber = False
        version = st.get(3) or (self.group.version if self.group else "")
        set_id = st.get(1)
        self.kind = VERSIONS.get(version, "") if set_id == "837" else ""
        # a set whose ST01 is garbled but whose guide is an 837's is a broken 837 (a payer
        # answers it with a 999), not another kind of file
        if set_id == "837" or version in VERSIONS or not (set_id.isdigit() and len(set_id) == 3):
            self.sets_837 += 1
        if self.owns is not None and not self.owns(st[4]):
            self.skipped = 0  # another reader's: its claims counted, nothing else made
            if set_id != "837" and self.other_kind is None:
                self.other_kind = ("another kind of transaction set", Location.of(st))
            return
        if self.kind:
            return  # the Transaction is yielded once its BHT and 1000A/B are read
        self.transaction = self.make_transaction()
        self.emit(self.transaction)
        if set_id != "837":
            what = {"835": "an 835 remittance advice", "277": "a 277 claim status",
                    "999": "a 999 acknowledgement", "270": "a 270 eligibility inquiry",
                    "834": "an 834 enrollment"}.get(set_id, f"transaction set {set_id!r}")
            if self.other_kind is None:
                self.other_kind = (what, Location.of(st))
            self.emit(self.problem(
                "env-unsupported-transaction",
                f"ST01 is {set_id!r}: this is {what}, not an 837 claim; it was not read. "
                "Send 837P (005010X222A1) or 837I (005010X223A2) claims.",
                "transaction", st))
        elif version not in VERSIONS:
            self.emit(self.problem(
                "env-unsupported-version",
                f"837 version {version!r} is not 5010 (005010X222A1 professional or "
                "005010X223A2 institutional); it was not read. Convert the claims to 5010.",
                "transaction", st))

    def make_transaction(self) -> Transaction:
        assert self.st is not None, "a transaction is made only inside ST..SE"
        return build_transaction(self.st, self.header, self.kind, self.group)

    def close_transaction(self, at: Segment | None, closed: bool) -> None:
        st = self.st
        assert st is not None, "only an open transaction set is closed"
        if self.skipped is not None:
            self.emit(SkippedClaims(self.skipped))
            self.skipped = None
            self.st = None
            self.kind = ""
            return
        if self.transaction is None:
            self.transaction = self.make_transaction()
            self.emit(self.transaction)
        if self.hl is not None:
            self.end_hl()
        control = st.get(2)
        count = at.ordinal - st.ordinal + 1 if closed and at is not None else 0  # ST through SE
        if not closed:
            where = "the end of the file" if at is None else f"{at.id} at line {at.line}"
            self.emit(self.problem(
                "env-missing-se",
                f"transaction set {control} (ST at line {st.line}) has no SE before {where}: "
                "the file is truncated or the trailer was lost; resend the whole batch",
                "transaction", st))
        else:
            assert at is not None, "a trailer closed it"
            if at.get(2) != control:
                self.emit(self.problem(
                    "env-se-control",
                    f"SE02 {at.get(2)!r} does not match ST02 {control!r}; set SE02 to {control}",
                    "transaction", at, control=control))
            if at.get(1) != str(count):
                self.emit(self.problem(
                    "env-se-count",
                    f"SE01 says {at.get(1)!r} segments but the transaction set has "
                    f"{count} (ST through SE); set SE01 to {count}",
                    "transaction", at, control=control))
        self.emit(EnvelopeEnd("transaction", control, closed,
                              Location.of(at) if at is not None else None, count))
        self.st = None
        self.kind = ""
        self.transaction = None

    # -- functional groups and interchanges ----------------------------------
    def close_group(self, at: Segment | None, closed: bool) -> None:
        if self.st is not None:
            self.close_transaction(at, closed=False)
        group = self.group
        assert group is not None, "only an open group is closed"
        control = group.control_number
        if not closed:
            where = "the end of the file" if at is None else f"{at.id} at line {at.line}"
            self.emit(self.problem(
                "env-missing-ge",
                f"functional group {control} (GS at line {group.location.line}) has no GE "
                f"before {where}; the file is truncated or the trailer was lost",
                "group", at, control=control,
                location=group.location if at is None else None))
        else:
            assert at is not None, "a trailer closed it"
            if at.get(2) != control:
                self.emit(self.problem(
                    "env-ge-control",
                    f"GE02 {at.get(2)!r} does not match GS06 {control!r}; set GE02 to {control}",
                    "group", at, control=control))
            if at.get(1) != str(self.set_count):
                self.emit(self.problem(
                    "env-ge-count",
                    f"GE01 says {at.get(1)!r} transaction sets but the group has "
                    f"{self.set_count}; set GE01 to {self.set_count}",
                    "group", at, control=control))
        self.emit(EnvelopeEnd("group", control, closed,
                              Location.of(at) if at is not None else None, self.set_count))
        self.group = None

    def close_interchange(self, at: Segment | None, closed: bool) -> None:
        if self.claim_segments is not None:
            self.end_claim()
        if self.group is not None:
            self.close_group(at, closed=False)
        elif self.st is not None:
            self.close_transaction(at, closed=False)
        ic = self.interchange
        assert ic is not None, "only an open interchange is closed"
        control = ic.control_number
        if self.stray > 1:
            self.emit(self.problem(
                "env-outside-transaction",
                f"{self.stray - 1} more segments outside any transaction set were ignored in "
                f"interchange {control}", "interchange", None, control=control,
                location=ic.location))
        self.syntax_counted()
        if not closed:
            where = "the end of the file" if at is None or at.id != "ISA" else \
                f"the next ISA at line {at.line}"
            self.emit(self.problem(
                "env-missing-iea",
                f"interchange {control} (ISA at line {ic.location.line}) has no IEA before "
                f"{where}; the file is truncated or the trailer was lost",
                "interchange", None, control=control, location=ic.location))
        else:
            assert at is not None, "a trailer closed it"
            if at.get(2) != control:
                self.emit(self.problem(
                    "env-iea-control",
                    f"IEA02 {at.get(2)!r} does not match ISA13 {control!r}; set IEA02 to "
                    f"{control}", "interchange", at, control=control))
            if at.get(1) != str(self.group_count):
                self.emit(self.problem(
                    "env-iea-count",
                    f"IEA01 says {at.get(1)!r} functional groups but the interchange has "
                    f"{self.group_count}; set IEA01 to {self.group_count}",
                    "interchange", at, control=control))
        self.emit(EnvelopeEnd("interchange", control, closed,
                              Location.of(at) if at is not None and closed else None,
                              self.group_count))
        self.interchange = None

    def finish(self) -> None:
        if self.interchange is not None:
            self.close_interchange(None, closed=False)
        self.syntax_counted()
        if self.other_kind is not None and not self.sets_837 and not self.part_of_file:
            what, where = self.other_kind
            self.emit(Problem(
                "file-not-837", f"this is {what}, not an 837 claim file: none of its "
                "transaction sets is an 837, so it was not scrubbed; check that the right "
                "file was sent", "file", location=where, fatal=True))

    # -- the HL tree -----------------------------------------------------------
    def begin_hl(self, hl: Segment) -> None:
        if self.transaction is None:
            self.transaction = self.make_transaction()
            self.emit(self.transaction)
        if self.hl is not None:
            self.end_hl()
        self.hl = hl
        self.hl_segments = []
        el = hl[1] + PAD
        hl_id, parent, level = self.hl_tree = el[1], el[2], el[3]
        if level == "20":
            if parent:
                self.emit(self.problem(
                    "env-hl-parent",
                    f"billing provider HL {hl_id} names a parent ({parent}); a 2000A HL has "
                    "none", "transaction", hl))
        elif level in ("22", "23"):
            want = "20" if level == "22" else "22"
            if self.hl_levels.get(parent) != want:
                what = "billing provider (20)" if want == "20" else "subscriber (22)"
                self.emit(self.problem(
                    "env-hl-parent",
                    f"HL {hl_id} (level {level}) names parent {parent!r}, which is not a "
                    f"{what} HL seen before it; fix HL02. The nearest preceding {what} "
                    "was used.", "transaction", hl))
        else:
            self.emit(self.problem(
                "env-hl-level",
                f"HL {hl_id} has level code {level!r}; an 837 uses 20 (billing provider), "
                "22 (subscriber) and 23 (patient)", "transaction", hl))
        self.hl_levels[hl_id] = level
        if len(self.hl_levels) > _HL_LIMIT:
            for key in list(self.hl_levels)[: _HL_LIMIT // 2]:
                if self.hl_levels[key] != "20":
                    del self.hl_levels[key]
                    self.subscribers.pop(key, None)

    def end_hl(self) -> None:
        """Freeze the entity of the HL loop in hand and make it the current one."""
        hl, pieces = self.hl, self.hl_segments
        assert hl is not None, "begin_hl set it"
        hl_id, parent, level = self.hl_tree
        if level == "20":
            provider = build_billing_provider(hl, select_segments(pieces))
            self.providers[hl_id] = provider
            self.billing_provider = provider
            self.subscriber = self.patient = None
            self.patient_is_subscriber = False
        elif level == "22":
            self.billing_provider = self.providers.get(parent, self.billing_provider)
            sub = build_subscriber(hl, select_segments(pieces, _SUBSCRIBER_IDS))
            self.subscribers[hl_id] = sub
            self.subscriber = sub
            self.patient = None  # the subscriber, made a Patient when a claim needs it
            self.patient_is_subscriber = True
        elif level == "23":
            owner = self.subscribers.get(parent, self.subscriber)
            if owner is not None and owner is not self.subscriber:
                self.subscriber = owner
            self.patient = build_patient(hl, select_segments(pieces, _PATIENT_IDS), owner)
            self.patient_is_subscriber = False
        self.hl = None
        self.hl_segments = []

    # -- claims ----------------------------------------------------------------
    def begin_claim(self, clm: Segment) -> None:
        if self.hl is not None:
            self.end_hl()
        if self.transaction is None:
            self.transaction = self.make_transaction()
            self.emit(self.transaction)
        self.claim_segments = [clm]

    def end_claim(self) -> None:
        segments = self.claim_segments
        assert segments is not None and self.delimiters is not None, "begin_claim opened it"
        clm = segments[0]
        assert type(clm) is Segment, "begin_claim put the CLM first"
        assert self.interchange is not None and self.transaction is not None, "as begin_claim"
        self.claim_segments = None
        claim = claim_from(clm, tuple(segments), self.delimiters.component)
        if self.patient is None and self.patient_is_subscriber and self.subscriber is not None:
            self.patient = patient_from_subscriber(self.subscriber)
        if self.patient is None:
            self.emit(self.problem(
                "env-claim-without-patient",
                f"claim {claim.id!r} (CLM at line {clm.line}) is not inside a "
                "subscriber or patient HL loop", "transaction", clm))
        self.emit(ClaimRecord(self.interchange, self.group, self.transaction,
                              self.billing_provider, self.subscriber, self.patient, claim))


def boundary_patterns(joint: str, sep: str) -> tuple[re.Pattern, re.Pattern]:
    """Regexes for a boundary segment at the start of a Run's text, and after a joint
    (the claim walker's, and the split's copy of claims: scrubber.split.copy)."""
    try:
        return _patterns[joint, sep]
    except KeyError:
        pass
    ids = "|".join(sorted(_BOUNDARY_IDS - {"ISA", "IEA"}))  # a Run never holds those
    tail = f"(?:{re.escape(sep)}|{re.escape(joint)}|\\Z)"
    patterns = (re.compile(f"((?:{ids}){tail})"),
                re.compile(f"{re.escape(joint)}((?:{ids}){tail})"))
    _patterns[joint, sep] = patterns
    return patterns


class Tokens(Protocol):
    """What the walker reads: a Tokenizer, or a wrapper that also hands its items on."""

    @property
    def delimiters(self) -> Delimiters | None: ...

    def items(self) -> Iterator[Segment | SyntaxProblem | Run]: ...


def read(source: Source, *, tokens: Callable[[Tokenizer], Tokens] | None = None,
         owns: Callable[[int], bool] | None = None) -> Iterator[Event]:
    """Yield the events of an 837 source: a path, bytes, or a binary stream.

    Nothing about the input raises: a missing file, a directory, binary junk
    or a broken envelope comes out as a ``Problem`` (``fatal`` when nothing at
    all could be read), and reading goes on wherever it can. ``tokens`` wraps
    the tokenizer, for a reader that checks the same items as they pass
    (scrubber.ig.checker.read_checked). ``owns``, when given, says which
    transaction sets (by the byte offset of their ST) are read: each other set
    is only a ``SkippedClaims`` of its claim count (a ``--jobs`` worker reads
    its own share of a file: scrubber.parallel).
    """
    try:
        stream, owned = open_source(source)
    except UnreadableSource as exc:
        yield Problem("file-unreadable", str(exc), "file", fatal=True)
        return
    try:
        yield from _Walker(stream, tokens=tokens, owns=owns).events()
    finally:
        if owned:
            stream.close()


def claims(events: Iterable[Event]) -> Iterator[ClaimRecord]:
    """Only the claims of an event stream."""
    for event in events:
        if event.__class__ is ClaimRecord:
            yield event
