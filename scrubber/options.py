"""What decides a scrub's verdicts, and the one builder every front end resolves it with.

``ScrubOptions`` is the frozen value the scrub core runs on. ``scrub_options``
builds it the same way for every front end (``scrub check``, ``watch``,
``serve``, ``batch``, the Python API, the Spark entry point): what the caller
gave (the command line, keyword arguments) wins over the command's table of
``scrub.toml``, which wins over its shared ``[scrub]`` table, which wins over the
defaults. So the same file under the same configuration gets the same verdict
whichever front end reads it; only what a front end *is* differs (the watcher
and the HTTP intake record what they accept, a check does not).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scrubber.emit.ack277 import Ack277Writer
from scrubber.rules import Profile, ProfileError, load_profile
from scrubber.rules.resources import ResourceError, Resources, load_resources, resource_kinds

CONFIG_NAME = "scrub.toml"
SHARED = "scrub"  # the table of scrub.toml every front end reads
FAIL_ON = ("reject", "warn")


class OptionsError(ValueError):
    """A setting that cannot be used; the message names it and says why, in one line."""


@dataclass(frozen=True, slots=True)
class AckIdentity:
    """Who we are in the acknowledgements we write (277CA, 999, TA1)."""

    sender_id: str = "SCRUBBER"  # ISA06 / GS02
    sender_qualifier: str = "ZZ"  # ISA05
    name: str = "SCRUBBER"  # 277CA 2100A NM103, the information source

    def writer(self) -> Ack277Writer:
        """An acknowledgement writer with this identity and fresh control numbers."""
        return Ack277Writer(sender_id=self.sender_id, sender_qualifier=self.sender_qualifier,
                            source_name=self.name, source_id=self.sender_id)


@dataclass(frozen=True, slots=True)
class ScrubOptions:
    """Everything that decides a scrub's verdicts, set once by a front end.

    Frozen and picklable: worker processes get it as is. Build it with
    ``scrub_options`` so that defaults and ``scrub.toml`` are those of every
    other front end; construct it directly only to say everything yourself.
    """

    profile: Profile | str | None = None  # a loaded profile or its path; None: the default
    companion: str | None = None  # a payer companion guide of x12_maps/ig-overrides.xml
    conformance: bool = True  # the implementation-guide check first (999), as a payer does
    resources: Resources = field(default_factory=Resources)  # NCCI tables, code sets ...
    ledger: str | None = None  # claim history: a path or postgresql:// URL; None: none
    # record the accepted claims in the ledger: held under the run's recording, sent when
    # the front end says its outputs are written (scrubber.core.Recording)
    record: bool = False
    ack: AckIdentity = field(default_factory=AckIdentity)
    fail_on: str = "reject"  # "reject" or "warn": what makes a run fail
    select: tuple[str, ...] = ()  # rule ids or prefixes ("snip-") to run only; () all
    ignore: tuple[str, ...] = ()  # rule ids or prefixes to leave out
    # the installed reference data (``scrub data``, docs/data.md): a folder or
    # postgresql:// URL whose files serve every kind of data ``resources`` lacks (the
    # scrub core fills them in once, scrubber.data.with_installed); None: none
    data: str | None = field(default_factory=lambda: default_data_store())

    def __post_init__(self) -> None:
        if self.fail_on not in FAIL_ON:
            raise ValueError(f"fail_on must be 'reject' or 'warn', not {self.fail_on!r}")


# -- scrub.toml ------------------------------------------------------------------------------

#: the settings that decide verdicts (scrub.toml keys, as the long options are spelt)
VERDICT_KEYS = ("profile", "companion", "ig", "ledger", "no-ledger", "record", "fail-on",
                "select", "ignore", "ack-sender", "ack-name")


def verdict_keys() -> tuple[str, ...]:
    """The verdict settings, with every rule pack's resource options (--ncci-ptp ...)."""
    return VERDICT_KEYS + tuple(o.name for kind in resource_kinds() for o in kind.options)


def find_config(start: str | os.PathLike | None = None) -> Path | None:
    """The scrub.toml that applies in ``start`` (default: the working folder).

    Looked for in ``start`` and then each folder above it, as ruff, pytest and
    git look for theirs; the search stops at the filesystem root or at a folder
    holding ``.git`` (a repository's top), after looking there.
    """
    folder = Path(start or Path.cwd()).absolute()
    for here in (folder, *folder.parents):
        candidate = here / CONFIG_NAME
        if candidate.is_file():
            return candidate
        if (here / ".git").exists():
            return None
    return None


