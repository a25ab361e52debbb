"""Outside data that rule packs read: the one hook between front ends and packs.

A pack that needs data the user supplies (CMS NCCI tables, code-set files, a
payer's lists) declares it once as a ``ResourceKind``: a name, the options that
name its files, and a loader. Front ends build their options from
``resource_kinds()`` (so the command line, scrub.toml and the watcher all know
them), load them with ``load_resources`` into one ``Resources`` value, and hand
that to the scrub core; a rule reads ``ctx.resource(name, Type)``. No front end
or layer threads a parameter per resource.

Files can also be installed once with ``scrub data add`` (scrubber.data): each
option's ``recognize`` tells its files as their publisher ships them, and
``load_resources`` adds the installed files of an option to those a run names.
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
    # the releases of this option that ship with the scrubber and need no file (the
    # bundled ICD-10-CM): ``scrub data list`` and ``status`` count them
    bundled: Callable[[], tuple[Release, ...]] | None = None


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
    # the releases a loaded resource (None: no file given) judges by, in words, for the
    # line of a report that names the reference data of the run
    in_use: Callable[[object | None], tuple[str, ...]] | None = None

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
    # what ``load_resources`` loaded each kind from: {name: {option: paths}} as tuples, so
    # that another process can load the same (``scrub serve``'s workers read their
    # settings as data, never as a pickle); a kind given loaded has none
    sources: tuple[tuple[str, tuple[tuple[str, tuple[str, ...]], ...]], ...] = field(
        default=(), compare=False)
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
        return Resources(tuple(p for p in self.named if p[0] not in names) + other.named,
                         tuple(s for s in self.sources if s[0] not in names) + other.sources)

    def files(self, name: str) -> dict[str, tuple[str, ...]] | None:
        """The files (by option) the kind ``name`` was loaded from; None when it was given
        loaded, or is absent."""
        for key, given in self.sources:
            if key == name:
                return dict(given)
        return None

    def __bool__(self) -> bool:
        return bool(self.named)


def describe(name: str) -> str:
    """The label of the resource kind ``name`` (the name itself when none is registered)."""
    kind = next((k for k in resource_kinds() if k.name == name), None)
    return kind.describe() if kind is not None else name


def load_resources(values: Mapping[str, Sequence[str]], *,
                   installed: Mapping[str, Sequence[str]] | None = None,
                   leave_out: Sequence[str] = ()) -> Resources:
    """Load every kind whose options are among ``values`` ({option name: paths}).

    ``installed``: the files ``scrub data add`` installed, by option
    (scrubber.data.installed_files): a run's own files for an option add to the
    installed ones (given after them, so on a tie between releases the run's
    wins). ``leave_out``: kinds not to load (a caller has them already).
    """
    loaded: list[tuple[str, object]] = []
    sources: list[tuple[str, tuple[tuple[str, tuple[str, ...]], ...]]] = []
    installed = installed or {}
    for kind in resource_kinds():
        if kind.name in leave_out:
            continue
        given = {o.name: tuple(installed.get(o.name) or ()) + tuple(values.get(o.name) or ())
                 for o in kind.options}
        if not any(given.values()):
            continue
        resource = kind.load(given)
        if resource is not None:
            loaded.append((kind.name, resource))
            sources.append((kind.name, tuple(given.items())))
    return Resources(tuple(loaded), tuple(sources))


def resource_options() -> tuple[ResourceOption, ...]:
    """Every registered kind's options, in registry order."""
    return tuple(option for kind in resource_kinds() for option in kind.options)


def releases_in_use(resources: Resources) -> tuple[str, ...]:
    """The releases the run's rules judge by, in words, kind by kind (for a report line)."""
    said: list[str] = []
    for kind in resource_kinds():
        if kind.in_use is not None:
            said += kind.in_use(resources.get(kind.name))
    return tuple(said)
