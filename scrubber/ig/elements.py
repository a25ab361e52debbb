"""Check a segment's elements against its map node, exactly as pyx12 does.

This is the reference (slow) path: usage, length, characters, code values,
data types, dates and times, the map's own regular expressions, composites
and the segment syntax notes (P/R/C/L/E). ``scrubber.ig.fastpath`` accepts
most clean segments with one regular expression and only sends the rest here,
so every rule pyx12 applies lives in this one module.

Each error is a tuple ``(check, ik4, spec, position, message, value)``:
``check`` names the check ("ig-element", "ig-composite", "ig-syntax",
"ig-too-many-elements"); ``ik4`` the IK403 code ("1" missing, "2"
conditional required missing, "3" too many elements, "4" too short, "5" too
long, "6" invalid character, "7" invalid code, "8" invalid date, "9" invalid
time, "10" exclusion violated, "13" too many components); ``spec`` the
element spec (None for a segment-level problem); ``position`` the
(element, component) in the segment.
"""

from __future__ import annotations

import re

from scrubber.ig.tables import CompositeSpec, ElementSpec, Node

_N = re.compile(r"-?[0-9]+", re.S | re.ASCII)
_R = re.compile(r"-?[0-9]*(\.[0-9]+)?", re.S | re.ASCII)
# X12.5 extended character set as pyx12 applies it to 00501 (the "E" charset)
BAD_CHAR = re.compile(r"""[^A-Z0-9!"&'()*+,\-\./:;?= a-z%~@\[\]_{}\\|<>^`#$]""", re.S | re.ASCII)
_NOT_DIGIT = re.compile(r"[^0-9]+", re.S | re.ASCII)
_CONTROL = tuple(chr(c) for c in (0x07, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x1C, 0x1D, 0x1E, 0x1F,
                                  0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x11, 0x12, 0x13, 0x14,
                                  0x15, 0x16, 0x17))
DATE_TYPES = ("RD8", "DT", "D8", "D6")
_REGEX_CACHE: dict[str, re.Pattern] = {}


def valid_time(val: str) -> bool:
    """HHMM[SS[d[d]]], as pyx12's is_valid_time reads it."""
    if _NOT_DIGIT.search(val):
        return False
    if val[0:2] > "23" or val[2:4] > "59":
        return False
    if len(val) > 4:
        if len(val) < 6 or val[4:6] > "59" or len(val) > 8:
            return False
    return True


def valid_date(data_type: str, val: str) -> bool:
    """CCYYMMDD (or YYMMDD, or CCYYMMDDHHMM): a real calendar date from 1800 on."""
    if data_type == "D8" and len(val) != 8:
        return False
    if data_type == "D6" and len(val) != 6:
        return False
    if _NOT_DIGIT.search(val) or len(val) not in (6, 8, 12):
        return False
    if len(val) == 6:
        val = ("20" if int(val[0:2]) < 50 else "19") + val
    year, month, day = int(val[0:4]), int(val[4:6]), int(val[6:8])
    if year < 1800 or not 1 <= month <= 12:
        return False
    if month in (1, 3, 5, 7, 8, 10, 12):
        last = 31
    elif month in (4, 6, 9, 11):
        last = 30
    elif year % 4 == 0 and not (year % 100 == 0 and year % 400):
        last = 29
    else:
        last = 28
    if not 1 <= day <= last:
        return False
    return len(val) != 12 or valid_time(val[8:12])


def valid_type(val: str, data_type: str) -> bool:
    """pyx12's IsValidDataType for the 00501 extended character set."""
    if not data_type:
        return True
    if data_type[0] == "N":
        m = _N.match(val)
        return m is not None and m.group(0) == val
    if data_type == "R":
        m = _R.match(val)
        return m is not None and m.group(0) == val
    if data_type in ("ID", "AN"):
        return not BAD_CHAR.search(val)
    if data_type == "RD8":
        if "-" not in val:
            return False
        parts = val.split("-")
        return len(parts) == 2 and valid_date("D8", parts[0]) and valid_date("D8", parts[1])
    if data_type in ("DT", "D8", "D6"):
        return valid_date(data_type, val)
    if data_type == "TM":
        return valid_time(val)
    return data_type == "B"


