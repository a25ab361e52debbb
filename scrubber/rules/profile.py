"""Profiles: what a payer tunes (severities, rules off, the packs' term and code lists).

A profile is an XML file validated against ``x12_maps/profile.xsd``. Rule
settings apply over the rules' built-in severities (a ``kind`` setting beats
a general one); a list the profile names replaces the default profile's list
of that name, and the lists it leaves out come from the default profile, so
a payer file only states what it changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from scrubber.model.claims import KINDS
from scrubber.paths import maps_dir
from scrubber.problems import problem_code
from scrubber.rules.findings import Severity
from scrubber.rules.registry import Rule, get_rule

DEFAULT_PROFILE = "default-profile.xml"
SCHEMA = "profile.xsd"


class ProfileError(Exception):
    """The profile cannot be used: not XML, not valid against the schema, unknown rule id."""


@dataclass(frozen=True, slots=True)
class CodeList:
    """A profile list: terms, plus code ranges ("96360" to "96549") for code lists."""

    terms: tuple[str, ...]
    ranges: tuple[tuple[str, str], ...] = ()
    # the terms as a set: rules ask every line of every claim, so membership must be O(1)
    _set: frozenset = field(init=False, repr=False, compare=False, default=frozenset())

    def __post_init__(self) -> None:
        object.__setattr__(self, "_set", frozenset(self.terms))

    def __contains__(self, code: object) -> bool:
        if code in self._set:
            return True
        if not self.ranges or not isinstance(code, str):
            return False
        for low, high in self.ranges:
            if len(code) == len(low) and low <= code <= high:
                return True
        return False

    def prefixes(self, code: str) -> bool:
        """True when ``code`` starts with one of the terms (diagnosis families)."""
        upper = code.upper().replace(".", "")
        return any(upper.startswith(term.upper().replace(".", "")) for term in self.terms)


_EMPTY = CodeList(())


@dataclass(frozen=True, slots=True)
class RuleSetting:
    """One <rule> element: a severity and/or on/off, for all kinds or one."""

    rule: str
    kind: str | None
    severity: Severity | None
    enabled: bool | None
    line: int  # where it is in the profile, for messages


@dataclass(frozen=True, slots=True)
class Profile:
    """A loaded profile: rule settings and named lists."""

    name: str
    path: str
    settings: tuple[RuleSetting, ...]
    lists: tuple[tuple[str, CodeList], ...]

    def list(self, name: str) -> CodeList:
        """The named list (``device-words``, ``drug-admin-codes`` ...); empty when absent."""
        for key, value in self.lists:
            if key == name:
                return value
        return _EMPTY

    @property
    def problem_settings(self) -> tuple[str, ...]:
        """The problem codes its settings name: the payer's checks, which a profile cannot
        tune (the run says so once; scrubber.problems)."""
        return tuple(dict.fromkeys(s.rule for s in self.settings if problem_code(s.rule)))

    def severity(self, rule: Rule, kind: str) -> Severity | None:
        """The severity of ``rule`` on a claim of ``kind``; None when the rule is off."""
        severity: Severity | None = rule.default_severity(kind)
        enabled = True
        for specific in (False, True):
            for setting in self.settings:
                if setting.rule != rule.id or (setting.kind is not None) != specific:
                    continue
                if specific and setting.kind != kind:
                    continue
                if setting.severity is not None:
                    severity = setting.severity
                if setting.enabled is not None:
                    enabled = setting.enabled
        return severity if enabled else None


_schema: etree.XMLSchema | None = None


def _load_schema() -> etree.XMLSchema:
    global _schema
    if _schema is None:
        path = maps_dir() / SCHEMA
        try:
            _schema = etree.XMLSchema(etree.parse(str(path)))
        except (OSError, etree.XMLSyntaxError, etree.XMLSchemaParseError) as exc:
            raise ProfileError(f"{path}: the profile schema cannot be read: {exc}") from exc
    return _schema


def _parse(path: Path) -> etree._ElementTree:
    if not path.is_file():
        raise ProfileError(f"{path}: no such profile file")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, remove_comments=True)
    try:
        tree = etree.parse(str(path), parser)
    except etree.XMLSyntaxError as exc:
        line = exc.lineno if exc.lineno else "?"
        raise ProfileError(f"{path}, line {line}: not well-formed XML: {exc.msg}") from None
    except OSError as exc:
        raise ProfileError(f"{path}: cannot be read: {exc}") from None
    schema = _load_schema()
    if not schema.validate(tree):
        error = schema.error_log[0]
        raise ProfileError(
            f"{path}, line {error.line}: does not match profile.xsd: {error.message}")
    return tree


def _bool(text: str | None) -> bool | None:
    if text is None:
        return None
    return text.strip() in ("true", "1")


def _read(path: Path) -> Profile:
    root = _parse(path).getroot()
    settings = []
    for element in root.iterfind("rules/rule"):
        rule_id = element.get("id").strip()
        if get_rule(rule_id) is None and problem_code(rule_id) is None:
            raise ProfileError(
                f"{path}, line {element.sourceline}: unknown rule id {rule_id!r}; "
                "`scrub rules` lists the rule ids")
        severity = element.get("severity")
        settings.append(RuleSetting(
            rule=rule_id, kind=element.get("kind"),
            severity=Severity(severity.strip()) if severity else None,
            enabled=_bool(element.get("enabled")), line=element.sourceline or 0))
    lists = []
    for element in root.iterfind("lists/list"):
        terms = tuple(" ".join(term.text.split()) for term in element.iterfind("term"))
        ranges = []
        for item in element.iterfind("range"):
            low, high = item.get("from").strip(), item.get("to").strip()
            if len(low) != len(high) or low > high:
                raise ProfileError(
                    f"{path}, line {item.sourceline}: range {low}-{high} in list "
                    f"{element.get('name')!r} must run from low to high with codes of one "
                    "length")
            ranges.append((low, high))
        lists.append((element.get("name").strip(), CodeList(terms, tuple(ranges))))
    return Profile(root.get("name").strip(), str(path), tuple(settings), tuple(lists))


def load_profile(path: str | Path | None = None) -> Profile:
    """Read and validate a profile; None reads x12_maps/default-profile.xml.

    Raises ProfileError naming the file and line when the profile is not
    well-formed XML, does not match the schema, or names an unknown rule.
    """
    default = _read(maps_dir() / DEFAULT_PROFILE)
    if path is None:
        return default
    own = _read(Path(path))
    names = {name for name, _ in own.lists}
    lists = own.lists + tuple(item for item in default.lists if item[0] not in names)
    return Profile(own.name, own.path, own.settings, lists)


__all__ = ["CodeList", "KINDS", "Profile", "ProfileError", "RuleSetting", "load_profile",
           "maps_dir"]
