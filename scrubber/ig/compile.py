"""Compile pyx12's XML maps into ``GuideSet`` tables, once, and cache them.

The maps are read from the installed pyx12 package (never copied into this
repository) with lxml. Compiling takes a fraction of a second; the result is
written as JSON (never pickle: a cache file must not be able to run code) into
the per-user cache folder under a name built from the pyx12 version, the
hashes of every map file read, our override file and this compiler's own
version, so a new pyx12 or an edited override recompiles by itself.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
from importlib.resources import files
from pathlib import Path
from typing import cast

from lxml import etree

from scrubber.ig.tables import MAXINT, CompositeSpec, ElementSpec, Guide, GuideSet, Node
from scrubber.paths import cache_dir, open_trusted, private_dir

log = logging.getLogger(__name__)

COMPILER_VERSION = "1"  # bump when the compiled form changes
CONTROL_MAP = "x12.control.00501.xml"
GUIDE_MAPS = (
    "837.5010.X222.A1.xml",
    "837Q3.I.5010.X223.A1.xml",
    "837Q3.I.5010.X223.A1.v2.xml",
    "999.5010X231.A1.xml",
    "277.5010.X214.xml",
)
SUPPORT_FILES = ("dataele.xml", "codes.xml", "maps.xml")
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, remove_comments=True)


class GuideError(Exception):
    """The installed maps cannot be compiled (a broken pyx12 install, not bad input)."""


def _map_dir():
    return files("pyx12").joinpath("map")


def _read(name: str) -> bytes:
    return _map_dir().joinpath(name).read_bytes()


def _field(elem, name: str) -> str | None:
    """An attribute, else a child element's text: the two map formats say it either way."""
    value = elem.get(name)
    if value:
        return value
    text = elem.findtext(name)
    return text.strip() if text is not None else None


def _number(elem, name: str) -> int:
    """A numeric field every map node has (seq, pos); its absence is a broken map."""
    value = _field(elem, name)
    if value is None or not value.lstrip("-").isdigit():
        raise GuideError(f"map node {elem.get('xid') or elem.tag} has no numeric {name}")
    return int(value)


def _repeat(text: str | None) -> int:
    if text is None or text.strip() in (">1", "&gt;1"):
        return MAXINT
    return int(text)