def _search(pattern: str, val: str) -> bool:
    rec = _REGEX_CACHE.get(pattern)
    if rec is None:
        rec = _REGEX_CACHE[pattern] = re.compile(pattern, re.S)
    return rec.search(val) is not None


def check_element(spec: ElementSpec, value: str | None, component: str, position: tuple,
                  errors: list, type_list: tuple = ()) -> None:
    """pyx12's element_if.is_valid_errors for one simple element value."""
    name = spec.name
    ref = spec.refdes
    if value is not None and component in value:
        errors.append(("ig-element", "6", spec, position,
                       f"{ref} ({name}) holds components; it is a simple element", value))
        return
    if not value:
        if spec.usage == "R" and (spec.seq != 1 or not spec.in_composite
                                  or spec.composite_usage == "R"):
            errors.append(("ig-element", "1", spec, position,
                           f"required element {ref} ({name}) is missing", None))
        return
    if spec.usage == "N":
        errors.append(("ig-element", "10", spec, position,
                       f"{ref} ({name}) is not used in this guide; "
                       "leave it empty", None))
        return
    data_type = spec.data_type
    measured = value
    if data_type and (data_type == "R" or data_type[0] == "N"):
        measured = value.replace("-", "").replace(".", "")
    if len(measured) < spec.min_len:
        errors.append(("ig-element", "4", spec, position,
                       f"{ref} ({name}) is too short: {len(measured)} "
                       f"characters, at least {spec.min_len}", value))
    if len(measured) > spec.max_len:
        errors.append(("ig-element", "5", spec, position,
                       f"{ref} ({name}) is too long: {len(measured)} "
                       f"characters, at most {spec.max_len}", value))
    for ch in _CONTROL:
        if ch in value:
            errors.append(("ig-element", "6", spec, position,
                           f"{ref} ({name}) holds a control character "
                           f"(0x{ord(ch):02X})", None))
            return
    if data_type in ("AN", "ID") and value[-1] == " " and len(value.rstrip()) >= spec.min_len:
        errors.append(("ig-element", "6", spec, position,
                       f"{ref} ({name}) has trailing spaces", value))
    if spec.checks_codes and value not in spec.allowed:
        errors.append(("ig-element", "7", spec, position,
                       f"{ref} ({name}): the guide does not list this "
                       "code", value))
    if not valid_type(value, data_type):
        if data_type in DATE_TYPES:
            errors.append(("ig-element", "8", spec, position, f"{ref} ({name}) is not a valid date "
                                                     "(CCYYMMDD)", value))
        elif data_type == "TM":
            errors.append(("ig-element", "9", spec, position,
                           f"{ref} ({name}) is not a valid time (HHMM)",
                           value))
        else:
            errors.append(("ig-element", "6", spec, position,
                           f"{ref} ({name}) holds characters its type "
                           f"{data_type} does not allow", value))
    if type_list and not any(t and valid_type(value, t) for t in type_list):
        if "TM" in type_list:
            errors.append(("ig-element", "9", spec, position,
                           f"{ref} ({name}) is not a valid time", value))
        elif any(t in type_list for t in DATE_TYPES):
            errors.append(("ig-element", "8", spec, position,
                           f"{ref} ({name}) is not a valid date in the "
                           "format its qualifier names", value))
    if spec.regex is not None and not _search(spec.regex, value):
        errors.append(("ig-element", "7", spec, position,
                       f"{ref} ({name}) does not have the form the "
                       "guide requires", value))


