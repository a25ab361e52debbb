"""Site settings from a TOML file: the defaults a site sets once.

``scrub.toml`` in the working folder or the nearest folder above it (up to a
repository's top: scrubber.options.find_config), or ``scrub --config PATH``, holds a
``[scrub]`` table of what decides verdicts, for every command and front end
alike (scrubber.options), and one table per command; its keys are the
command's long options, so what a file says and what the command line says
never drift apart::

    [scrub]
    profile = "payers/acme.xml"
    ledger = "/srv/scrubber/ledger.sqlite"   # or: no-ledger = true
    ignore = ["snip-date-in-future"]
    ack-sender = "ACMECH"

    [watch]
    root = "/srv/claims"                    # the folder holding inbox/, work/ ...
    workers = 2
    settle = 5.0

Command-line options always win over the file, a command's table over [scrub].
Files the settings name are relative to the scrub.toml's folder; a misspelt table
or key is refused with the nearest name there is.
"""

from __future__ import annotations

import json
from typing import Any

import click

from scrubber.options import (
    CONFIG_NAME,
    SHARED,
    OptionsError,
    did_you_mean,
    find_config,
    read_config,
    relative_to,
)


class ConfigError(Exception):
    """The configuration file cannot be used; the message names the file and key."""


def _option_types(command: click.Command) -> dict[str, click.Parameter]:
    options = {}
    for param in command.params:
        for name in getattr(param, "opts", []):
            if name.startswith("--"):
                options[name[2:]] = param
        if isinstance(param, click.Argument):
            options[param.name] = param
    return options


def load_config(group: click.Group, path: str | None = None
                ) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """Read the TOML file: click's default_map ({command: {parameter name: value}}), and
    the file as read, for the options builder (scrubber.options.scrub_options)."""
    try:
        data = read_config(path)
    except OptionsError as exc:
        raise ConfigError(str(exc)) from None
    where = str(path or find_config() or CONFIG_NAME)
    defaults: dict[str, dict[str, Any]] = {}
    for command_name, table in data.items():
        if command_name == SHARED:  # the verdict settings: the options builder reads them
            continue
        command = group.commands.get(command_name)
        if command is None or not isinstance(table, dict):
            known = sorted(group.commands)
            raise ConfigError(f"{where}: [{command_name}] is not a command table"
                              f"{did_you_mean(command_name, [SHARED, *known])} "
                              f"([{SHARED}], {', '.join(known)})")
        options = _option_types(command)
        for key, value in table.items():
            param = options.get(key)
            if param is None:
                raise ConfigError(f"{where}: [{command_name}] {key} is not an option of "
                                  f"scrub {command_name}{did_you_mean(key, list(options))}")
            if getattr(param, "multiple", False) and isinstance(value, str):
                raise ConfigError(f"{where}: [{command_name}] {key} = {value!r}: give a list, "
                                  f"e.g. {key} = [{json.dumps(value)}]")
            if isinstance(param.type, click.Path):
                value = [relative_to(where, v) for v in value] if isinstance(value, list) \
                    else relative_to(where, value)
            try:
                converted = param.type_cast_value(click.Context(command), value)
            except click.BadParameter as exc:
                raise ConfigError(f"{where}: [{command_name}] {key} = {value!r}: "
                                  f"{exc.message}") from None
            if isinstance(param, click.Argument) and param.nargs == -1:
                converted = tuple(converted)
            defaults.setdefault(command_name, {})[param.name] = converted
    return defaults, data
