"""The fast path may be stricter than the guide, never looser.

Whatever one of its patterns accepts, the exact element check must find
clean; and on valid files it must accept nearly everything, or it is no fast
path at all.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from mutate import base_files, mutants

from scrubber.ig import fastpath
from scrubber.ig.compile import load_guides
from scrubber.ig.elements import check_element, check_segment
from scrubber.ig.tables import CompositeSpec
from scrubber.ig.walker import Walker, key_values
from scrubber.x12.tokenizer import Segment, Tokenizer

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
GUIDES = load_guides()
MAPS = ("837.5010.X222.A1.xml", "837Q3.I.5010.X223.A1.xml")

EDGE_VALUES = (
    "0", "1", "-", "-5", "1.", ".5", "12.50", "1.2.3", "0012", "9" * 19, "A", "AB", "ab", "Z9",
    "X" * 35, "X" * 61, "AB ", " AB", "A B", "A:B", "A^B", "A*B", "A!B", "A\x07B", "É",
    "20260228", "20260229", "20240229", "21000229", "20000229", "20261231", "20260431",
    "20261301", "17991231", "2026022", "202602281", "20260101-20260131", "20260131-20260101",
    "20260101-2026013", "0000", "2359", "2400", "2360", "235959", "23595", "23596099",
    "235960", "2359599", "HC", "ZZ", "18", "D8", "RD8", "11", "B", "Y", "N", "W", "00", "CI",
    "PXC", "207Q00000X", "OH", "XX", "1234567890", "123456789", "E119", "ABK", "UN", "MJ",
)


def _specs():
    seen = set()
    for map_file in MAPS:
        for node in GUIDES.guides[map_file].nodes:
            for spec in node.elements:
                subs = spec.components if isinstance(spec, CompositeSpec) else (spec,)
                for sub in subs:
                    key = (sub.data_ele, sub.usage, sub.data_type, sub.min_len, sub.max_len,
                           sub.allowed, sub.regex)
                    if key not in seen:
                        seen.add(key)
                        yield sub


SPECS = list(_specs())


@pytest.mark.parametrize("rule, elements, expected", [
    (("P", 2, 3), ("X", "A", "B", "C"), True),
    (("P", 2, 3), ("X", "A", "", "C"), False),
    (("P", 2, 3), ("X", "A"), True),
    (("R", 1, 2), ("X", "", ""), False),
    (("R", 1, 2), ("X", "", "B"), True),
    (("C", 1, 3), ("X", "A", "B"), False),
    (("C", 1, 3), ("X", "", "B"), True),
    (("L", 1, 2, 3), ("X", "A", "", "C"), True),
    (("L", 1, 2, 3), ("X", "A"), False),
    (("E", 1, 2), ("X", "A", "B"), False),
    (("E", 1, 2), ("X", "A", ""), True),
])
def test_syntax_functions_agree_with_the_exact_check(rule, elements, expected):
    from scrubber.ig.elements import check_syntax
    from scrubber.ig.tables import Node

    node = Node(0, "segment", "X", "", "S", 1, 1, -1, "/X", 0, 0, syntax=(rule,))
    errors: list = []
    check_syntax(rule, elements, errors)
    assert fastpath.syntax(node)(elements) is expected
    assert (not errors) is expected


def test_every_element_pattern_is_sound():
    """No value an element's pattern accepts gets an error from the exact check."""
    ctx = fastpath._Ctx("*", ":")
    checked = 0
    for spec in SPECS:
        pattern = fastpath._usage(fastpath._value(spec, ctx), spec.usage)
        if pattern is None:
            continue
        rec = re.compile(pattern)
        values = set(EDGE_VALUES) | {c for c in spec.allowed} | {c + " " for c in spec.allowed}
        for value in values:
            if value and rec.fullmatch(value):
                errors: list = []
                check_element(spec, value, ":", (1, 0), errors)
                assert not errors, (spec.refdes, value, errors)
                checked += 1
    assert checked > 500


def _segments(data: bytes):
    """(map node, elements, separators) for every segment of a transaction set, as placed."""
    tokenizer = Tokenizer(__import__("io").BytesIO(data))
    walker = None
    for seg in tokenizer:
        if not isinstance(seg, Segment):
            continue
        if seg.id == "GS":
            guide = GUIDES.guides[GUIDES.index[("00501", seg.get(8), seg.get(1))]]
            walker = Walker(guide, guide.gs)
            walker.force(guide.isa_loop, guide.isa)
            walker.force(guide.gs_loop, guide.gs)
            continue
        if walker is None or seg.id in ("ISA", "IEA", "GE"):
            continue
        d = tokenizer.delimiters
        assert d is not None  # set at the ISA
        keyvals = key_values(walker.guide, seg.id, seg.elements, d.component)
        target = walker.step(seg.id, keyvals, [])
        if target is not None:
            yield walker.guide.nodes[target], seg.elements, d.element, d.component


def _files():
    yield from (data for _, data in base_files())
    yield from (m.data for m in mutants(200, seed=3))
    for path in sorted(FIXTURES.glob("837*.x12")):
        yield path.read_bytes()


def test_segment_patterns_are_sound_and_do_the_work():
    accepted = clean = 0
    for data in _files():
        for node, elements, sep, comp in _segments(data):
            pattern = fastpath.build(node, sep, comp)
            syntax = fastpath.syntax(node)
            errors: list = []
            check_segment(node, elements, comp, errors)
            if not errors:
                clean += 1
            if pattern is not None and pattern.fullmatch(sep.join(elements)) and (
                    syntax is None or syntax(elements)):
                assert not errors, (node.path, elements, errors)
                accepted += 1
    assert clean > 2000
    assert accepted >= 0.9 * clean, (accepted, clean)


@pytest.mark.parametrize("path, segment, expected", [
    ("2400/DTP[472]", "DTP*472*D8*20261031", True),
    ("2400/DTP[472]", "DTP*472*D8*20260229", False),  # no 29 February in 2026
    ("2400/DTP[472]", "DTP*472*RD8*20260101-20260131", True),
    ("2400/DTP[472]", "DTP*472*D8*20260101-20260131", False),  # a range under D8
    ("2010AA/NM1", "NM1*85*2*SAMPLE CLINIC*****XX*1234567893", True),
    ("2010AA/NM1", "NM1*85*2*SAMPLE CLINIC*****XX", False),  # syntax P0809: XX needs an id
    ("2400/SV1", "SV1*HC:99213*85*UN*1***1", True),
    ("2400/SV1", "SV1*HC:99213*85.*UN*1***1", False),  # "85." is no decimal number
])
def test_patterns_on_known_segments(path, segment, expected):
    """A few segments of an 837P claim: accepted at once, or sent to the exact check."""
    guide = GUIDES.guides["837.5010.X222.A1.xml"]
    node = next(n for n in guide.nodes if n.kind == "segment" and n.path.endswith("/" + path))
    pattern, syntax = fastpath.build(node, "*", ":"), fastpath.syntax(node)
    accepted = bool(pattern.fullmatch(segment)) and (syntax is None or syntax(segment.split("*")))
    assert accepted is expected