class _Builder:
    """Turn one map's XML tree into the flat node tuple of a ``Guide``."""

    def __init__(self, data_elements: dict, code_lists: dict, map_file: str):
        self.data_elements = data_elements
        self.code_lists = code_lists
        self.map_file = map_file
        self.nodes: list[dict] = []
        self.slot_of_path: dict[str, int] = {}

    def slot(self, path: str) -> int:
        if path not in self.slot_of_path:
            self.slot_of_path[path] = len(self.slot_of_path)
        return self.slot_of_path[path]

    def element(self, e, in_composite=False, comp_usage="", comp_seq=0) -> ElementSpec:
        data_ele = _field(e, "data_ele") or ""
        if data_ele not in self.data_elements:
            raise GuideError(f"{self.map_file}: data element {data_ele!r} is not in dataele.xml")
        data_type, min_len, max_len = self.data_elements[data_ele]
        codes = frozenset((c.text or "") for c in e.findall("valid_codes/code"))
        valid = e.find("valid_codes")
        external = valid.get("external") if valid is not None else None
        allowed = codes
        if external:
            if external not in self.code_lists:
                raise GuideError(f"{self.map_file}: external code list {external!r} is unknown")
            allowed = codes | self.code_lists[external]
        regex = e.findtext("regex")
        return ElementSpec(
            refdes=e.get("xid") or "",
            name=_field(e, "name") or "",
            data_ele=data_ele,
            usage=_field(e, "usage") or "S",
            seq=_number(e, "seq"),
            data_type=data_type,
            min_len=min_len,
            max_len=max_len,
            codes=codes,
            allowed=allowed,
            checks_codes=bool(codes) or bool(external),
            regex=regex if regex else None,
            in_composite=in_composite,
            composite_usage=comp_usage,
            composite_seq=comp_seq,
        )

    def composite(self, e) -> CompositeSpec:
        usage = _field(e, "usage") or "S"
        seq = _number(e, "seq")
        return CompositeSpec(
            refdes=_field(e, "refdes") or e.get("xid") or "",
            name=_field(e, "name") or "",
            data_ele=_field(e, "data_ele") or "",
            usage=usage,
            seq=seq,
            components=tuple(self.element(c, True, usage, seq) for c in e.findall("element")),
        )

    def segment_key(self, seg_id: str, elements: tuple) -> tuple[tuple[int, int] | None, frozenset]:
        """Which element tells this segment apart from its namesakes (pyx12's is_match)."""
        c0 = elements[0] if elements else None
        c1 = elements[1] if len(elements) > 1 else None
        c2 = elements[2] if len(elements) > 2 else None
        if isinstance(c0, ElementSpec) and c0.data_type == "ID" and c0.usage == "R" and c0.codes:
            return (1, 0), c0.codes
        if seg_id == "ENT" and isinstance(c1, ElementSpec) and c1.data_type == "ID" and c1.codes:
            return (2, 0), c1.codes
        if isinstance(c0, CompositeSpec) and c0.components:
            first = c0.components[0]
            if first.codes and (first.data_type == "ID"
                                or (seg_id == "CTX" and first.data_type == "AN")):
                return (1, 1), first.codes
        if seg_id == "HL" and isinstance(c2, ElementSpec) and c2.codes:
            return (3, 0), c2.codes
        return None, frozenset()

    def build(self, elem, kind: str, parent: int, parent_path: str, loop_id: str) -> int:
        index = len(self.nodes)
        record: dict = {"index": index, "kind": kind, "parent": parent}
        self.nodes.append(record)
        if kind == "root":
            record.update(xid=elem.get("xid") or "", name=_field(elem, "name") or "", usage="R",
                          pos=0, max_repeat=1, path="/", slot=-1)
        else:
            record.update(xid=elem.get("xid") or "", name=_field(elem, "name") or "",
                          usage=_field(elem, "usage") or "S", pos=_number(elem, "pos"))
        if kind == "segment":
            found: list[tuple[int, ElementSpec | CompositeSpec, str | None]] = []
            spec: ElementSpec | CompositeSpec
            for child in elem:
                if child.tag == "element":
                    spec = self.element(child)
                    code = child.findtext("valid_codes/code")
                elif child.tag == "composite":
                    spec = self.composite(child)
                    code = child.findtext("element/valid_codes/code")
                else:
                    continue
                found.append((spec.seq, spec, code))
            found.sort(key=lambda t: t[0])
            record["first_codes"] = tuple(code for _, _, code in found)
            elements = [spec for _, spec, _ in found]
            syntax = []
            for s in elem.findall("syntax"):
                text = (s.text or "").strip()
                if text and text[0] in "PRCLE":
                    syntax.append((text[0],) + tuple(int(text[i:i + 2])
                                                     for i in range(1, len(text) - 1, 2)))
            key, key_codes = self.segment_key(record["xid"], tuple(elements))
            record.update(max_repeat=_repeat(_field(elem, "max_use")), elements=tuple(elements),
                          syntax=tuple(syntax), key=key, key_codes=key_codes, loop_id=loop_id,
                          path_part=record["xid"])
            return index
        if kind == "loop":
            record["max_repeat"] = _repeat(_field(elem, "repeat"))
            record["path"] = (parent_path if parent_path != "/" else "") + "/" + record["xid"]
            record["slot"] = self.slot(record["path"])
            loop_id = record["xid"]
        by_pos: dict[int, list[int]] = {}
        for child in elem.findall("loop"):
            i = self.build(child, "loop", index, record["path"], loop_id)
            by_pos.setdefault(self.nodes[i]["pos"], []).append(i)
        for child in elem.findall("segment"):
            i = self.build(child, "segment", index, record["path"], loop_id)
            by_pos.setdefault(self.nodes[i]["pos"], []).append(i)
        # pyx12 names segments sharing a position by their first qualifier code
        for pos in sorted(by_pos):
            members = by_pos[pos]
            if len(members) > 1:
                for i in members:
                    seg = self.nodes[i]
                    if seg["kind"] == "segment":
                        code = _first_code(seg)
                        if code is not None:
                            seg["path_part"] = f"{seg['xid']}[{code}]"
        for pos in sorted(by_pos):
            for i in by_pos[pos]:
                seg = self.nodes[i]
                if seg["kind"] == "segment":
                    base = record["path"] if record["path"] != "/" else ""
                    seg["path"] = base + "/" + seg["path_part"]
                    seg["slot"] = self.slot(seg["path"])
        record["children"] = tuple((pos, tuple(by_pos[pos])) for pos in sorted(by_pos))
        return index

    def finish(self, elem, map_file: str, implementation: str) -> Guide:
        self.build(elem, "root", -1, "/", "")
        last_slot: dict[int, int] = {}
        for rec in reversed(self.nodes):
            own = [rec["slot"]] if rec["slot"] >= 0 else []
            kids = [last_slot[i] for _, members in rec.get("children", ()) for i in members]
            last_slot[rec["index"]] = max(own + kids) if (own or kids) else -1
        nodes = []
        for rec in self.nodes:
            rec.pop("path_part", None)
            rec.pop("first_codes", None)
            nodes.append(Node(last_slot=last_slot[rec["index"]], **rec))
        key_fields: dict[str, set] = {}
        for n in nodes:
            if n.kind == "segment":
                fields = key_fields.setdefault(n.xid, set())
                if n.key is not None:
                    fields.add(n.key)
        by_path = {n.path: n.index for n in nodes}
        try:
            isa = by_path["/ISA_LOOP/ISA"]
            gs = by_path["/ISA_LOOP/GS_LOOP/GS"]
        except KeyError as exc:
            raise GuideError(f"{map_file}: no ISA/GS envelope in the map") from exc
        return Guide(
            map_file=map_file,
            transaction_id=nodes[0].xid,
            name=nodes[0].name,
            nodes=tuple(nodes),
            slots=len(self.slot_of_path),
            key_fields={k: tuple(sorted(v)) for k, v in key_fields.items()},
            isa=isa,
            gs=gs,
            isa_loop=by_path["/ISA_LOOP"],
            gs_loop=by_path["/ISA_LOOP/GS_LOOP"],
            implementation=implementation,
        )


