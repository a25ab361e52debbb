"""Find each segment's place in the guide's loop tree, pyx12's way, but fast.

pyx12's ``walk_tree`` searches the map from the last matched node for the
node that matches the next segment, counting loops and segments on the way
to report missing required segments and loops, repeats over the limit and
segments found in the wrong place. Which node matches depends only on where
the walk starts and on the segment's id and qualifier codes; the counts only
decide which of the checks met on the way turn into errors. So the search
runs once per (start node, segment key) and is kept as a *trace*: the target
node and the count-dependent checks in the order pyx12 makes them. Every
later segment with the same key replays the trace against the counters.

Error tuples are ``(code, node_index, message)`` where ``code`` is the IK304
code ("1" unrecognised, "2" not used, "3" required missing, "4" loop over its
repeat, "5" segment over its max use) and ``node_index`` is the map node the
error is about (the missing segment, the loop, or the segment itself).
"""

from __future__ import annotations

from scrubber.ig.tables import Guide, Node

# trace events
MISS_SEG = 0  # (MISS_SEG, seg): required segment skipped if never counted
MISS_LOOP = 1  # (MISS_LOOP, loop, first seg): required loop skipped if never entered
MATCH_SEG = 2  # (MATCH_SEG, seg): the segment matched within the current loop
ENTER_LOOP = 3  # (ENTER_LOOP, loop, first seg): the segment opens (a repeat of) a loop
NOT_FOUND = 4  # (NOT_FOUND, start node): the segment has no place in the guide

_CACHE_LIMIT = 50_000  # traces per guide; bad qualifier codes could otherwise grow it freely


def key_values(guide: Guide, seg_id: str, elements: tuple, component: str) -> tuple:
    """The qualifier values of a segment that decide which map node it matches."""
    fields = guide.key_fields.get(seg_id)
    if not fields:
        return ()
    values: list[str | None] = []
    n = len(elements)
    for ele, comp in fields:
        if ele >= n:
            values.append(None)
        elif comp:
            values.append(elements[ele].split(component)[0])
        else:
            values.append(elements[ele])
    return tuple(values)


class _Tracer:
    """pyx12's walk_tree search, with every count-dependent check left as an event."""

    def __init__(self, guide: Guide, seg_id: str, keyvals: tuple):
        self.nodes = guide.nodes
        self.seg_id = seg_id
        self.keys = dict(zip(guide.key_fields.get(seg_id, ()), keyvals, strict=True))
        self.events: list[tuple] = []

    def is_match(self, node: Node) -> bool:
        if node.kind != "segment" or node.xid != self.seg_id:
            return False
        return node.key is None or self.keys.get(node.key) in node.key_codes

    def first_node(self, loop: Node) -> Node | None:
        return self.nodes[loop.children[0][1][0]] if loop.children else None

    def parent_loop(self, node: Node) -> Node:
        if node.kind == "root":
            return node
        parent = self.nodes[node.parent]
        while parent.kind not in ("loop", "root"):
            parent = self.nodes[parent.parent]
        return parent

    def is_loop_match(self, loop: Node) -> bool:
        first = self.first_node(loop)
        if first is None:
            return False
        if first.kind == "loop":
            return any(
                self.nodes[i].kind == "loop" and self.is_loop_match(self.nodes[i])
                for _, members in loop.children for i in members
            )
        if self.is_match(first):
            return True
        if loop.usage == "R":
            self.events.append((MISS_LOOP, loop.index, first.index))
        return False

    def goto_seg_match(self, loop: Node) -> int | None:
        first = self.first_node(loop)
        if first is not None and first.kind == "segment" and self.is_match(first):
            self.events.append((ENTER_LOOP, loop.index, first.index))
            return first.index
        for _, members in loop.children:
            for i in members:
                child = self.nodes[i]
                if child.kind == "loop":
                    found = self.goto_seg_match(child)
                    if found is not None:
                        return found
        return None

    def scan(self, node: Node, start_pos: int) -> tuple[bool, int | None]:
        for pos, members in node.children:
            if pos < start_pos:
                continue
            for i in members:
                child = self.nodes[i]
                if child.kind == "segment":
                    if self.is_match(child):
                        if node.kind == "loop" and self.is_loop_match(node):
                            return True, self.goto_seg_match(node)
                        self.events.append((MATCH_SEG, child.index))
                        return True, child.index
                    if child.usage == "R":
                        self.events.append((MISS_SEG, child.index))
                elif self.is_loop_match(child):
                    return True, self.goto_seg_match(child)
        return False, None

    def walk(self, start: int) -> tuple[int | None, tuple]:
        orig = self.nodes[start]
        node, start_pos = orig, orig.pos
        if node.kind not in ("loop", "root"):
            node = self.parent_loop(node)
        while True:
            found, target = self.scan(node, start_pos)
            if found:
                return target, self._pruned(start)
            if node.kind == "root":
                return None, ((NOT_FOUND, start),)
            start_pos = node.pos
            node = self.parent_loop(node)


    def _pruned(self, start: int) -> tuple:
        """Drop checks that cannot fire: "missing" for the loops the walk stands in and
        for the segment it stands on.

        A loop on the path from the root to the current node was entered
        (counted) before the walk got there, and a reset only clears loops
        below the one re-entered, so its count is at least 1; so is the count
        of the segment just matched.
        """
        ancestors = set()
        i = self.nodes[start].parent
        while i >= 0:
            ancestors.add(i)
            i = self.nodes[i].parent
        return tuple(e for e in self.events
                     if not (e[0] == MISS_LOOP and e[1] in ancestors)
                     and not (e[0] == MISS_SEG and e[1] == start))