#: the [scrub] keys that name files: relative to the scrub.toml that says them
PATH_KEYS = ("profile", "ledger")
#: the keys whose value is a list (a single string is refused, not split into letters)
LIST_KEYS = {"select": "rule ids or prefixes", "ignore": "rule ids or prefixes"}


def did_you_mean(word: str, choices: Sequence[str]) -> str:
    """" (did you mean X?)" for the nearest of ``choices`` to a misspelt ``word``, or ""."""
    import difflib

    near = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {near[0]}?)" if near else ""


def relative_to(path: str | os.PathLike, value: Any) -> Any:
    """``value`` (a file a config names) made relative to the config file ``path``'s folder,
    as ruff reads its settings; URLs, absolute paths and non-strings are left alone."""
    if not isinstance(value, str) or not value or "://" in value:
        return value
    value = os.path.expanduser(value)
    return value if os.path.isabs(value) else str(Path(path).absolute().parent / value)


def read_config(path: str | os.PathLike | None = None) -> dict[str, dict[str, Any]]:
    """scrub.toml as {table: {key: value}} (``path``, else the one ``find_config`` finds).

    The files it names ([scrub] profile, ledger and the data options, [data] store)
    are made relative to its own folder, so that the same file means the same
    thing from any folder below it.
    """
    if path is None:
        path = find_config()
        if path is None:
            return {}
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise OptionsError(f"{path}: no such configuration file") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise OptionsError(f"{path}: {exc}") from None
    for name, table in data.items():
        if not isinstance(table, dict):
            raise OptionsError(f"{path}: {name} = ... stands outside a table; put it under "
                               f"[{SHARED}] (every command) or a command's table")
    shared = data.get(SHARED, {})
    unknown = sorted(set(shared) - set(verdict_keys()))
    if unknown:
        raise OptionsError(f"{path}: [{SHARED}] {unknown[0]} is not a setting every command "
                           f"shares{did_you_mean(unknown[0], verdict_keys())} (they are: "
                           f"{', '.join(verdict_keys())})")
    for table_name, table in data.items():
        for key, what in LIST_KEYS.items():
            if key in table and not isinstance(table[key], list):
                raise OptionsError(f"{path}: [{table_name}] {key} = {table[key]!r}: give a "
                                   f"list of {what}, e.g. {key} = [\"snip-npi\"]")
    files = (*PATH_KEYS, *(o.name for kind in resource_kinds() for o in kind.options))
    for table in data.values():  # [scrub] and a command's table alike
        for key in files:
            if key in table:
                value = table[key]
                table[key] = [relative_to(path, v) for v in value] \
                    if isinstance(value, list) else relative_to(path, value)
    if isinstance(data.get("data"), dict) and "store" in data["data"]:
        data["data"]["store"] = relative_to(path, data["data"]["store"])
    return data


# -- the builder -----------------------------------------------------------------------------

#: what each front end is, where the defaults differ: the watcher and the HTTP intake
#: forward what they accept, so they record it; a check records only when asked
COMMAND_DEFAULTS: dict[str, dict[str, Any]] = {
    "check": {"record": False},
    "watch": {"record": True},
    "serve": {"record": True},
    "batch": {"record": False},
    "split": {"record": False},  # say --record when the accepted batch is being sent
}


