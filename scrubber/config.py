"""Site settings from a TOML file: the defaults a site sets once.

``scrub.toml`` in the working directory (or ``scrub --config PATH``) holds one
table per command; its keys are the command's long options, so what a file
says and what the command line says never drift apart::

    [check]
    profile = "payers/acme.xml"
    ledger = "/srv/scrubber/ledger.sqlite"   # or: no-ledger = true
    ack-sender = "ACMECH"

    [watch]
    root = "/srv/claims"                    # the folder holding inbox/, work/ ...
    workers = 2
    settle = 5.0

Command-line options always win over the file.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import click

DEFAULT_NAME = "scrub.toml"


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


def load_config(group: click.Group, path: str | None = None) -> dict[str, dict[str, Any]]:
    """Read the TOML file into click's default_map: {command: {parameter name: value}}."""
    if path is None:
        candidate = Path.cwd() / DEFAULT_NAME
        if not candidate.is_file():
            return {}
        path = str(candidate)
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such configuration file") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    defaults: dict[str, dict[str, Any]] = {}
    for command_name, table in data.items():
        command = group.commands.get(command_name)
        if command is None or not isinstance(table, dict):
            known = ", ".join(sorted(group.commands))
            raise ConfigError(f"{path}: [{command_name}] is not a command table ({known})")
        options = _option_types(command)
        for key, value in table.items():
            param = options.get(key)
            if param is None:
                raise ConfigError(f"{path}: [{command_name}] {key} is not an option of "
                                  f"scrub {command_name}")
            try:
                converted = param.type_cast_value(click.Context(command), value)
            except click.BadParameter as exc:
                raise ConfigError(f"{path}: [{command_name}] {key} = {value!r}: "
                                  f"{exc.message}") from None
            if isinstance(param, click.Argument) and param.nargs == -1:
                converted = tuple(converted)
            defaults.setdefault(command_name, {})[param.name] = converted
    return defaults