def _first_code(seg: dict) -> str | None:
    """pyx12's guess_unique_key_id_element: the first code (in map order) of the qualifier."""
    elements = seg["elements"]
    first = seg["first_codes"]
    c0 = elements[0] if elements else None
    c1 = elements[1] if len(elements) > 1 else None
    c2 = elements[2] if len(elements) > 2 else None
    seg_id = seg["xid"]
    if isinstance(c0, ElementSpec) and c0.data_type == "ID" and c0.codes:
        return first[0]
    if seg_id == "ENT" and isinstance(c1, ElementSpec) and c1.data_type == "ID" and c1.codes:
        return first[1]
    if isinstance(c0, CompositeSpec) and c0.components and c0.components[0].data_type == "ID" \
            and c0.components[0].codes:
        return first[0]
    if seg_id == "HL" and isinstance(c2, ElementSpec) and c2.codes:
        return first[2]
    return None


def _data_elements() -> dict:
    root = etree.fromstring(_read("dataele.xml"), _PARSER)
    return {
        d.get("ele_num"): (d.get("data_type") or "", int(d.get("min_len")), int(d.get("max_len")))
        for d in root.iter("data_ele")
    }


def _code_lists() -> dict:
    root = etree.fromstring(_read("codes.xml"), _PARSER)
    return {
        cs.findtext("id"): frozenset((c.text or "") for c in cs.iterfind("version/code"))
        for cs in root.iter("codeset")
    }


def _map_index() -> dict:
    root = etree.fromstring(_read("maps.xml"), _PARSER)
    index = {}
    for version in root.iter("version"):
        for m in version.iterfind("map"):
            index[(version.get("icvn"), m.get("vriic") or "", m.get("fic") or "")] = m.text
    return index


