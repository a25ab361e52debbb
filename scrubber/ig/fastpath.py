"""Accept a clean segment with one regular expression instead of element by element.

For each map segment (and each pair of delimiters) this builds a pattern that
matches only segment text on which ``scrubber.ig.elements.check_segment``
finds nothing: every element's type, length, code list and usage folded into
one ``fullmatch``. The pattern may be stricter than the guide (29-31 of a
month, leap days, seconds, elements with the map's own regex all fall back to
the exact check), never looser; ``tests/test_ig_fastpath.py`` holds it to that
on every segment of the fixtures and of the mutated files.

Syntax notes (P/R/C/L/E) are not in the pattern (lookaheads cost more than
the rest of a segment's match): ``syntax(node)`` compiles them into one small
function over the elements, which the caller runs after the pattern.
"""

from __future__ import annotations

import re

from scrubber.ig.elements import check_element
from scrubber.ig.tables import CompositeSpec, ElementSpec, Node

_CHARS = "A-Z0-9!\"&'()*+,\\-./:;?= a-z%~@\\[\\]_{}\\\\|<>^`#$"
_YEAR = "(?:1[89]|[2-9][0-9])[0-9][0-9]"
_MMDD = ("(?:(?:0[1-9]|1[0-2])(?:0[1-9]|1[0-9]|2[0-8])|(?:0[13-9]|1[0-2])(?:29|30)"
         "|(?:0[13578]|1[02])31)")
DATE8 = _YEAR + _MMDD
TIME4 = "(?:[01][0-9]|2[0-3])[0-5][0-9]"
_NEVER = None


class _Ctx:
    def __init__(self, element: str, component: str):
        excluded = {element, component}
        chars = "".join(ch for ch in _literal_chars() if ch not in excluded)
        self.cls = "[" + _class(chars) + "]"
        self.cls_nospace = "[" + _class(chars.replace(" ", "")) + "]"
        self.component = component
        self.sep = re.escape(element)
        self.comp = re.escape(component)


def _literal_chars() -> str:
    out = []
    for c in range(32, 127):
        ch = chr(c)
        if re.fullmatch("[" + _CHARS + "]", ch):
            out.append(ch)
    return "".join(out)


def _class(chars: str) -> str:
    return "".join("\\" + ch if ch in "\\]^-[" else ch for ch in chars)


def _trie(words: list[str]) -> str:
    """A compact alternation of literal codes (a trie), longest branch first."""
    tree: dict = {}
    for w in words:
        node = tree
        for ch in w:
            node = node.setdefault(ch, {})
        node[""] = {}

    def emit(node: dict) -> str:
        branches = []
        end = "" in node
        for ch in sorted(k for k in node if k):
            branches.append(re.escape(ch) + emit(node[ch]))
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        if end:
            return "(?:" + body + ")?"
        return body

    return emit(tree)


def _time(spec: ElementSpec) -> str | None:
    lo, hi = spec.min_len, spec.max_len
    if lo != 4 or hi < 4:
        return _NEVER
    if hi < 6:
        return TIME4
    return TIME4 + "(?:[0-5][0-9]" + f"[0-9]{{0,{min(hi - 6, 2)}}}" + ")?"


def _value(spec: ElementSpec, ctx: _Ctx, type_list: tuple = ()) -> str | None:
    """Pattern for a non-empty value that passes every check of ``spec``, or None."""
    if spec.regex is not None:
        return _NEVER
    if spec.checks_codes:
        if type_list:
            return _NEVER
        good = [c for c in spec.allowed if c and _clean(spec, c, ctx)]
        if not good:
            return _NEVER
        return _trie(good)
    if type_list:
        options = []
        for t in type_list:
            if t == "D8" and spec.min_len <= 8 <= spec.max_len:
                options.append(DATE8)
            elif t == "RD8" and spec.min_len <= 17 <= spec.max_len:
                options.append(DATE8 + "-" + DATE8)
        if not options or spec.data_type not in ("AN", "ID"):
            return _NEVER
        return "(?:" + "|".join(options) + ")"
    dt, lo, hi = spec.data_type, spec.min_len, spec.max_len
    if dt in ("AN", "ID"):
        if lo < 1:
            return _NEVER
        return ctx.cls + f"{{{lo - 1},{hi - 1}}}" + ctx.cls_nospace
    if dt and dt[0] == "N":
        return f"-?[0-9]{{{lo},{hi}}}"
    if dt == "R":
        if lo != 1:
            return _NEVER
        return (f"-?(?:[0-9]{{1,{hi}}}(?![0-9.])|(?=[0-9.]{{2,{hi + 1}}}(?![0-9.]))"
                "[0-9]*\\.[0-9]+)")
    if dt == "DT":
        if lo == hi == 8:
            return DATE8
        return _NEVER
    if dt == "TM":
        return _time(spec)
    return _NEVER