def scrub_options(command: str = "check", *, config: Mapping[str, Mapping[str, Any]] | None
                  = None, resources: Resources | None = None, **given: Any) -> ScrubOptions:
    """The options of a ``command`` (check, watch, serve, batch), as every front end builds them.

    ``given``: what the caller said, by the long option's name with underscores
    (``profile``, ``companion``, ``ig``, ``ledger``, ``no_ledger``, ``record``,
    ``fail_on``, ``select``, ``ignore``, ``ack_sender``, ``ack_name``, and each
    resource option such as ``ncci_ptp``); a value of None is not given.
    ``config``: scrub.toml as ``read_config`` gives it (default: the one found).
    ``resources``: outside data already loaded, laid over what the options name.
    Raises OptionsError for a setting that cannot be used.
    """
    if command not in COMMAND_DEFAULTS:
        raise OptionsError(f"no front end {command!r} (known: {', '.join(COMMAND_DEFAULTS)})")
    config = read_config() if config is None else config
    given = {key.replace("_", "-"): value for key, value in given.items() if value is not None}
    unknown = sorted(set(given) - set(verdict_keys()))
    if unknown:
        raise OptionsError(f"{unknown[0]} is not a scrub setting")
    layers = [given, dict(config.get(command, {})), dict(config.get(SHARED, {})),
              COMMAND_DEFAULTS[command]]

    def setting(key: str, default: Any = None) -> Any:
        for layer in layers:
            if key in layer and layer[key] is not None:
                return layer[key]
        return default

    ledger = _ledger(layers)
    record = bool(setting("record", False))
    if record and ledger is None:
        if "record" in given:
            raise OptionsError("recording needs a ledger: drop --no-ledger")
        record = False  # the intake's default: with no ledger there is nothing to record in
    fail_on = str(setting("fail-on", "reject"))
    if fail_on not in FAIL_ON:
        raise OptionsError(f"fail-on = {fail_on!r}: give one of {', '.join(FAIL_ON)}")
    store = data_store(config)
    loaded = _resources({o.name: _paths(setting(o.name)) for kind in resource_kinds()
                         for o in kind.options}, store)
    return ScrubOptions(
        profile=_profile(setting("profile")), companion=_companion(setting("companion")),
        conformance=bool(setting("ig", True)),
        resources=loaded.merged(resources) if resources else loaded,
        ledger=ledger, record=record, fail_on=fail_on,
        ack=AckIdentity(sender_id=str(setting("ack-sender", "SCRUBBER")),
                        name=str(setting("ack-name", "SCRUBBER"))),
        select=rule_patterns(setting("select", ())), ignore=rule_patterns(setting("ignore", ())),
        data=store)


def default_data_store() -> str:
    """The user's data folder, where ``scrub data add`` installs by default."""
    from scrubber.paths import data_dir

    return str(data_dir())


def data_store(config: Mapping[str, Mapping[str, Any]]) -> str:
    """The installed data's store: ``[data] store`` in scrub.toml, else the user's folder."""
    store = (config.get("data") or {}).get("store")
    return os.fspath(store) if store else default_data_store()


def _ledger(layers: Sequence[Mapping[str, Any]]) -> str | None:
    """--ledger, else the per-user default; None with --no-ledger.

    The nearer layer wins: ``ledger = ...`` in scrub.toml and ``--no-ledger`` on
    the command line (or the other way round) is not a conflict; both in one layer is.
    """
    for layer in layers:
        target, off = layer.get("ledger"), layer.get("no-ledger")
        if target and off:
            raise OptionsError("--ledger and --no-ledger exclude each other")
        if off:
            return None
        if target:
            return str(target)
    from scrubber.ledger import default_ledger_path

    return str(default_ledger_path())


def _paths(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, (str, os.PathLike)):
        return (os.fspath(value),)
    return tuple(os.fspath(v) for v in value)


def rule_patterns(value: Any) -> tuple[str, ...]:
    """--select/--ignore values, each repeated or comma-separated, checked against the rules."""
    from scrubber.rules.registry import all_rules, selected

    values = (value,) if isinstance(value, str) else tuple(value or ())
    patterns = tuple(p.strip() for v in values for p in str(v).split(",") if p.strip())
    try:
        selected(all_rules(), patterns)
    except ValueError as exc:
        raise OptionsError(str(exc)) from None
    return patterns


def _profile(value: Any) -> Profile:
    if isinstance(value, Profile):
        return value
    try:
        return load_profile(None if value is None else os.fspath(value))
    except ProfileError as exc:
        raise OptionsError(str(exc)) from None


def _companion(name: Any) -> str | None:
    """Refuse an unknown companion guide up front, naming the ones there are."""
    from scrubber.ig import OverrideError, load_companions

    if name is None:
        return None
    try:
        known = load_companions()
    except OverrideError as exc:
        raise OptionsError(str(exc)) from None
    if name not in known:
        raise OptionsError(f"--companion {name!r}: no such companion guide in "
                           f"x12_maps/ig-overrides.xml (known: {', '.join(sorted(known))})")
    return str(name)


def _resources(values: Mapping[str, tuple[str, ...]], store: str) -> Resources:
    """The kinds of data the options name, their files added to the installed ones of
    their option (a flag adds, for the run: docs/data.md). The other installed kinds are
    opened now too, so that a file or a data store that cannot be used is refused before
    any input is read; the scrub core takes them from the store (``ScrubOptions.data``)."""
    from scrubber.data import installed_files, installed_resources

    try:
        flagged = (load_resources(values, installed=installed_files(store))
                   if any(values.values()) else Resources())
        installed_resources(store, flagged)
    except ResourceError as exc:
        raise OptionsError(str(exc)) from None
    return flagged
