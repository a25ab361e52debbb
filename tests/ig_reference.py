"""pyx12 as the reference for the implementation-guide check (test helper).

Runs pyx12's validator on bytes with its maps loaded once per process, and
reduces both its JSON errors and our ``IgReport`` to the same comparable form:
per transaction set (ISA13, GS06, ST02) an accept/reject verdict and a set of
error locations -- (segment position, segment id, code) for segment errors and
(segment position, segment id, element, component, code) for element errors.
"""

from __future__ import annotations

import io
import json
import logging

import pyx12.map_if
import pyx12.params
import pyx12.x12n_document

logging.getLogger("pyx12").addHandler(logging.NullHandler())
logging.getLogger("pyx12").propagate = False

_load = pyx12.map_if.load_map_file
_maps: dict = {}


def _cached_load(map_file, param, map_path=None):
    key = (map_file, map_path)
    if key not in _maps:
        _maps[key] = _load(map_file, param, map_path)
    return _maps[key]


_PARAMS = pyx12.params.params()


def run_pyx12(data: bytes) -> tuple[bool, dict, str]:
    """(valid, JSON error tree, 999 text) from pyx12 for an ASCII X12 file.

    pyx12 reloads its maps on every call (0.3-0.4 s); they are read-only once
    loaded, so they are cached for the duration of the call only.
    """
    fd_json, fd_999 = io.StringIO(), io.StringIO()
    pyx12.map_if.load_map_file = _cached_load
    try:
        ok = pyx12.x12n_document.x12n_document(_PARAMS, io.StringIO(data.decode("ascii")), fd_999,
                                               None, fd_json=fd_json)
    finally:
        pyx12.map_if.load_map_file = _load
    return ok, json.loads(fd_json.getvalue() or '{"interchanges": []}'), fd_999.getvalue()


def pyx12_view(tree: dict) -> dict:
    """{(isa13, gs06, st02): (accepted, frozenset of error locations)} from pyx12's JSON."""
    out = {}
    for isa in tree["interchanges"]:
        for gs in isa["groups"]:
            for st in gs["transactions"]:
                errors: set[tuple] = set()
                for seg in st["segments"]:
                    for e in seg["errors"]:
                        code = e["err_cde"]
                        if code == "8" and "is empty" in e["err_str"]:
                            code = "EMPTY"
                        seg_id = "*" if code in _READER_CODES else seg["seg_id"]
                        errors.add((seg["seg_count"], seg_id, code))
                    for ele in seg["elements"]:
                        for e in ele["errors"]:
                            errors.add((seg["seg_count"], seg["seg_id"], ele["ele_pos"],
                                        ele["subele_pos"] or 0, e["err_cde"]))
                for e in st["errors"]:
                    errors.add(("ST", e["err_cde"]))
                key = (isa["isa_trn_set_id"], gs["gs_control_num"], st["trn_set_control_num"])
                out[key] = (st["ack_code"] == "A", frozenset(errors))
    return out


_READER = {"ig-trailing-separator": "SEG1", "ig-empty-segment": "EMPTY",
           "ig-hl-sequence": "HL1", "ig-hl-parent": "HL2", "ig-lx-sequence": "LX"}
# the segment they land on differs; compare the position
_READER_CODES = frozenset(_READER.values())
_ENVELOPE_SEGMENTS = ("ST", "SE")


def our_view(report) -> dict:
    """The same form from our IgReport, as pyx12 would show the same findings.

    Two known pyx12 behaviours are applied to our errors so that the rest can
    be compared exactly (docs/conformance.md explains both):
    - element errors on ST and SE are left out: pyx12 files them where its
      JSON and 999 never look, so its verdict ignores them;
    - numbering, empty-segment and trailing-separator errors of a segment
      pyx12 cannot place go with the next segment it can place (pyx12 queues
      them until a segment is placed); we keep them on their own segment.
    """
    out = {}
    for st in report.transactions:
        unplaced = {e.position for e in st.errors if e.check == "ig-unexpected-segment"}
        last_body = st.segment_count - 1 if st.envelope_errors == () or st.segment_count else 0
        errors: set[tuple] = set()
        for e in st.errors:
            if e.segment_id in _ENVELOPE_SEGMENTS and e.check in (
                    "ig-element", "ig-composite", "ig-syntax", "ig-too-many-elements"):
                continue
            position = e.position
            if e.check in _READER and position in unplaced:
                nxt = position
                while nxt in unplaced:
                    nxt += 1
                position = nxt if nxt <= last_body else max(p for p in unplaced if p >= position)
            if e.check in _READER:
                errors.add((position, "*", _READER[e.check]))
            elif e.check in ("ig-composite", "ig-syntax", "ig-too-many-elements"):
                errors.add((position, e.segment_id, "8"))  # pyx12 files these on the segment
            elif e.element_code:
                errors.add((position, e.segment_id, e.element, e.component, e.element_code))
            else:
                errors.add((position, e.segment_id, e.segment_code))
        for e in st.envelope_errors:
            errors.add(("ST", e.code))
        out[st.key] = (not errors, frozenset(errors))
    return out
