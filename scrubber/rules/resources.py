"""Outside data that rule packs read: the one hook between front ends and packs.

A pack that needs data the user supplies (CMS NCCI tables, code-set files, a
payer's lists) declares it once as a ``ResourceKind``: a name, the options that
name its files, and a loader. Front ends build their options from
``resource_kinds()`` (so the command line, scrub.toml and the watcher all know
them), load them with ``load_resources`` into one ``Resources`` value, and hand
that to the scrub core; a rule reads ``ctx.resource(name, Type)``. No front end
or layer threads a parameter per resource.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


class ResourceError(Exception):
    """A resource file cannot be used; the message names the file and what is wrong."""


@dataclass(frozen=True, slots=True)
class Release:
    """One file as its publisher releases it: the option it feeds and when it is in force.

    What ``scrub data add`` keeps of a file it installs, and what lets each release
    judge only the dates of service it is in force for.
    """

    option: str  # the ResourceOption it feeds: "icd10cm", "hcpcs", "ncci-ptp" ...
    label: str  # for people: "ICD-10-CM FY2027", "HCPCS 2025 January quarter"
    effective_from: date | None  # first day in force; None: the file does not say
    effective_to: date | None = None  # last day in force; None: until a later release


# A file (or a zip) as downloaded -> the release it is, or None when it is not this
# option's kind of file; raises ResourceError when it is, but cannot be used.
Recognizer = Callable[[Path], Release | None]


@dataclass(frozen=True, slots=True)
class ResourceOption:
    """One option naming a resource's files: ``--NAME PATH``, repeatable; a scrub.toml key."""

    name: str  # the long option without dashes, e.g. "ncci-ptp"
    help: str
    metavar: str = "PATH"
    # tells this option's files as their publisher ships them (``scrub data add``)
    recognize: Recognizer | None = None


Loader = Callable[[Mapping[str, tuple[str, ...]]], object | None]


@dataclass(frozen=True, slots=True)
class ResourceKind:
    """A kind of outside data a pack reads, and how to load it from its options' values."""

    name: str  # the key rules ask for: ctx.resource(name, ...)
    options: tuple[ResourceOption, ...]
    # {option name: paths given} -> the loaded resource, or None when no path was given;
    # raises ResourceError for files that cannot be used
    load: Loader
    label: str = ""  # for people: "CMS NCCI PTP and MUE tables"; default: the name

    def describe(self) -> str:
        return self.label or self.name


_KINDS: dict[str, ResourceKind] = {}


def resource_kind(kind: ResourceKind) -> ResourceKind:
    """Register ``kind`` (called by a rule pack at import); names are unique."""
    if kind.name in _KINDS and _KINDS[kind.name] is not kind:
        raise ValueError(f"resource {kind.name!r} is registered twice")
    _KINDS[kind.name] = kind
    return kind


def resource_kinds() -> tuple[ResourceKind, ...]:
    """Every registered kind, after importing the rule packs that register them."""
    from scrubber.rules.registry import all_rules

    all_rules()  # imports the packs
    return tuple(_KINDS.values())


@dataclass(frozen=True, slots=True)
class Resources:
    """The loaded outside data of one run, by name; picklable for worker processes."""

    named: tuple[tuple[str, object], ...] = ()
    # by name: every rule asks on every claim
    _by_name: dict = field(init=False, repr=False, compare=False, default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", dict(self.named))

    @classmethod
    def of(cls, **named: object) -> Resources:
        """Resources from keyword arguments; a None value is left out."""
        return cls(tuple((k, v) for k, v in named.items() if v is not None))

    def get(self, name: str) -> object | None:
        return self._by_name.get(name)

    def merged(self, other: Resources) -> Resources:
        """These resources with ``other``'s added; ``other`` wins on a name in both."""
        names = {key for key, _ in other.named}
        return Resources(tuple(p for p in self.named if p[0] not in names) + other.named)

    def __bool__(self) -> bool:
        return bool(self.named)


def describe(name: str) -> str:
    """The label of the resource kind ``name`` (the name itself when none is registered)."""
    kind = next((k for k in resource_kinds() if k.name == name), None)
    return kind.describe() if kind is not None else name


def load_resources(values: Mapping[str, Sequence[str]]) -> Resources:
    """Load every kind whose options are among ``values`` ({option name: paths})."""
    loaded: list[tuple[str, object]] = []
    for kind in resource_kinds():
        given = {o.name: tuple(values.get(o.name) or ()) for o in kind.options}
        if not any(given.values()):
            continue
        resource = kind.load(given)
        if resource is not None:
            loaded.append((kind.name, resource))
    return Resources(tuple(loaded))
