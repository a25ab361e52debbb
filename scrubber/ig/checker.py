"""The streaming implementation-guide check: segments in, verdicts out.

One pass over the tokenizer's segments, with memory bounded by the errors
found, not by the file. Per segment it does what a payer's front end does
before business rules: envelope control numbers and counts, the HL tree and
LX numbering, the segment's place in the guide's loops (``walker``) and its
elements (``fastpath``, else the exact ``elements`` check). What it reports
follows pyx12, the reference, segment position for segment position; where
pyx12 is wrong the difference is written down in ``docs/conformance.md``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import Literal, TypeAlias

from scrubber.ig import fastpath
from scrubber.ig.compile import load_guides
from scrubber.ig.elements import check_segment
from scrubber.ig.report import (
    EnvelopeError,
    GroupVerdict,
    IgError,
    IgReport,
    InterchangeResult,
    TransactionVerdict,
    group_ack,
)
from scrubber.ig.tables import Guide, GuideSet, Node
from scrubber.ig.walker import Walker, key_values
from scrubber.model.claims import Problem
from scrubber.model.source import Source, UnreadableSource, open_source
from scrubber.model.walker import Event
from scrubber.x12.delimiters import Delimiters
from scrubber.x12.tokenizer import Run, Segment, SyntaxProblem, Tokenizer

#: a map segment's fast check: a pattern its text must match and the syntax rules (P, R, C
#: ...) a pattern cannot express; False where the segment has none (see ``fastpath``)
_Fast: TypeAlias = tuple[re.Pattern, Callable[[tuple], bool] | None] | Literal[False]

#: versions pyx12 has no map for, read with the nearest map (errata changed codes, not loops)
STAND_INS = {
    ("00501", "005010X222A2", "HC"): "005010X222A1",
    ("00501", "005010X222", "HC"): "005010X222A1",
    ("00501", "005010X223A1", "HC"): "005010X223A2",
    ("00501", "005010X223A3", "HC"): "005010X223A2",
    ("00501", "005010X223", "HC"): "005010X223A2",
}
_WALK_CHECKS = {"1": "ig-unexpected-segment", "2": "ig-not-used", "3": "ig-missing",
                "4": "ig-loop-repeat", "5": "ig-segment-repeat"}
_TRACES: dict = {}  # (guides fingerprint, map file) -> the walker's traces
_HOT: dict = {}  # (fingerprint, map file, separators) -> lone-step traces with their fast check
_PATTERNS: dict = {}  # (guides fingerprint, map file, separators) -> fast pattern per node
_SEEN_LIMIT = 256  # accepted texts remembered per map segment
_ENVELOPE = frozenset(("ISA", "GS", "ST", "SE", "GE", "IEA"))
_COUNTED = frozenset(("HL", "LX", "CLM"))  # segments with numbering checks
_SEG_ID = re.compile(r"[A-Z][A-Z0-9]{1,2}\Z")
# TA1 note codes for ISA element errors, as pyx12's 999 writer maps them
_ISA_NOTE = {1: "010", 2: "011", 3: "012", 4: "013", 5: "005", 6: "006", 7: "007", 8: "008",
             9: "014", 10: "015", 11: "016", 12: "017", 13: "018", 14: "019", 15: "020", 16: "027"}


class _Transaction:
    __slots__ = ("elements", "control", "line", "ordinal", "errors", "envelope", "seg_count",
                 "hl_count", "hl_stack", "hl_open", "lx_count", "claim_id", "checked", "guide",
                 "note", "skipped")

    def __init__(self, seg: Segment, guide: str, note: str):
        self.elements = seg[1]
        self.control = seg.get(2)
        self.line = seg[3]
        self.ordinal = seg[2]
        self.errors: list[IgError] = []
        self.envelope: list[EnvelopeError] = []
        self.seg_count = 1
        self.hl_count = 0
        self.hl_stack: list[int] = []
        self.hl_open: set[int] = set()  # what hl_stack holds: a 50,000-deep chain stays linear
        self.lx_count = 0
        self.claim_id = ""
        self.checked = True  # False once ST01 shows the guide does not describe this set
        self.guide = guide
        self.note = note
        self.skipped = False  # its body is another checker's (``Checker(owns=...)``)


class _Group:
    __slots__ = ("elements", "control", "line", "errors", "transactions", "st_ids", "st_count",
                 "guide", "walker", "note", "declared", "closed")

    def __init__(self, seg: Segment):
        self.elements = seg[1]
        self.control = seg.get(6)
        self.line = seg[3]
        self.errors: list[EnvelopeError] = []
        self.transactions: list[TransactionVerdict] = []
        self.st_ids: set[str] = set()
        self.st_count = 0
        self.guide: Guide | None = None
        self.walker: Walker | None = None
        self.note = ""
        self.declared = 0
        self.closed = False


class _Interchange:
    __slots__ = ("elements", "control", "line", "errors", "groups", "gs_ids", "gs_count",
                 "element_sep", "component_sep")

    def __init__(self, seg: Segment, element_sep: str, component_sep: str):
        self.elements = seg[1]
        self.control = seg.get(13)
        self.line = seg[3]
        self.errors: list[EnvelopeError] = []
        self.groups: list[GroupVerdict] = []
        self.gs_ids: set[str] = set()
        self.gs_count = 0
        self.element_sep = element_sep
        self.component_sep = component_sep


def _int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


class Checker:
    """Check a stream of segments; ``report()`` once the stream is done.

    ``owns(offset)``, when given, says which transaction sets (by the byte
    offset of their ST) this checker checks: the others are only counted, and
    their verdicts come out ``skipped``. Processes that each own a share of a
    file's sets read the whole file (so every envelope check stays whole) and
    their reports are merged with ``merge_reports``.
    """

    def __init__(self, guides: GuideSet | None = None,
                 owns: Callable[[int], bool] | None = None):
        self.owns = owns
        self.guides = guides or load_guides()
        self.control = self.guides.guides[self.guides.control]
        self.interchanges: list[InterchangeResult] = []
        self.problems: list[str] = []
        self.isa_ids: set[str] = set()
        self.isa: _Interchange | None = None
        self.gs: _Group | None = None
        self.st: _Transaction | None = None
        self._walkers: dict[str, Walker] = {}
        self._keys: dict = {}
        self._seen: dict = {}

    # -- envelope -------------------------------------------------------------------

    def _open_isa(self, seg: Segment, delimiters: Delimiters | None) -> None:
        if self.isa is not None:
            self._close_isa(None)
        element_sep = delimiters.element if delimiters else "*"
        component_sep = delimiters.component if delimiters else ":"
        isa = self.isa = _Interchange(seg, element_sep, component_sep)
        if isa.control in self.isa_ids:
            isa.errors.append(EnvelopeError("025", "ISA13 repeats the control number of an earlier "
                                                   "interchange in this file", seg[3], seg[2],
                                            check="env-isa-control-repeated"))
        self.isa_ids.add(isa.control)
        errors: list = []
        # ISA16 is the component separator itself: pyx12 never splits ISA into components
        check_segment(self.control.nodes[self.control.isa], seg[1], "\x00", errors)
        for _, _, _, (ele, _), message, _ in errors:
            check = "env-isa-version" if ele == 12 else "env-isa-element"
            isa.errors.append(EnvelopeError(_ISA_NOTE.get(ele, "001"), message, seg[3], seg[2],
                                            check=check))

    def _close_isa(self, seg: Segment | None) -> None:
        isa = self.isa
        if isa is None:
            return
        if self.gs is not None:
            self._close_gs(None)
        if seg is None:
            isa.errors.append(EnvelopeError("023", "the interchange has no IEA trailer", isa.line,
                                            check="env-missing-iea"))
        else:
            if seg.get(2) != isa.control:
                isa.errors.append(EnvelopeError("001", "IEA02 does not match ISA13", seg[3],
                                                seg[2], check="env-iea-control"))
            if _int(seg.get(1)) != isa.gs_count:
                isa.errors.append(EnvelopeError("021", f"IEA01 says {seg.get(1) or 'nothing'}; the "
                                                       f"interchange has {isa.gs_count} groups",
                                                seg[3], seg[2], check="env-iea-count"))
            errors: list = []
            iea = self._node_by_path(self.control, "/ISA_LOOP/IEA")
            check_segment(iea, seg[1], "\x00", errors)
            for _, _, _, (ele, _), message, _ in errors:
                check = "env-iea-count" if ele == 1 else "env-iea-control"
                isa.errors.append(EnvelopeError("021" if ele == 1 else "018", message, seg[3],
                                                seg[2], check=check))
        self.interchanges.append(InterchangeResult(
            control=isa.control, isa=isa.elements, groups=tuple(isa.groups),
            errors=tuple(isa.errors), element_separator=isa.element_sep,
            component_separator=isa.component_sep, line=isa.line))
        self.isa = None

    @staticmethod
    def _node_by_path(guide: Guide, path: str) -> Node:
        for node in guide.nodes:
            if node.path == path:
                return node
        raise KeyError(path)

    def _open_gs(self, seg: Segment) -> None:
        isa = self.isa
        assert isa is not None, "_envelope opens a group only inside an interchange"
        if self.gs is not None:
            self._close_gs(None)
        gs = self.gs = _Group(seg)
        if gs.control in isa.gs_ids:
            gs.errors.append(EnvelopeError("6", "GS06 repeats the control number of an earlier "
                                                "group in this interchange", seg[3], seg[2],
                                           check="env-gs-control-repeated"))
        isa.gs_ids.add(gs.control)
        isa.gs_count += 1
        icvn = isa.elements[12] if len(isa.elements) > 12 else ""
        key = (icvn, seg.get(8), seg.get(1))
        map_file = self.guides.index.get(key)
        if map_file is None and key in STAND_INS:
            stand_in = (icvn, STAND_INS[key], key[2])
            map_file = self.guides.index.get(stand_in)
            gs.note = (f"pyx12 has no map for {key[1]}; checked with the {stand_in[1]} map "
                       "(the errata changed codes, not loops)")
        if map_file is None or map_file not in self.guides.guides:
            gs.errors.append(EnvelopeError("2", f"no implementation guide for GS08 "
                                                f"{seg.get(8) or '(empty)'} with GS01 "
                                                f"{seg.get(1) or '(empty)'}; its transaction sets "
                                                "cannot be checked", seg[3], seg[2],
                                           check="env-unsupported-version"))
            return
        guide = gs.guide = self.guides.guides[map_file]
        walker = self._walkers.get(map_file)
        if walker is None:
            walker = self._walkers[map_file] = Walker(guide, guide.gs)
            # traces depend on the guide only: share them between checks of one process
            walker.traces = _TRACES.setdefault((self.guides.fingerprint, map_file), {})
        walker.force(guide.isa_loop, guide.isa)
        walker.force(guide.gs_loop, guide.gs)
        gs.walker = walker
        errors: list = []
        elements = seg[1]
        if gs.note and len(elements) > 8:  # a stand-in map: its GS08 is the one it knows
            elements = _with_version(elements, 8, STAND_INS[key])
        check_segment(guide.nodes[guide.gs], elements, isa.component_sep, errors)
        for _, _, _, (ele, _), message, _ in errors:
            gs.errors.append(EnvelopeError("6" if ele == 6 else "1", message, seg[3], seg[2],
                                           check="env-gs-element"))

    def _close_gs(self, seg: Segment | None) -> None:
        gs, isa = self.gs, self.isa
        assert gs is not None and isa is not None, "only an open group is closed"
        if self.st is not None:
            if seg is not None:
                gs.errors.append(EnvelopeError("3", "the last transaction set has no SE trailer",
                                               seg[3], seg[2], check="env-missing-se"))
            self._close_st(None)
        if seg is None:
            gs.errors.append(EnvelopeError("3", "the functional group has no GE trailer", gs.line,
                                           check="env-missing-ge"))
        else:
            if seg.get(2) != gs.control:
                gs.errors.append(EnvelopeError("4", "GE02 does not match GS06", seg[3], seg[2],
                                               check="env-ge-control"))
            if _int(seg.get(1)) != gs.st_count:
                gs.errors.append(EnvelopeError("5", f"GE01 says {seg.get(1) or 'nothing'}; the "
                                                    f"group has {gs.st_count} transaction sets",
                                               seg[3], seg[2], check="env-ge-count"))
            if gs.guide is not None:
                self._walk(seg, gs, None)
        declared = _int(seg.get(1)) if seg is not None else None
        ack, accepted = group_ack(gs.errors, gs.transactions)
        codes = sorted({e.code for e in gs.errors})
        el = gs.elements
        isa.groups.append(GroupVerdict(
            control=gs.control, functional_id=el[1] if len(el) > 1 else "",
            sender=el[2] if len(el) > 2 else "", receiver=el[3] if len(el) > 3 else "",
            version=el[8] if len(el) > 8 else "", ack_code=ack,
            declared=declared or 0, received=gs.st_count, accepted=accepted,
            syntax_codes=tuple(codes[:5]), errors=tuple(gs.errors),
            transactions=tuple(gs.transactions), line=gs.line))
        self.gs = None

    def _open_st(self, seg: Segment) -> None:
        gs = self.gs
        assert gs is not None, "_envelope opens a transaction set only inside a group"
        if self.st is not None:
            self._close_st(None)
        st = self.st = _Transaction(seg, gs.guide.map_file if gs.guide else "", gs.note)
        st.skipped = self.owns is not None and not self.owns(seg[4])
        if st.control in gs.st_ids:
            st.envelope.append(EnvelopeError("23", "ST02 repeats the control number of an earlier "
                                                   "transaction set in this group", seg[3], seg[2],
                                             check="env-st-control-repeated"))
        gs.st_ids.add(st.control)
        gs.st_count += 1
        if gs.guide is None:
            st.envelope.append(EnvelopeError("1", "no implementation guide for this version",
                                             seg[3], seg[2], check="env-unsupported-version"))
            return
        elements = seg[1]
        gs08 = gs.elements[8] if len(gs.elements) > 8 else ""  # a short GS has none
        if gs.note and len(elements) > 3 and elements[3] == gs08:
            elements = _with_version(elements, 3, gs.guide.implementation or elements[3])
        if not self._walk(seg, gs, elements):
            # not the transaction set this group's guide describes: nothing in it can be placed
            st.errors.clear()
            st.checked = False
            st.envelope.append(EnvelopeError("6", f"ST01 {seg.get(1) or '(empty)'} is not the "
                                                  f"transaction set GS08 {gs08} describes",
                                             seg[3], seg[2], check="env-unsupported-transaction"))

    def _close_st(self, seg: Segment | None) -> None:
        st, gs, isa = self.st, self.gs, self.isa
        assert st is not None and gs is not None and isa is not None, "only an open set is closed"
        if seg is None:
            st.envelope.append(EnvelopeError("2", "the transaction set has no SE trailer", st.line,
                                             check="env-missing-se"))
        else:
            if seg.get(2) != st.control:
                st.envelope.append(EnvelopeError("3", "SE02 does not match ST02", seg[3], seg[2],
                                                 check="env-se-control"))
            if _int(seg.get(1)) != st.seg_count + 1:
                st.envelope.append(EnvelopeError("4", f"SE01 says {seg.get(1) or 'nothing'}; the "
                                                      f"transaction set has {st.seg_count + 1} "
                                                      "segments", seg[3], seg[2],
                                                 check="env-se-count"))
            if gs.guide is not None and st.checked:
                self._walk(seg, gs, None)
        codes = {e.code for e in st.envelope}
        if st.errors:
            codes.add("5")
        ack = "R" if codes else "A"
        el = st.elements
        gs.transactions.append(TransactionVerdict(
            interchange_control=isa.control, group_control=gs.control,
            transaction_control=st.control, transaction_set_id=el[1] if len(el) > 1 else "",
            implementation=el[3] if len(el) > 3 else "", ack_code=ack,
            syntax_codes=tuple(sorted(codes, key=lambda c: (len(c), c))[:5]),
            errors=tuple(st.errors), envelope_errors=tuple(st.envelope),
            segment_count=st.seg_count + (1 if seg is not None else 0), line=st.line,
            guide=st.guide, note=st.note, skipped=st.skipped))
        self.st = None

    # -- segments ---------------------------------------------------------------------

    def _walk(self, seg: Segment, gs: _Group, elements: tuple | None) -> bool:
        """Walk an envelope segment (ST, SE, GE) and check its elements; False if unplaced."""
        walker, isa = gs.walker, self.isa
        assert walker is not None and isa is not None, "only a group with a guide is walked"
        errors: list[tuple[str, int, str]] = []
        comp = isa.component_sep
        target = walker.step(seg[0], key_values(walker.guide, seg[0], seg[1], comp), errors)
        st = self.st
        if st is None or not st.checked or st.skipped:
            return target is not None
        self._record_walk(st, seg, errors, walker.guide, st.seg_count)
        if target is not None and seg[0] in ("ST", "SE"):
            found: list = []
            check_segment(walker.guide.nodes[target], elements or seg[1], comp, found)
            self._record_elements(st, seg, found, walker.guide.nodes[target], st.seg_count)
        return target is not None

    def _record_walk(self, st: _Transaction, seg: Segment, errors: list[tuple[str, int, str]],
                     guide: Guide, position: int) -> None:
        nodes = guide.nodes
        for code, index, message in errors:
            node = nodes[index]
            claim = st.claim_id
            if code == "3":
                seg_id, loop = node.xid, node.loop_id
                if "/2300" not in node.path:
                    claim = ""  # a missing segment outside the claim the walk has reached
            elif code == "1":
                seg_id, loop = seg[0], (node.loop_id if node.kind == "segment" else node.xid)
            elif code == "4":
                seg_id, loop = seg[0], node.xid
            else:
                seg_id, loop = seg[0], node.loop_id or node.xid
            st.errors.append(IgError(
                segment_id=seg_id, position=position, loop_id=_loop_code(loop),
                segment_code=code, message=message, check=_WALK_CHECKS[code], line=seg[3],
                offset=seg[4], ordinal=seg[2], claim_id=claim))

    def _record_elements(self, st: _Transaction, seg: Segment, found: list, node: Node,
                         position: int) -> None:
        for check_id, ik4, spec, (ele, comp), message, value in found:
            st.errors.append(IgError(
                segment_id=seg[0], position=position, loop_id=_loop_code(node.loop_id),
                segment_code="8", message=message, check=check_id, element=ele, component=comp,
                data_element=spec.data_ele if spec is not None else "", element_code=ik4,
                value=value, line=seg[3], offset=seg[4], ordinal=seg[2], claim_id=st.claim_id))

    def feed(self, items: Iterable[Segment | SyntaxProblem],
             tokenizer: Tokenizer | None = None) -> None:
        """Check segments (and tokenizer problems) in order.

        Envelope segments, and everything outside a checked transaction set, go
        through ``_envelope``; the body of a checked set goes through ``_body``,
        which reads on from the same iterator and hands back the envelope segment
        that ended the body. A source may come in several calls, cut anywhere.
        """
        stream = iter(items)
        item: Segment | SyntaxProblem | None = None
        if self._in_body():  # fed piece by piece (``read_checked``): this one goes on inside
            item = self._read_body(stream)
            if item is None:
                return
        while True:
            if item is None:
                item = next(stream, None)
                if item is None:
                    return
            if isinstance(item, SyntaxProblem):
                self._problem(item)
                item = None
                continue
            self._envelope(item, tokenizer)
            item = self._read_body(stream) if self._in_body() else None

    def feed_run(self, run: Run, tokenizer: Tokenizer | None = None) -> None:
        """``feed`` of a Run's segments; the stretches inside another checker's sets are
        only counted, from the text, without splitting them into segments (a worker of
        ``--jobs`` passes over the rest of the file so)."""
        while True:
            st = self.st
            if st is None or not st.skipped or not self._in_body():
                self.feed(run.iter_segments(), tokenizer)
                return
            text, joint = run.text, run.joint
            cut = _first_envelope(run)
            if cut < 0:
                st.seg_count += text.count(joint) + 1
                return
            before = text.count(joint, 0, cut)
            st.seg_count += before
            end = text.find(joint, cut)
            if end < 0:
                end = len(text)
            # the envelope segment goes the usual way, then the rest of the run
            self.feed(run.slice(cut, end, run.ordinal + before).iter_segments(), tokenizer)
            if end == len(text):
                return
            run = run.slice(end + len(joint), len(text), run.ordinal + before + 1)

    def _in_body(self) -> bool:
        """Whether a checked transaction set is open (its body goes to ``_read_body``)."""
        st, gs = self.st, self.gs
        return st is not None and st.checked and gs is not None and gs.walker is not None

    def _read_body(self, stream: Iterator[Segment | SyntaxProblem]) -> Segment | None:
        """The open set's body, checked or (another checker's) counted; the envelope
        segment that ended it, or None at the end of the stream."""
        st, gs = self.st, self.gs
        assert st is not None and gs is not None and gs.walker is not None, "see _in_body"
        return self._skip(stream, st) if st.skipped else self._body(stream, st, gs.walker)

    def _skip(self, stream: Iterator[Segment | SyntaxProblem], st: _Transaction
              ) -> Segment | None:
        """The body of a set another checker owns: counted for SE01, not checked."""
        envelope, count = _ENVELOPE, st.seg_count
        try:
            for item in stream:
                if type(item) is not Segment:
                    if isinstance(item, SyntaxProblem):
                        self._problem(item)
                    continue
                if item[0] in envelope:
                    return item
                count += 1
            return None
        finally:
            st.seg_count = count

    def _body(self, stream: Iterator[Segment | SyntaxProblem], st: _Transaction,
              walker: Walker) -> Segment | None:
        """The hot path: the body of a checked transaction set, up to the next envelope
        segment (returned, not handled) or the end of the stream (None).

        Everything the loop reads is bound before it starts. ``count`` and ``node``
        are the loop's own copies of ``st.seg_count`` and ``walker.node`` (an
        attribute per segment costs more than the check of a repeated segment):
        the recorders are given ``count`` as the position, the walker is given
        ``node`` right before it steps, and both are written back on the way out.
        """
        assert self.isa is not None, "a transaction set is open only inside an interchange"
        envelope, counted = _ENVELOPE, _COUNTED
        guide = walker.guide
        nodes = guide.nodes
        key_at = self._key_at(guide)
        counts, zeros = walker.counts, walker.zeros
        sep, comp = self.isa.element_sep, self.isa.component_sep
        patterns = self._patterns(guide, sep, comp)
        hot = _HOT.setdefault((self.guides.fingerprint, guide.map_file, sep, comp), {})
        accepted = self._accepted(guide, sep, comp)
        count, node = st.seg_count, walker.node
        errors: list[tuple[str, int, str]]
        fast: _Fast | None
        try:
            for item in stream:
                if type(item) is not Segment:  # a tokenizer problem (type() is cheap here)
                    if isinstance(item, SyntaxProblem):
                        self._problem(item)
                    continue
                sid = item[0]
                if sid in envelope:
                    return item
                count += 1
                elements = item[1]
                at = key_at.get(sid)
                if elements[-1] == "" or len(elements) == 1 or at is None or sid in counted:
                    if elements[-1] == "" or len(elements) == 1:
                        self._blank(st, item, count)
                    if sid in counted:
                        self._counters(st, item, guide, count)
                    if at is None:
                        self._segment_id(st, item, count)
                        at = 0
                if at == 0:
                    keyvals: tuple = ()
                elif at > 0:
                    keyvals = (elements[at] if len(elements) > at else None,)
                elif at == -1:
                    keyvals = (elements[1].split(comp, 1)[0] if len(elements) > 1 else None,)
                else:
                    keyvals = key_values(guide, sid, elements, comp)
                key = (node, sid, keyvals)
                hit = hot.get(key)
                if hit is not None:
                    # walker.step inlined for its two common cases (see there), with the
                    # target's fast pattern riding along
                    node, kind, a, b, c, d, e, fast = hit
                    if kind == 0:
                        counts[a] += 1
                        if counts[a] > b:
                            errors = []
                            walker.seg_usage(nodes[node], errors)
                            self._record_walk(st, item, errors, guide, count)
                    else:
                        counts[a:b] = zeros[: b - a]
                        counts[c] += 1
                        counts[e] += 1
                        if counts[c] > d:
                            errors = []
                            walker.replay(walker.trace(key)[7], errors, counted=True)
                            self._record_walk(st, item, errors, guide, count)
                else:
                    errors = []
                    walker.node = node
                    target = walker.step(sid, keyvals, errors)
                    node = walker.node
                    if errors:
                        self._record_walk(st, item, errors, guide, count)
                    if target is None:
                        continue
                    fast = patterns[target]
                    if fast is None:
                        fast = patterns[target] = self._fast(nodes[target], sep, comp)
                    trace = walker.traces.get(key)
                    if trace is not None and trace[1] < 2:
                        if len(hot) > 50_000:
                            hot.clear()
                        hot[key] = trace[:7] + (fast,)
                if sid in counted and sid != "LX":
                    # after the walk: what it found missing belongs to the claim before
                    st.claim_id = elements[1] if sid == "CLM" and len(elements) > 1 else ""
                text = sep.join(elements)
                seen = accepted[node]
                if text in seen:
                    continue
                if fast and fast[0].fullmatch(text) and (fast[1] is None or fast[1](elements)):
                    if len(seen) < _SEEN_LIMIT:
                        seen.add(text)
                    continue
                found: list = []
                check_segment(nodes[node], elements, comp, found)
                if found:
                    self._record_elements(st, item, found, nodes[node], count)
            return None
        finally:
            st.seg_count = count
            walker.node = node

    def _accepted(self, guide: Guide, sep: str, comp: str) -> list:
        """Per map segment, texts already accepted in this check (most files repeat
        segments: LX*1, DTP*472 of a claim's lines, SBR, N4). Kept per check, not per
        process, so one file's data never outlives its check."""
        key = (guide.map_file, sep, comp)
        if key not in self._seen:
            self._seen[key] = [set() for _ in guide.nodes]
        return self._seen[key]

    @staticmethod
    def _fast(node, sep: str, comp: str):
        """(pattern, syntax check) for a map segment, or False when it has no fast path."""
        pattern = fastpath.build(node, sep, comp)
        return (pattern, fastpath.syntax(node)) if pattern is not None else False

    def _key_at(self, guide: Guide) -> dict:
        """Segment id -> where its qualifier is: element n (n > 0), component 1 of element 1
        (-1), none (0), or several places (-2). Ids the guide does not know are absent."""
        found = self._keys.get(guide.map_file)
        if found is None:
            found = self._keys[guide.map_file] = {}
            for sid, fields in guide.key_fields.items():
                if not fields:
                    found[sid] = 0
                elif len(fields) > 1:
                    found[sid] = -2
                elif fields[0][1] == 0:
                    found[sid] = fields[0][0]
                else:
                    found[sid] = -1 if fields[0] == (1, 1) else -2
        return found

    def _patterns(self, guide: Guide, sep: str, comp: str) -> list:
        key = (self.guides.fingerprint, guide.map_file, sep, comp)
        if key not in _PATTERNS:
            _PATTERNS[key] = [None] * len(guide.nodes)
        return _PATTERNS[key]

    def _blank(self, st: _Transaction, seg: Segment, position: int) -> None:
        """Trailing separators and segments without data (pyx12's SEG1 and "is empty")."""
        assert self.isa is not None
        elements = seg[1]
        comp = self.isa.component_sep
        if elements[-1] == "" and len(elements) > 1:
            st.errors.append(IgError(seg[0], position, "", "8", "the segment ends with an "
                                     "element separator; remove the trailing separators",
                                     "ig-trailing-separator", line=seg[3], offset=seg[4],
                                     ordinal=seg[2], claim_id=st.claim_id))
        if not any(e.replace(comp, "") for e in elements[1:]):
            st.errors.append(IgError(seg[0], position, "", "8", "the segment has no data; "
                                     "remove it or fill in its elements", "ig-empty-segment",
                                     line=seg[3], offset=seg[4], ordinal=seg[2],
                                     claim_id=st.claim_id))

    def _segment_id(self, st: _Transaction, seg: Segment, position: int) -> None:
        """A segment id the guide does not know: is it even a well-formed id?"""
        if _SEG_ID.match(seg[0]):
            return
        st.errors.append(IgError(seg[0][:3], position, "", "1", "the segment id is not two or "
                                 "three letters and digits", "ig-segment-id", line=seg[3],
                                 offset=seg[4], ordinal=seg[2]))

    def _envelope(self, item: Segment, tokenizer: Tokenizer | None) -> None:
        """ISA, GS, ST, SE, GE, IEA, and any segment outside a checked transaction set."""
        sid = item[0]
        if sid == "ISA":
            self._open_isa(item, tokenizer.delimiters if tokenizer else None)
        elif self.isa is None:
            return
        elif sid == "IEA":
            self._close_isa(item)
        elif sid == "GS":
            self._open_gs(item)
        elif self.gs is None:
            self.isa.errors.append(EnvelopeError("024", f"segment {sid} stands outside a "
                                                        "functional group", item[3], item[2],
                                                 check="env-outside-group"))
        elif sid == "GE":
            self._close_gs(item)
        elif sid == "ST":
            self._open_st(item)
        elif self.st is None:
            self.gs.errors.append(EnvelopeError("1", f"segment {sid} stands outside a "
                                                     "transaction set", item[3], item[2],
                                                check="env-outside-transaction"))
        elif sid == "SE":
            self._close_st(item)
        else:
            self.st.seg_count += 1  # a transaction set of a group without a guide

    def _counters(self, st: _Transaction, seg: Segment, guide: Guide, position: int) -> None:
        """HL01 numbering and HL02 parents; LX01 numbering within a claim (837 only, as pyx12)."""
        sid = seg[0]
        if sid == "HL":
            st.hl_count += 1
            hl01 = seg.get(1)
            if _int(hl01) != st.hl_count:
                self._counter_error(st, seg, position, "ig-hl-sequence", 1, "628",
                                    f"HL01 should be {st.hl_count}: HL ids count up from 1 in "
                                    "each transaction set")
            hl02 = seg.get(2)
            if hl02 != "":
                parent = _int(hl02)
                if parent not in st.hl_open:
                    self._counter_error(st, seg, position, "ig-hl-parent", 2, "734",
                                        "HL02 does not name an open parent HL")
                while st.hl_stack and parent != st.hl_stack[-1]:
                    st.hl_open.discard(st.hl_stack.pop())
            st.hl_stack.append(st.hl_count)
            st.hl_open.add(st.hl_count)
        elif guide.transaction_id == "837":
            if sid == "CLM":
                st.lx_count = 0
            else:
                st.lx_count += 1
                if seg.get(1) != str(st.lx_count):
                    self._counter_error(st, seg, position, "ig-lx-sequence", 1, "554",
                                        f"LX01 should be {st.lx_count}: service lines count up "
                                        "from 1 in each claim")

    def _counter_error(self, st: _Transaction, seg: Segment, position: int, check_id: str,
                       element: int, data_element: str, message: str) -> None:
        st.errors.append(IgError(seg[0], position, "", "8", message, check_id, element=element,
                                 data_element=data_element, element_code="I12",
                                 value=seg.get(element) or None, line=seg[3], offset=seg[4],
                                 ordinal=seg[2], claim_id=st.claim_id))

    def _problem(self, problem: SyntaxProblem) -> None:
        self.problems.append(f"{problem.code}: {problem.message} (line {problem.line})")
        if problem.code == "syntax-empty-segment" and self.st is not None:
            self.st.envelope.append(EnvelopeError("5", "an empty segment (two segment terminators "
                                                       "in a row) inside this transaction set; "
                                                       "remove it", problem.line,
                                                  check="syntax-empty-segment"))

    def report(self) -> IgReport:
        """Close whatever is still open (a truncated file) and hand out the verdicts."""
        if self.isa is not None:
            self._close_isa(None)
        return IgReport(interchanges=tuple(self.interchanges), problems=tuple(self.problems))


def _with_version(elements: tuple, index: int, version: str) -> tuple:
    """A GS or ST as its stand-in map knows it: the map's version at GS08 / ST03."""
    return elements[:index] + (version,) + elements[index + 1:]


def _loop_code(loop: str) -> str:
    """IK303 names guide loops ("2300"); the envelope and header wrappers have no loop id."""
    return loop if loop[:1].isdigit() else ""


_COMPANIONS: dict = {}


def _with_companion(guides: GuideSet, name: str) -> GuideSet:
    from scrubber.ig.overrides import apply, load_companions

    stamp = (guides.fingerprint, name, repr(load_companions().get(name)))
    if stamp not in _COMPANIONS:
        _COMPANIONS[stamp] = apply(guides, name)
    return _COMPANIONS[stamp]


def check(source: Source, *, guides: GuideSet | None = None,
          companion: str | None = None, owns: Callable[[int], bool] | None = None) -> IgReport:
    """Check a source (a path, bytes or a binary stream) against the implementation guides.

    ``companion`` names a payer companion guide of x12_maps/ig-overrides.xml
    to lay over them. Nothing about the input raises: an unreadable path,
    binary junk or a broken envelope comes back in the report (``problems``,
    envelope errors, verdicts); an unknown companion raises ``OverrideError``.
    ``owns``: check only the sets whose ST offset it accepts (see ``Checker``).
    """
    if companion is not None:
        guides = _with_companion(guides or load_guides(), companion)
    try:
        stream, owned = open_source(source)
    except UnreadableSource as exc:
        return IgReport(interchanges=(), problems=(f"file-unreadable: {exc}",))
    try:
        checker = Checker(guides, owns)
        tokenizer = Tokenizer(stream)
        for item in tokenizer.items():
            if isinstance(item, Run):
                checker.feed_run(item, tokenizer)
            else:
                checker.feed((item,), tokenizer)
        return checker.report()
    finally:
        if owned:
            stream.close()


def _first_envelope(run: Run) -> int:
    """Where in ``run.text`` the first envelope segment (ISA, GS, ST, SE, GE, IEA) starts;
    -1 when the run has none."""
    text, joint, sep = run.text, run.joint, run.separator
    first = -1
    for name in _ENVELOPE:
        if text.startswith(name) and text[len(name):len(name) + len(sep)] in (sep, "") \
                or text.startswith(name + joint):
            return 0
        for ending in (sep, joint):
            at = text.find(joint + name + ending)
            if at >= 0 and (first < 0 or at + len(joint) < first):
                first = at + len(joint)
        if text.endswith(joint + name):
            at = len(text) - len(name)
            if first < 0 or at < first:
                first = at
    return first


class Checked:
    """A tokenizer whose items go through a Checker as a reader takes them.

    The model's walker reads ``items()`` (Runs unsplit); the checker gets the
    same items' segments on the way, so one tokenization serves both, and
    ``checker.report()`` is whole once the reader is done.
    """

    def __init__(self, tokenizer: Tokenizer, checker: Checker):
        self.tokenizer, self.checker = tokenizer, checker

    @property
    def delimiters(self) -> Delimiters | None:
        return self.tokenizer.delimiters

    def items(self) -> Iterator[Segment | SyntaxProblem | Run]:
        tokenizer, feed = self.tokenizer, self.checker.feed
        feed_run = self.checker.feed_run
        for item in tokenizer.items():
            if isinstance(item, Run):
                feed_run(item, tokenizer)
            else:
                feed((item,), tokenizer)
            yield item


def read_checked(source: Source, checker: Checker) -> Iterator[Event]:
    """The model's events of ``source``, checked by ``checker`` in the same reading; of
    the sets the checker does not own, only their claim counts (``SkippedClaims``)."""
    from scrubber.model.walker import read

    return read(source, tokens=lambda tokenizer: Checked(tokenizer, checker),
                owns=checker.owns)


class CheckedRead:
    """One reading of a source that yields its model events and checks it too.

    ``report()``, once ``events()`` is done, is what ``check`` would have said
    of the source, an unreadable one included.
    """

    def __init__(self, source: Source, *, companion: str | None = None,
                 owns: Callable[[int], bool] | None = None):
        guides = _with_companion(load_guides(), companion) if companion is not None else None
        self.source, self.checker = source, Checker(guides, owns)
        self._unreadable: str | None = None

    def events(self) -> Iterator[Event]:
        for event in read_checked(self.source, self.checker):
            if event.__class__ is Problem and event.code == "file-unreadable":
                self._unreadable = event.message
            yield event

    def report(self) -> IgReport:
        if self._unreadable is not None:
            return IgReport(interchanges=(), problems=(f"file-unreadable: {self._unreadable}",))
        return self.checker.report()