class Walker:
    """Where the walk stands in one guide, with pyx12's loop and segment counters."""

    __slots__ = ("guide", "nodes", "node", "counts", "traces", "zeros")

    def __init__(self, guide: Guide, node: int):
        self.guide = guide
        self.nodes = guide.nodes
        self.node = node
        self.counts = [0] * guide.slots
        self.traces: dict = {}
        self.zeros = [0] * guide.slots

    def force(self, loop: int, seg: int) -> None:
        """Stand on ``seg``, the first segment of ``loop``, as pyx12 does at ISA and GS."""
        node = self.nodes[loop]
        counts = self.counts
        counts[node.slot + 1: node.last_slot + 1] = self.zeros[: node.last_slot - node.slot]
        counts[node.slot] += 1
        counts[self.nodes[seg].slot] += 1
        self.node = seg

    def step(self, seg_id: str, keyvals: tuple, errors: list) -> int | None:
        """Move to the node matching the segment; append walk errors; None if it has no place.

        A trace is ``(target, kind, a, b, c, d, e, events)``: kind 0 is a lone
        match in the loop in hand (a slot, b limit), kind 1 a lone loop entry
        (a..b the slots to clear, c the loop's slot, d its limit, e the first
        segment's slot), kind 2 anything else (replay ``events``).
        """
        key = (self.node, seg_id, keyvals)
        trace = self.traces.get(key)
        if trace is None:
            trace = self.trace(key)
        target, kind, a, b, c, d, e, events = trace
        counts = self.counts
        if kind == 0:
            counts[a] += 1
            if counts[a] > b:
                self.seg_usage(self.nodes[target], errors)
        elif kind == 1:
            counts[a:b] = self.zeros[: b - a]
            counts[c] += 1
            if counts[c] > d:
                self.replay(events, errors, counted=True)
            counts[e] += 1
        else:
            self.replay(events, errors)
            if target is None:
                return None
        self.node = target
        return target

    def trace(self, key: tuple) -> tuple:
        """The trace of ``key`` = (start node, segment id, key values): kept, or found now."""
        trace = self.traces.get(key)
        if trace is not None:
            return trace
        if len(self.traces) > _CACHE_LIMIT:
            self.traces.clear()
        target, events = _Tracer(self.guide, key[1], key[2]).walk(key[0])
        trace = (target, 2, 0, 0, 0, 0, 0, events)
        if target is not None and len(events) == 1 and events[0][0] == MATCH_SEG:
            seg = self.nodes[target]
            # a "not used" segment always errs: a limit of -1 sends it to _seg_usage
            limit = seg.max_repeat if seg.usage != "N" else -1
            trace = (target, 0, seg.slot, limit, 0, 0, 0, events)
        elif target is not None and len(events) == 1 and events[0][0] == ENTER_LOOP \
                and self.nodes[events[0][1]].usage != "N":
            loop = self.nodes[events[0][1]]
            trace = (target, 1, loop.slot + 1, loop.last_slot + 1, loop.slot, loop.max_repeat,
                     self.nodes[events[0][2]].slot, events)
        self.traces[key] = trace
        return trace

    def seg_usage(self, seg: Node, errors: list) -> None:
        if seg.usage == "N":
            errors.append(("2", seg.index,
                           f"segment {seg.xid} ({seg.name}) is not used in this guide"))
        elif self.counts[seg.slot] > seg.max_repeat:
            errors.append(("5", seg.index, f"segment {seg.xid} ({seg.name}) occurs "
                                            f"{self.counts[seg.slot]} times; the guide allows "
                                            f"{seg.max_repeat}"))

    def replay(self, events: tuple, errors: list, counted: bool = False) -> None:
        """Apply a trace's events to the counters in pyx12's order.

        ``counted`` re-runs a lone ENTER_LOOP whose counting the fast path
        already did, only to word the over-the-limit error.
        """
        if counted:
            loop = self.nodes[events[0][1]]
            errors.append(("4", loop.index, f"loop {loop.xid} ({loop.name}) repeats "
                                            f"{self.counts[loop.slot]} times; the guide allows "
                                            f"{loop.max_repeat}"))
            return
        nodes = self.nodes
        counts = self.counts
        pending: list[tuple[Node, Node | None]] = []  # (missing segment, missing loop or None)

        def flush(keep_pos: int | None) -> None:
            for seg, loop in pending:
                if seg.pos == keep_pos:
                    continue
                if loop is None:
                    errors.append(("3", seg.index,
                                   f"required segment {seg.xid} ({seg.name}) is missing"))
                else:
                    errors.append(("3", seg.index,
                                   f"required loop {loop.xid} ({loop.name}) is missing"))
            pending[:] = [p for p in pending if p[0].pos == keep_pos]

        for event in events:
            kind = event[0]
            if kind == MISS_SEG:
                seg = nodes[event[1]]
                if counts[seg.slot] < 1:
                    pending.append((seg, None))
            elif kind == MISS_LOOP:
                loop = nodes[event[1]]
                if counts[loop.slot] < 1:
                    pending.append((nodes[event[2]], loop))
            elif kind == MATCH_SEG:
                seg = nodes[event[1]]
                counts[seg.slot] += 1
                self.seg_usage(seg, errors)
                parent = nodes[seg.parent].xid
                # pyx12 compares map nodes by id and parent id: any REF of the loop clears REF
                pending[:] = [p for p in pending
                              if not (p[0].xid == seg.xid and nodes[p[0].parent].xid == parent)]
                flush(seg.pos)
            elif kind == ENTER_LOOP:
                loop = nodes[event[1]]
                if loop.usage == "N":
                    errors.append(("2", loop.index, f"loop {loop.xid} ({loop.name}) is not used in "
                                                    "this guide"))
                else:
                    counts[loop.slot + 1: loop.last_slot + 1] = \
                        self.zeros[: loop.last_slot - loop.slot]
                    counts[loop.slot] += 1
                    if counts[loop.slot] > loop.max_repeat:
                        errors.append(("4", loop.index, f"loop {loop.xid} ({loop.name}) repeats "
                                                        f"{counts[loop.slot]} times; the guide "
                                                        f"allows {loop.max_repeat}"))
                counts[nodes[event[2]].slot] += 1
                flush(None)
            elif kind == NOT_FOUND:
                errors.append(("1", event[1], "segment is not expected here (unknown segment, "
                                              "wrong order, or a qualifier code the guide does "
                                              "not list)"))