def _wrap_v2(root, control):
    """A v2 map starts at ST_LOOP: put it inside the control map's ISA/GS envelope."""
    wrapped = etree.Element("transaction", xid=root.get("xid") or "")
    name = etree.SubElement(wrapped, "name")
    name.text = _field(root, "name") or ""
    isa_loop = etree.fromstring(etree.tostring(control.find("loop")))
    gs_loop = next(lp for lp in isa_loop.findall("loop") if lp.get("xid") == "GS_LOOP")
    for loop in root.findall("loop"):
        gs_loop.append(loop)
    wrapped.append(isa_loop)
    return wrapped


def _implementation(root) -> str:
    """GS08/ST03 the map accepts: the code list of ST03."""
    for seg in root.iter("segment"):
        if seg.get("xid") == "ST":
            for el in seg.iter("element"):
                if el.get("xid") == "ST03":
                    code = el.findtext("valid_codes/code")
                    return code or ""
    return ""


def fingerprint(overrides: bytes = b"") -> str:
    """What the compiled form depends on: pyx12's version, its map files and our overrides."""
    import pyx12

    digest = hashlib.sha256()
    digest.update(f"{COMPILER_VERSION}|{getattr(pyx12, '__version__', '?')}|".encode())
    for name in (CONTROL_MAP,) + GUIDE_MAPS + SUPPORT_FILES:
        digest.update(name.encode() + b"\0" + hashlib.sha256(_read(name)).digest())
    digest.update(hashlib.sha256(overrides).digest())
    return digest.hexdigest()[:24]


def compile_guides(stamp: str = "") -> GuideSet:
    """Read every map we use from the installed pyx12 and compile it (no cache)."""
    data_elements = _data_elements()
    code_lists = _code_lists()
    control_xml = etree.fromstring(_read(CONTROL_MAP), _PARSER)
    control = _Builder(data_elements, code_lists, CONTROL_MAP).finish(control_xml, CONTROL_MAP, "")
    guides = {CONTROL_MAP: control}
    for map_file in GUIDE_MAPS:
        root = etree.fromstring(_read(map_file), _PARSER)
        if root.find("loop") is not None and root.find("loop").get("xid") == "ST_LOOP":
            root = _wrap_v2(root, control_xml)
        guides[map_file] = _Builder(data_elements, code_lists, map_file).finish(
            root, map_file, _implementation(root))
    return GuideSet(guides=guides, index=_map_index(), control=CONTROL_MAP, fingerprint=stamp)


_LOADED: dict[str, GuideSet] = {}


def load_guides() -> GuideSet:
    """The compiled guides: from memory, else the cache file, else compiled and cached.

    The cache file is JSON (it cannot run code when read) and is read only when
    it is this user's own, nobody else can write it or its folder, and it is a
    plain file (scrubber.paths.open_trusted); anything else is compiled over.
    """
    stamp = fingerprint()
    if stamp in _LOADED:
        return _LOADED[stamp]
    try:
        folder: Path | None = private_dir(cache_dir())
    except OSError as exc:
        log.warning("not caching the compiled maps: %s", exc)
        folder = None
    path = folder / f"ig-{stamp}.json" if folder is not None else None
    guides = _read_cache(path, stamp) if path is not None else None
    if guides is None:
        guides = compile_guides(stamp)
        if path is not None:
            _store(path, guides)
    _LOADED[stamp] = guides
    return guides


def _read_cache(path: Path, stamp: str) -> GuideSet | None:
    fd = open_trusted(path)
    if fd is None:
        return None
    try:
        with os.fdopen(fd, "rb") as fh:
            guides = guides_from_json(fh.read())
        if guides.fingerprint == stamp:
            return guides
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        pass
    log.warning("ignoring unreadable compiled-map cache %s", path)  # a torn or foreign file
    return None


