"""Companion guides: a payer's tighter rules laid over the compiled implementation guides.

``x12_maps/ig-overrides.xml`` (schema ``ig-overrides.xsd``) names companion
guides; each changes element usage, lengths or code lists, segment usage or
max use, or loop usage or repeats, and says why. None applies unless asked
for by name, so the plain check stays what the implementation guide says
(and what pyx12 says). Overrides are applied to the compiled tables, not to
pyx12's maps, and cost a few milliseconds.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from scrubber.ig.tables import CompositeSpec, ElementSpec, Guide, GuideSet, Node
from scrubber.paths import maps_dir

OVERRIDES = "ig-overrides.xml"
SCHEMA = "ig-overrides.xsd"


class OverrideError(Exception):
    """The companion-guide file is not valid, or names something the guide does not have."""


@dataclass(frozen=True, slots=True)
class Change:
    """One change of a companion guide."""

    kind: str  # "element", "segment" or "loop"
    loop: str  # loop id (for a loop change: the loop itself)
    segment: str  # segment id ("" for a loop change)
    qualifier: str  # qualifier code telling the segment apart ("" for any)
    ref: str  # element reference, e.g. "CLM01" or "SV101-02" ("" unless an element change)
    settings: tuple[tuple[str, object], ...]  # (field, new value)
    why: str
    line: int


@dataclass(frozen=True, slots=True)
class Companion:
    name: str
    map_file: str
    description: str
    changes: tuple[Change, ...]


def load_companions(path: str | Path | None = None) -> dict[str, Companion]:
    """Read and validate the companion-guide file (default: x12_maps/ig-overrides.xml)."""
    path = Path(path) if path is not None else maps_dir() / OVERRIDES
    try:
        schema = etree.XMLSchema(etree.parse(str(maps_dir() / SCHEMA)))
        doc = etree.parse(str(path), etree.XMLParser(resolve_entities=False, no_network=True))
    except (OSError, etree.XMLSyntaxError) as exc:
        raise OverrideError(f"{path}: {exc}") from exc
    if not schema.validate(doc):
        error = schema.error_log.last_error
        raise OverrideError(f"{path}, line {error.line}: {error.message}")
    companions = {}
    for comp in doc.getroot().iterfind("companion"):
        changes = []
        for item in comp:
            if item.tag in ("description",) or not isinstance(item.tag, str):
                continue
            settings: list[tuple[str, object]] = []
            for field in ("usage", "min_len", "max_len", "max_use", "repeat", "codes"):
                value = item.get(field)
                if value is None:
                    continue
                if field == "codes":
                    settings.append((field, frozenset(value.split())))
                elif field == "usage":
                    settings.append((field, value))
                else:
                    settings.append((field, int(value)))
            changes.append(Change(
                kind=item.tag, loop=item.get("loop") or item.get("id"),
                segment=item.get("segment") or "", qualifier=item.get("qualifier") or "",
                ref=item.get("ref") or "", settings=tuple(settings), why=item.get("why"),
                line=item.sourceline))
        companions[comp.get("name")] = Companion(
            comp.get("name"), comp.get("map"), " ".join(comp.findtext("description").split()),
            tuple(changes))
    return companions


def _segments(guide: Guide, change: Change) -> list[Node]:
    return [n for n in guide.nodes if n.kind == "segment" and n.xid == change.segment
            and n.loop_id == change.loop
            and (not change.qualifier or change.qualifier in n.key_codes)]


def _element(spec: ElementSpec, settings: dict) -> ElementSpec:
    fields = {}
    if "usage" in settings:
        fields["usage"] = settings["usage"]
    if "min_len" in settings:
        fields["min_len"] = settings["min_len"]
    if "max_len" in settings:
        fields["max_len"] = settings["max_len"]
    if "codes" in settings:
        fields["allowed"] = settings["codes"]
        fields["checks_codes"] = True
    return dataclasses.replace(spec, **fields)


def apply(guides: GuideSet, name: str, path: str | Path | None = None) -> GuideSet:
    """The guides with companion ``name`` laid over them (a new GuideSet; the base is untouched)."""
    companions = load_companions(path)
    if name not in companions:
        known = ", ".join(sorted(companions)) or "none"
        raise OverrideError(f"no companion guide named {name!r}; known: {known}")
    companion = companions[name]
    if companion.map_file not in guides.guides:
        raise OverrideError(f"companion {name!r}: map {companion.map_file!r} is not compiled")
    guide = guides.guides[companion.map_file]
    nodes = list(guide.nodes)
    for change in companion.changes:
        settings = dict(change.settings)
        where = f"companion {name!r}, line {change.line}"
        if change.kind == "loop":
            targets = [n for n in nodes if n.kind == "loop" and n.xid == change.loop]
            if not targets:
                raise OverrideError(f"{where}: the guide has no loop {change.loop}")
            for n in targets:
                nodes[n.index] = dataclasses.replace(
                    n, usage=settings.get("usage", n.usage),
                    max_repeat=settings.get("repeat", n.max_repeat))
            continue
        targets = _segments(guide, change)
        if not targets:
            raise OverrideError(f"{where}: the guide has no segment {change.segment} in loop "
                                f"{change.loop}" + (f" with qualifier {change.qualifier}"
                                                    if change.qualifier else ""))
        for n in targets:
            n = nodes[n.index]
            if change.kind == "segment":
                nodes[n.index] = dataclasses.replace(
                    n, usage=settings.get("usage", n.usage),
                    max_repeat=settings.get("max_use", n.max_repeat))
                continue
            elements: list[ElementSpec | CompositeSpec] = []
            found = False
            for spec in n.elements:
                if isinstance(spec, CompositeSpec):
                    comps = tuple(_element(c, settings) if c.refdes == change.ref else c
                                  for c in spec.components)
                    found |= comps != spec.components
                    if spec.refdes == change.ref and "usage" in settings:
                        spec = dataclasses.replace(spec, usage=str(settings["usage"]))
                        found = True
                    elements.append(dataclasses.replace(spec, components=comps))
                elif spec.refdes == change.ref:
                    elements.append(_element(spec, settings))
                    found = True
                else:
                    elements.append(spec)
            if not found:
                raise OverrideError(f"{where}: segment {change.segment} has no element "
                                    f"{change.ref}")
            nodes[n.index] = dataclasses.replace(n, elements=tuple(elements))
    stamp = hashlib.sha256(repr(companion).encode()).hexdigest()[:12]
    changed = dict(guides.guides)
    changed[companion.map_file] = dataclasses.replace(guide, nodes=tuple(nodes))
    return dataclasses.replace(guides, guides=changed,
                               fingerprint=f"{guides.fingerprint}+{name}-{stamp}")
