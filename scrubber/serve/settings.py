"""What ``scrub serve`` is configured with, in one frozen object every worker receives.

Worker processes read it from a JSON file in the data folder (never a pickle: a
file at a path the environment names must not be able to run code), and only
when that file is the user's own and nobody else can write it.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scrubber.options import AckIdentity, ScrubOptions
from scrubber.paths import UntrustedFile, open_private, private_dir
from scrubber.rules.findings import Severity
from scrubber.rules.profile import CodeList, Profile, RuleSetting
from scrubber.rules.resources import ResourceError, Resources, resource_kinds
from scrubber.serve.auth import Clients

#: the environment variable naming the settings file (JSON) a worker process starts from
SETTINGS_ENV = "SCRUBBER_SERVE_SETTINGS"


@dataclass(frozen=True, slots=True)
class ClientLimits:
    """How long and how many: what keeps slow or half-open clients from starving the others.

    Enforced below the application, per worker process (``serve.guard``):
    a request head must arrive whole within ``header_timeout`` of the
    connection (or of the previous answer on it); a body must keep up
    ``body_min_rate`` bytes a second after a ``body_timeout`` allowance
    (time the service itself does not read is not counted); an answer the
    client does not read for ``send_timeout`` is dropped. At
    ``max_connections`` the connection that has waited longest without a
    request head is closed for the new one; when every connection is busy
    with a request, the new one is answered 503.
    """

    max_connections: int = 1000  # per worker; lowered to fit its file-descriptor limit
    header_timeout: float = 10.0  # seconds
    body_timeout: float = 20.0  # seconds of allowance before body_min_rate counts
    body_min_rate: int = 1024  # bytes a second
    send_timeout: float = 60.0  # seconds an answer may sit unread
    head_limit: int = 16 * 1024  # bytes: a larger request head is answered 431


@dataclass(frozen=True, slots=True)
class ServeSettings:
    """The service's settings; ``options`` decide verdicts exactly as ``scrub check`` would.

    ``data_dir`` holds the spool of request bodies and every submission's
    reports and acknowledgements (all owner-only: they carry PHI).
    ``store`` is where submissions and idempotency keys are kept: a SQLite
    path or a ``postgresql://`` URL shared by every worker; None keeps it in
    ``data_dir``.
    """

    data_dir: Path
    clients: Clients
    options: ScrubOptions = field(default_factory=ScrubOptions)
    store: str | None = None
    max_body: int = 64 * 1024 * 1024  # bytes; a larger body is answered with 413
    retention_days: int = 30  # a submission's reports are removed after this; 0 keeps them
    idempotency_wait: float = 120.0  # seconds a retry waits for the first request's answer
    lease: float = 30.0  # seconds a claimed key holds unless its worker renews it
    limits: ClientLimits = field(default_factory=ClientLimits)
    host: str = "127.0.0.1"
    port: int = 8837
    workers: int = 1

    @property
    def store_target(self) -> str:
        return self.store or str(self.data_dir / "submissions.sqlite")

    @property
    def spool_dir(self) -> Path:
        return self.data_dir / "spool"

    @property
    def submissions_dir(self) -> Path:
        return self.data_dir / "submissions"

    def prepare(self) -> None:
        """Create the data folders, owner-only."""
        for folder in (self.data_dir, self.spool_dir, self.submissions_dir):
            private_dir(folder)

    def save(self) -> Path:
        """Write these settings owner-only for worker processes to load (they hold tokens).

        Written as JSON under a temporary name and renamed, so the file is always the
        user's own and whole, whatever was at its name before.
        """
        self.prepare()
        path = self.data_dir / SETTINGS_NAME
        data = json.dumps(settings_to_json(self), separators=(",", ":")).encode()
        fd, temp = tempfile.mkstemp(prefix=".serve-settings-", dir=self.data_dir)
        try:
            with os.fdopen(fd, "wb") as out:  # mkstemp: 0600
                out.write(data)
            os.replace(temp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
        with contextlib.suppress(FileNotFoundError):  # the pickle of earlier versions
            os.unlink(self.data_dir / "serve-settings.pickle")
        return path

    @staticmethod
    def load(path: str | os.PathLike) -> ServeSettings:
        """The settings ``save`` wrote at ``path``.

        Read only when the file is a plain file of this user that nobody else can
        write, in a folder nobody else can write (``paths.open_private``): the path
        comes from the environment, and the settings decide which tokens are let
        in. Raises SettingsError naming the path and what is wrong.
        """
        try:
            fd = open_private(path)
        except UntrustedFile as exc:
            raise SettingsError(f"refusing the serve settings {path}: {exc.strerror}; they "
                                "must be a file of this user that only it can write") from None
        except OSError as exc:
            raise SettingsError(f"cannot read the serve settings {path}: "
                                f"{exc.strerror or exc}") from None
        with os.fdopen(fd, "rb") as handle:
            data = handle.read(MAX_SETTINGS + 1)
        if len(data) > MAX_SETTINGS:
            raise SettingsError(f"{path}: larger than serve settings can be")
        try:
            return settings_from_json(json.loads(data))
        except SettingsError as exc:
            raise SettingsError(f"{path} does not hold usable serve settings: {exc}") from None
        except KeyError as exc:
            raise SettingsError(f"{path} does not hold serve settings: no {exc.args[0]!r}"
                                ) from None
        except (ValueError, TypeError, AttributeError, RecursionError):
            raise SettingsError(f"{path} is not a serve settings file (JSON)") from None


# -- the settings file: plain JSON data, never code ------------------------------------------
# The file a worker reads names the tokens it lets in; pickle would run whatever such a
# file says. JSON builds only strings, numbers and lists, which these functions turn
# back into the settings field by field.

SETTINGS_NAME = "serve-settings.json"
SETTINGS_FORMAT = 1
MAX_SETTINGS = 64 * 1024 * 1024  # bytes: tokens and a profile's lists are far less


class SettingsError(ValueError):
    """The serve settings file cannot be used; the message names it and says why."""


def _want(value: Any, kind: type | tuple[type, ...], what: str) -> Any:
    if not isinstance(value, kind) or (kind in (int, float) and isinstance(value, bool)):
        raise SettingsError(f"{what} is {type(value).__name__}")
    return value


def _strings(value: Any, what: str) -> tuple[str, ...]:
    return tuple(_want(item, str, what) for item in _want(value, list, what))


def _optional(value: Any, kind: type, what: str) -> Any:
    return None if value is None else _want(value, kind, what)


def _number(value: Any, what: str) -> float:
    return float(_want(value, (int, float), what))


def _profile_to_json(profile: Profile | str | None) -> Any:
    if not isinstance(profile, Profile):
        return profile
    return {"name": profile.name, "path": profile.path,
            "settings": [[s.rule, s.kind, None if s.severity is None else str(s.severity),
                          s.enabled, s.line] for s in profile.settings],
            "lists": [[name, list(codes.terms), [list(r) for r in codes.ranges]]
                      for name, codes in profile.lists]}


def _profile_from_json(doc: Any) -> Profile | str | None:
    if doc is None or isinstance(doc, str):
        return doc
    doc = _want(doc, dict, "profile")
    settings = []
    for row in _want(doc["settings"], list, "profile settings"):
        rule, kind, severity, enabled, line = _want(row, list, "a profile setting")
        settings.append(RuleSetting(
            rule=_want(rule, str, "rule"), kind=_optional(kind, str, "kind"),
            severity=None if severity is None else Severity(_want(severity, str, "severity")),
            enabled=_optional(enabled, bool, "enabled"), line=_want(line, int, "line")))
    lists = []
    for row in _want(doc["lists"], list, "profile lists"):
        name, terms, ranges = _want(row, list, "a profile list")
        pairs = []
        for pair in _want(ranges, list, "ranges"):
            low, high = _strings(pair, "a range")
            pairs.append((low, high))
        lists.append((_want(name, str, "list name"),
                      CodeList(_strings(terms, "terms"), tuple(pairs))))
    return Profile(_want(doc["name"], str, "profile name"), _want(doc["path"], str, "path"),
                   tuple(settings), tuple(lists))


def _resources_to_json(resources: Resources) -> dict[str, dict[str, list[str]]]:
    """Each kind as the files it was loaded from: the worker loads them again."""
    out = {}
    for name, _ in resources.named:
        files = resources.files(name)
        if files is None:
            raise SettingsError(f"the {name} resource was given loaded, not as files: worker "
                                "processes cannot load it (name its files in the options)")
        out[name] = {option: list(paths) for option, paths in files.items()}
    return out


def _resources_from_json(doc: Any) -> Resources:
    kinds = {kind.name: kind for kind in resource_kinds()}
    loaded = Resources()
    for name, files in _want(doc, dict, "resources").items():
        if name not in kinds:
            raise SettingsError(f"no resource kind {name!r}")
        given = {_want(option, str, "option"): _strings(paths, "paths")
                 for option, paths in _want(files, dict, "files").items()}
        try:
            resource = kinds[name].load(given)
        except ResourceError as exc:
            raise SettingsError(str(exc)) from None
        if resource is not None:
            loaded = loaded.merged(Resources(((name, resource),),
                                             ((name, tuple(given.items())),)))
    return loaded


def _options_to_json(options: ScrubOptions) -> dict[str, Any]:
    return {"profile": _profile_to_json(options.profile), "companion": options.companion,
            "conformance": options.conformance,
            "resources": _resources_to_json(options.resources), "ledger": options.ledger,
            "record": options.record,
            "ack": {"sender_id": options.ack.sender_id,
                    "sender_qualifier": options.ack.sender_qualifier, "name": options.ack.name},
            "fail_on": options.fail_on, "select": list(options.select),
            "ignore": list(options.ignore), "data": options.data}


def _options_from_json(doc: Any) -> ScrubOptions:
    doc = _want(doc, dict, "options")
    ack = _want(doc["ack"], dict, "ack")
    return ScrubOptions(
        profile=_profile_from_json(doc["profile"]),
        companion=_optional(doc["companion"], str, "companion"),
        conformance=_want(doc["conformance"], bool, "conformance"),
        resources=_resources_from_json(doc["resources"]),
        ledger=_optional(doc["ledger"], str, "ledger"), record=_want(doc["record"], bool, "record"),
        ack=AckIdentity(sender_id=_want(ack["sender_id"], str, "sender_id"),
                        sender_qualifier=_want(ack["sender_qualifier"], str, "qualifier"),
                        name=_want(ack["name"], str, "ack name")),
        fail_on=_want(doc["fail_on"], str, "fail_on"), select=_strings(doc["select"], "select"),
        ignore=_strings(doc["ignore"], "ignore"), data=_optional(doc["data"], str, "data"))


def settings_to_json(settings: ServeSettings) -> dict[str, Any]:
    """``settings`` as JSON data (``settings_from_json`` reads it back)."""
    limits = settings.limits
    return {"format": SETTINGS_FORMAT, "data_dir": str(settings.data_dir),
            "clients": [list(pair) for pair in settings.clients.tokens],
            "options": _options_to_json(settings.options), "store": settings.store,
            "max_body": settings.max_body, "retention_days": settings.retention_days,
            "idempotency_wait": settings.idempotency_wait, "lease": settings.lease,
            "limits": {"max_connections": limits.max_connections,
                       "header_timeout": limits.header_timeout,
                       "body_timeout": limits.body_timeout,
                       "body_min_rate": limits.body_min_rate,
                       "send_timeout": limits.send_timeout, "head_limit": limits.head_limit},
            "host": settings.host, "port": settings.port, "workers": settings.workers}


def settings_from_json(doc: Any) -> ServeSettings:
    """The settings ``settings_to_json`` gave; SettingsError (or KeyError, ValueError) when
    ``doc`` is not such data."""
    doc = _want(doc, dict, "the file")
    if doc.get("format") != SETTINGS_FORMAT:
        raise SettingsError(f"settings format {doc.get('format')!r}")
    clients = []
    for pair in _want(doc["clients"], list, "clients"):
        client, token = _strings(pair, "a client")
        clients.append((client, token))
    limits = _want(doc["limits"], dict, "limits")
    return ServeSettings(
        data_dir=Path(_want(doc["data_dir"], str, "data_dir")), clients=Clients(tuple(clients)),
        options=_options_from_json(doc["options"]), store=_optional(doc["store"], str, "store"),
        max_body=_want(doc["max_body"], int, "max_body"),
        retention_days=_want(doc["retention_days"], int, "retention_days"),
        idempotency_wait=_number(doc["idempotency_wait"], "idempotency_wait"),
        lease=_number(doc["lease"], "lease"),
        limits=ClientLimits(
            max_connections=_want(limits["max_connections"], int, "max_connections"),
            header_timeout=_number(limits["header_timeout"], "header_timeout"),
            body_timeout=_number(limits["body_timeout"], "body_timeout"),
            body_min_rate=_want(limits["body_min_rate"], int, "body_min_rate"),
            send_timeout=_number(limits["send_timeout"], "send_timeout"),
            head_limit=_want(limits["head_limit"], int, "head_limit")),
        host=_want(doc["host"], str, "host"), port=_want(doc["port"], int, "port"),
        workers=_want(doc["workers"], int, "workers"))