def _store(path: Path, guides: GuideSet) -> None:
    """Write the cache atomically (owner-only); a cache that cannot be written only costs
    time."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".ig-", suffix=".tmp")  # 0600
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(guides_to_json(guides))
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError as exc:
        log.warning("cannot cache compiled maps in %s: %s", path.parent, exc)


# -- the cache file: plain JSON data, never code -----------------------------------------
# A cache folder can be written by whoever gets at it; pickle would run what such a file
# says. JSON only ever builds strings, numbers and lists, which these functions turn
# back into the tables field by field (specs are stored once and referred to by number).

CACHE_FORMAT = 1


def _spec_row(spec: ElementSpec | CompositeSpec, specs: dict) -> int:
    """The number of ``spec`` in the table of specs, adding it (and its components)."""
    if spec in specs:
        return specs[spec][0]
    if isinstance(spec, CompositeSpec):
        row: list = ["C", spec.refdes, spec.name, spec.data_ele, spec.usage, spec.seq,
                     [_spec_row(c, specs) for c in spec.components]]
    else:
        row = ["E", spec.refdes, spec.name, spec.data_ele, spec.usage, spec.seq,
               spec.data_type, spec.min_len, spec.max_len, sorted(spec.codes),
               sorted(spec.allowed - spec.codes), spec.checks_codes, spec.regex,
               spec.in_composite, spec.composite_usage, spec.composite_seq]
    specs[spec] = (len(specs), row)
    return specs[spec][0]


def guides_to_json(guides: GuideSet) -> bytes:
    """The compiled guides as JSON (``guides_from_json`` reads it back)."""
    specs: dict = {}
    out = []
    for guide in guides.guides.values():
        nodes = [[n.index, n.kind, n.xid, n.name, n.usage, n.pos, n.max_repeat, n.parent,
                  n.path, n.slot, n.last_slot, [[pos, list(ids)] for pos, ids in n.children],
                  [_spec_row(e, specs) for e in n.elements], [list(s) for s in n.syntax],
                  list(n.key) if n.key is not None else None, sorted(n.key_codes), n.loop_id]
                 for n in guide.nodes]
        out.append([guide.map_file, guide.transaction_id, guide.name, nodes, guide.slots,
                    {k: [list(f) for f in v] for k, v in guide.key_fields.items()},
                    guide.isa, guide.gs, guide.isa_loop, guide.gs_loop, guide.implementation])
    table = [row for _, row in sorted(specs.values(), key=lambda item: item[0])]
    return json.dumps({"format": CACHE_FORMAT, "fingerprint": guides.fingerprint,
                       "control": guides.control, "specs": table, "guides": out,
                       "index": [[*key, value] for key, value in guides.index.items()]},
                      separators=(",", ":")).encode()


def guides_from_json(data: bytes) -> GuideSet:
    """The guides ``guides_to_json`` wrote; ValueError (or KeyError, TypeError) when the
    data is not such a file."""
    doc = json.loads(data)
    if doc["format"] != CACHE_FORMAT:
        raise ValueError(f"cache format {doc['format']!r}")
    specs: list[ElementSpec | CompositeSpec] = []
    for row in doc["specs"]:
        if row[0] == "C":
            specs.append(CompositeSpec(row[1], row[2], row[3], row[4], row[5],
                                       tuple(cast(ElementSpec, specs[i]) for i in row[6])))
        else:
            codes = frozenset(row[9])
            specs.append(ElementSpec(row[1], row[2], row[3], row[4], row[5], row[6], row[7],
                                     row[8], codes, codes | frozenset(row[10]), row[11],
                                     row[12], row[13], row[14], row[15]))
    guides = {}
    for g in doc["guides"]:
        nodes = tuple(
            Node(index=n[0], kind=n[1], xid=n[2], name=n[3], usage=n[4], pos=n[5],
                 max_repeat=n[6], parent=n[7], path=n[8], slot=n[9], last_slot=n[10],
                 children=tuple((pos, tuple(ids)) for pos, ids in n[11]),
                 elements=tuple(specs[i] for i in n[12]),
                 syntax=tuple(tuple(s) for s in n[13]),
                 key=tuple(n[14]) if n[14] is not None else None,  # type: ignore[arg-type]
                 key_codes=frozenset(n[15]), loop_id=n[16])
            for n in g[3])
        guides[g[0]] = Guide(g[0], g[1], g[2], nodes, g[4],
                             {k: tuple(tuple(f) for f in v) for k, v in g[5].items()},
                             g[6], g[7], g[8], g[9], g[10])
    return GuideSet(guides=guides, index={tuple(row[:3]): row[3] for row in doc["index"]},
                    control=doc["control"], fingerprint=doc["fingerprint"])