def _clean(spec: ElementSpec, value: str, ctx: _Ctx) -> bool:
    errors: list = []
    check_element(spec, value, ctx.component, (0, 0), errors)
    return not errors and value[-1] != " " and all(ch not in value for ch in (ctx.component,))


def _usage(pattern: str | None, usage: str) -> str | None:
    if usage == "N":
        return ""
    if pattern is None:
        return _NEVER
    return pattern if usage == "R" else "(?:" + pattern + ")?"


def _composite(spec: CompositeSpec, ctx: _Ctx) -> str | None:
    if spec.usage == "N":
        return ""
    parts = []
    for comp in spec.components:
        p = _usage(_value(comp, ctx), comp.usage)
        if p is None:
            return _NEVER
        parts.append((p, comp.usage == "R"))
    if not parts:
        return _NEVER
    body = _nest(parts, ctx.comp, first=True)
    if spec.usage == "R" and not parts[0][1]:
        # an R composite with an optional first component: leave it to the exact check
        return _NEVER
    return body if spec.usage == "R" else "(?:" + body + ")?"


def _nest(parts: list[tuple[str, bool]], sep: str, first: bool) -> str:
    """p1 (sep p2 (sep p3)?)? ... where a tail may be left off only if nothing in it is required."""
    out = ""
    for i in range(len(parts) - 1, -1, -1):
        pattern, _ = parts[i]
        required_after = any(r for _, r in parts[i:])
        if i == 0 and first:
            out = pattern + out
        else:
            out = "(?:" + sep + pattern + out + ")" + ("" if required_after else "?")
    return out


def build(node: Node, element: str, component: str) -> re.Pattern | None:
    """The fast pattern for a map segment, or None when it cannot have one."""
    ctx = _Ctx(element, component)
    specs = node.elements
    parts: list[tuple[str, bool]] = []
    type_list: list[str] = []
    seg_id = node.xid
    i = 0
    while i < len(specs):
        spec = specs[i]
        if isinstance(spec, CompositeSpec):
            p = _composite(spec, ctx)
            required = spec.usage == "R"
        elif seg_id == "DTP" and i == 1 and i + 1 < len(specs) \
                and isinstance(specs[2], ElementSpec):
            p = _dtp(spec, specs[2], ctx)
            if p is None:
                return None
            parts.append((p, True))
            i += 2
            continue
        else:
            if spec.data_ele == "1250":
                type_list.extend(sorted(spec.codes))
            tl = tuple(type_list) if spec.data_ele == "1251" else ()
            p = _usage(_value(spec, ctx, tl), spec.usage)
            required = spec.usage == "R"
        if p is None:
            return None
        parts.append((p, required))
        i += 1
    if not parts:
        return re.compile(re.escape(seg_id))
    return re.compile(re.escape(seg_id) + _nest(parts, ctx.sep, first=False), re.S)


def syntax(node: Node):
    """One function ``f(elements) -> bool`` for the segment's syntax notes, or None if it has none.

    Element ``i`` is present when it exists and is not empty, as in the exact check.
    """
    if not node.syntax:
        return None
    terms = []
    for rule in node.syntax:
        code, idx = rule[0], rule[1:]
        has = [f"(n > {i} and e[{i}] != '')" for i in idx]
        if code == "P":
            terms.append(f"(({' + '.join(has)}) in (0, {len(idx)}))")
        elif code == "R":
            terms.append(f"({' or '.join(has)})")
        elif code == "C":
            terms.append(f"(not {has[0]} or ({' and '.join(has[1:])}))")
        elif code == "L":
            terms.append(f"(not {has[0]} or ({' or '.join(has[1:])}))")
        elif code == "E":
            terms.append(f"(({' + '.join(has)}) <= 1)")
        else:
            return lambda e: False
    source = "lambda e: ((n := len(e)) > 0) and " + " and ".join(terms)
    return eval(source, {"__builtins__": {}, "len": len})  # built from integers and fixed text only


def _dtp(qualifier: ElementSpec, value: ElementSpec, ctx: _Ctx) -> str | None:
    """DTP02 and DTP03 together: the date's form follows its format qualifier."""
    if qualifier.usage != "R" or value.usage != "R" or value.regex is not None:
        return None
    options = []
    fmt: str | None
    for code in sorted(qualifier.allowed):
        if not code or not _clean(qualifier, code, ctx):
            continue
        if code == "D8" and value.min_len <= 8 <= value.max_len:
            fmt = DATE8
        elif code == "RD8" and value.min_len <= 17 <= value.max_len:
            fmt = DATE8 + "-" + DATE8
        elif code in ("D6", "DT", "TM"):
            continue
        else:
            fmt = _value(value, ctx)
            if fmt is None:
                continue
        options.append(re.escape(code) + ctx.sep + fmt)
    if not options:
        return None
    return "(?:" + "|".join(options) + ")"
