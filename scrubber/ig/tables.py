"""Compiled implementation-guide tables: a pyx12 map as flat data.

A guide is a tuple of nodes addressed by index (parents, children and the
walk's counters all refer to indices), so the walker never follows object
graphs and the whole guide goes to its cache as plain JSON rows
(scrubber.ig.compile). Field names say what the pyx12 map attribute means;
the map attribute is in the comment.
"""

from __future__ import annotations

from dataclasses import dataclass

MAXINT = 2147483647  # pyx12's "no limit" for ">1" repeats and max_use


@dataclass(frozen=True, slots=True)
class ElementSpec:
    """One simple data element (or one component of a composite)."""

    refdes: str  # xid, e.g. "CLM01" or "SV101-01"
    name: str
    data_ele: str  # data element number, e.g. "1028"
    usage: str  # R, S or N
    seq: int  # position in the segment (or in the composite)
    data_type: str  # from dataele.xml: AN, ID, DT, TM, R, N0..N9
    min_len: int
    max_len: int
    codes: frozenset  # valid_codes of the map (used to tell segments apart)
    allowed: frozenset  # codes plus the external list (used to validate)
    checks_codes: bool  # the map gives codes or an external list
    regex: str | None  # the map's <regex>, searched (not matched) like pyx12
    in_composite: bool
    composite_usage: str  # usage of the enclosing composite ("" when none)
    composite_seq: int  # position of the enclosing composite (0 when none)


@dataclass(frozen=True, slots=True)
class CompositeSpec:
    """A composite data element and its components."""

    refdes: str
    name: str
    data_ele: str
    usage: str
    seq: int
    components: tuple[ElementSpec, ...]


@dataclass(frozen=True, slots=True)
class Node:
    """A loop, a segment or the map root.

    ``children`` lists (position, node indices) in map order; within one
    position loops come before segments, as pyx12 builds them. ``slot`` is the
    walk counter this node counts into: pyx12 counts by path, so two nodes
    with the same path share one; a loop's descendants own the slots
    ``slot + 1 .. last_slot``.
    """

    index: int
    kind: str  # "root", "loop" or "segment"
    xid: str  # loop id ("2300") or segment id ("CLM")
    name: str
    usage: str  # R, S or N
    pos: int
    max_repeat: int  # loop repeat or segment max_use
    parent: int  # -1 for the root
    path: str  # pyx12 path, e.g. /ISA_LOOP/GS_LOOP/ST_LOOP/DETAIL/2000A/NM1[85]
    slot: int
    last_slot: int
    children: tuple[tuple[int, tuple[int, ...]], ...] = ()
    elements: tuple[ElementSpec | CompositeSpec, ...] = ()
    syntax: tuple[tuple, ...] = ()  # ("P", 8, 9): the map's syntax notes
    key: tuple[int, int] | None = None  # (element, component) that tells this segment apart
    key_codes: frozenset = frozenset()
    loop_id: str = ""  # for a segment: the xid of its loop


@dataclass(frozen=True, slots=True)
class Guide:
    """One compiled map (an implementation guide, or the X12 control map)."""

    map_file: str  # pyx12 map file name
    transaction_id: str  # the map's root xid: "837", "837Q3", "X12"
    name: str
    nodes: tuple[Node, ...]
    slots: int
    key_fields: dict  # segment id -> tuple of (element, component) read to match it
    isa: int  # node index of /ISA_LOOP/ISA
    gs: int  # node index of /ISA_LOOP/GS_LOOP/GS
    isa_loop: int
    gs_loop: int
    implementation: str  # GS08 the map accepts, e.g. "005010X222A1"; "" for the control map


@dataclass(frozen=True, slots=True)
class GuideSet:
    """Every compiled guide plus the map index (ISA12, GS08, GS01 -> map file)."""

    guides: dict  # map file -> Guide
    index: dict  # (icvn, vriic, fic) -> map file
    control: str  # map file of the 00501 control map
    fingerprint: str  # what the cache is keyed on