def _check_composite(spec: CompositeSpec, value: str | None, component: str, errors: list) -> None:
    subs = value.split(component) if value is not None else []
    empty = not any(subs)
    if empty and spec.usage in ("N", "S"):
        return
    where = (spec.seq, 0)
    if spec.usage == "R" and empty:
        errors.append(("ig-composite", "1", None, where,
                       f"required composite {spec.refdes} ({spec.name}) is "
                       "missing", None))
        return
    if spec.usage == "N":
        errors.append(("ig-composite", "10", None, where,
                       f"composite {spec.refdes} ({spec.name}) is not used "
                       "in this guide", None))
        return
    count = len(spec.components)
    if len(subs) > count:
        errors.append(("ig-composite", "13", None, where,
                       f"composite {spec.refdes} ({spec.name}) has "
                       f"{len(subs)} components; the guide allows {count}",
                       value))
    for i, comp in enumerate(spec.components):
        check_element(comp, subs[i] if i < len(subs) else None, component,
                      (spec.seq, comp.seq), errors)


def check_segment(node: Node, elements: tuple, component: str, errors: list) -> None:
    """pyx12's segment_if.is_valid_errors: every element, then the syntax notes."""
    specs = node.elements
    present = len(elements) - 1
    count = len(specs)
    seg_id = elements[0]
    if present > count:
        errors.append(("ig-too-many-elements", "3", None, (count + 1, 0),
                       f"segment {seg_id} has {present} elements; "
                       f"the guide allows {count}",
                       elements[count + 1]))
    type_list: list[str] = []
    dtp_type: tuple = ()
    for i, spec in enumerate(specs):
        value = elements[i + 1] if i < present else None
        if isinstance(spec, CompositeSpec):
            _check_composite(spec, value, component, errors)
            continue
        if i == 1 and seg_id == "DTP" and value in ("RD8", "D8", "D6", "DT", "TM"):
            dtp_type = (value,)
        if spec.data_ele == "1250":
            type_list.extend(sorted(spec.codes))
        if i == 2 and seg_id == "DTP":
            check_element(spec, value, component, (spec.seq, 0), errors, dtp_type)
        elif spec.data_ele == "1251" and type_list:
            check_element(spec, value, component, (spec.seq, 0), errors, tuple(type_list))
        else:
            check_element(spec, value, component, (spec.seq, 0), errors)
    for rule in node.syntax:
        check_syntax(rule, elements, errors)


def check_syntax(rule: tuple, elements: tuple, errors: list) -> None:
    """X12 syntax notes: P paired, R at least one, E exclusive, C conditional, L list
    conditional."""
    code, idx = rule[0], rule[1:]
    seg_id = elements[0]
    n = len(elements)
    have = [i for i in idx if i < n and elements[i] != ""]
    names = ", ".join(f"{seg_id}{i:02d}" for i in idx)
    if code == "P" and have and len(have) != len(idx):
        missing = next(i for i in idx if i not in have)
        errors.append(("ig-syntax", "2", None, (missing, 0),
                       f"{names}: when one is present all are required "
                       f"(syntax P)", None))
    elif code == "R" and not have:
        errors.append(("ig-syntax", "2", None, (idx[0], 0),
                       f"{names}: at least one is required (syntax R)",
                       None))
    elif code == "E" and len(have) > 1:
        errors.append(("ig-syntax", "10", None, (have[1], 0),
                       f"{names}: at most one may be present "
                       f"(syntax E)", None))
    elif code == "C" and idx[0] in have and len(have) != len(idx):
        missing = next(i for i in idx[1:] if i not in have)
        errors.append(("ig-syntax", "2", None, (missing, 0),
                       f"{seg_id}{idx[0]:02d} is present, so "
                       f"{seg_id}{missing:02d} is required (syntax C)", None))
    elif code == "L" and idx[0] in have and len(have) == 1:
        errors.append(("ig-syntax", "2", None, (idx[1], 0),
                       f"{seg_id}{idx[0]:02d} is present, so one of "
                       f"the others in {names} is required (syntax L)",
                       None))
