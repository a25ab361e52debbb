"""The settings ``scrub serve``'s workers start from are data, and only the user's own (issue 24,
item 1: a file is never code).

The workers read them from a path in the environment: a pickle there ran code as
whoever started the service. Now they are JSON turned back into the dataclasses
field by field, read only when the file is a plain file of this user that nobody
else can write (``paths.open_private``); anything else is refused with a line
that names the path and why, and the worker does not start.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from servekit import FIXTURES, TOKENS, served, settings

from scrubber.options import AckIdentity, ScrubOptions, scrub_options
from scrubber.rules import load_profile
from scrubber.serve.auth import Clients
from scrubber.serve.server import LISTEN_FD_ENV, PARENT_ENV, STARTUP_FAILURE
from scrubber.serve.settings import (
    SETTINGS_ENV,
    ClientLimits,
    ServeSettings,
    SettingsError,
    settings_to_json,
)

NOBODY = 65534
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user "
                                                          "needs root")
PROFILE = """<profile name="payer-x">
  <rules>
    <rule id="96523-device" enabled="false"/>
    <rule id="96523-units" kind="837I" severity="info"/>
  </rules>
  <lists><list name="drug-admin-codes"><term>J1100</term><range from="96360" to="96379"/>
  </list></lists>
</profile>"""
HCPCS = FIXTURES / "codesets" / "HCPC2025_JAN_ANWEB_SYNTHETIC.txt"


class _Runs:
    """Unpickling this runs a command: what a planted pickle of settings could do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, (f"touch {self.marker}",))


def _plant(path: Path, data: bytes, uid: int = NOBODY, mode: int = 0o644) -> None:
    path.write_bytes(data)
    os.chown(path, uid, -1)
    os.chmod(path, mode)


def _everything_set(tmp_path: Path) -> ServeSettings:
    """Settings with every field away from its default, a payer profile and a resource
    loaded from a file included."""
    profile = tmp_path / "payer.xml"
    profile.write_text(PROFILE)
    options = scrub_options("serve", config={}, profile=str(profile), hcpcs=[str(HCPCS)],
                            ledger=str(tmp_path / "ledger.sqlite"), companion=None,
                            fail_on="warn", select=["96523-", "snip-"], ignore=["96523-units"],
                            ack_sender="CLEARHOUSE1", ack_name="ACME CLEARING")
    options = dataclasses.replace(options, conformance=False,
                                  ack=dataclasses.replace(options.ack, sender_qualifier="30"))
    return dataclasses.replace(
        settings(tmp_path, store=str(tmp_path / "store.sqlite"), max_body=12345), options=options,
        retention_days=7, idempotency_wait=9.5, lease=12.0, host="::1", port=9001,
        workers=3, limits=ClientLimits(max_connections=77, header_timeout=3.5, body_timeout=4.5,
                                       body_min_rate=99, send_timeout=5.5, head_limit=4096))


def test_the_settings_file_is_owner_only_json_that_reads_back_the_same(tmp_path):
    given = _everything_set(tmp_path)
    path = given.save()
    assert path.read_bytes().startswith(b"{")
    assert oct(path.stat().st_mode & 0o777) == oct(0o600)
    loaded = ServeSettings.load(path)
    assert dataclasses.replace(loaded, options=dataclasses.replace(
        loaded.options, resources=given.options.resources)) == given
    # the resource is loaded again from the same files, to the same thing
    codesets = loaded.options.resources.get("codesets")
    assert type(codesets) is type(given.options.resources.get("codesets"))
    assert loaded.options.resources.files("codesets") == \
        given.options.resources.files("codesets")
    assert str(HCPCS) in loaded.options.resources.files("codesets")["hcpcs"]
    assert loaded.options.profile == given.options.profile != load_profile()


def test_every_field_is_in_the_file():
    """A field added to the settings must be written (and so read back) too."""
    doc = settings_to_json(ServeSettings(data_dir=Path("/x"), clients=settings(
        Path("/x")).clients))
    assert set(doc) - {"format"} == {f.name for f in dataclasses.fields(ServeSettings)}
    assert set(doc["limits"]) == {f.name for f in dataclasses.fields(ClientLimits)}
    assert set(doc["options"]) == {f.name for f in dataclasses.fields(ScrubOptions)}
    assert set(doc["options"]["ack"]) == {f.name for f in dataclasses.fields(AckIdentity)}


def test_a_resource_given_loaded_cannot_be_written(tmp_path):
    from scrubber.rules.resources import Resources

    given = dataclasses.replace(settings(tmp_path), options=ScrubOptions(
        resources=Resources.of(ncci=object())))
    with pytest.raises(SettingsError, match="ncci resource was given loaded"):
        given.save()


def test_a_pickle_at_the_path_never_runs(tmp_path):
    given = settings(tmp_path)
    path = given.save()
    marker = tmp_path / "ran"
    path.write_bytes(pickle.dumps(_Runs(marker)))  # the user's own file, owner-only
    with pytest.raises(SettingsError, match="is not a serve settings file"):
        ServeSettings.load(path)
    assert not marker.exists()


@needs_root
def test_a_settings_file_of_another_user_is_refused(tmp_path):
    path = settings(tmp_path).save()
    marker = tmp_path / "ran"
    _plant(path, pickle.dumps(_Runs(marker)))
    with pytest.raises(SettingsError) as info:
        ServeSettings.load(path)
    assert str(path) in str(info.value) and f"owned by uid {NOBODY}" in str(info.value)
    assert not marker.exists()


def test_a_settings_file_others_can_write_is_refused(tmp_path):
    path = settings(tmp_path).save()
    os.chmod(path, 0o666)
    with pytest.raises(SettingsError, match="writable by others"):
        ServeSettings.load(path)
    os.chmod(path, 0o600)  # the control: the same file, owner-only, is read
    assert ServeSettings.load(path).clients == settings(tmp_path).clients


def test_a_link_or_a_folder_others_can_write_is_refused(tmp_path):
    path = settings(tmp_path).save()
    link = tmp_path / "link.json"
    link.symlink_to(path)
    with pytest.raises(SettingsError, match="symbolic link"):
        ServeSettings.load(link)
    open_folder = tmp_path / "open"
    open_folder.mkdir()
    os.chmod(open_folder, 0o777)
    moved = open_folder / "settings.json"
    os.rename(path, moved)
    with pytest.raises(SettingsError, match="folder"):
        ServeSettings.load(moved)


def _worker(path: Path) -> subprocess.CompletedProcess:
    """A worker process of ``scrub serve --workers N`` started on the settings at ``path``."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        env = {**os.environ, SETTINGS_ENV: str(path), LISTEN_FD_ENV: str(listener.fileno()),
               PARENT_ENV: str(os.getpid())}
        return subprocess.run(
            [sys.executable, "-c", "from scrubber.serve.server import worker_main; "
             "worker_main()"], env=env, pass_fds=(listener.fileno(),), capture_output=True,
            text=True, timeout=300)


@needs_root
def test_a_worker_refuses_planted_settings_and_does_not_start(tmp_path):
    path = settings(tmp_path).save()
    marker = tmp_path / "ran"
    _plant(path, pickle.dumps(_Runs(marker)))
    done = _worker(path)
    assert done.returncode == STARTUP_FAILURE
    assert "cannot start: refusing the serve settings" in done.stderr
    assert f"owned by uid {NOBODY}" in done.stderr and "Traceback" not in done.stderr
    assert not marker.exists()


def test_a_worker_refuses_settings_others_can_write(tmp_path):
    path = settings(tmp_path).save()
    os.chmod(path, 0o666)
    done = _worker(path)
    assert done.returncode == STARTUP_FAILURE
    assert "writable by others" in done.stderr and "Traceback" not in done.stderr


@needs_root
def test_the_service_writes_its_own_settings_over_a_planted_file(tmp_path):
    """A file planted under the settings' name (another client's token, owned by
    nobody) is replaced by the service's own, never read: the planted token is refused
    by every worker."""
    data = tmp_path / "serve"
    data.mkdir(mode=0o700)
    planted = dataclasses.replace(settings(tmp_path, data_dir=data),
                                  clients=Clients((("mallory", "mallory-token-0123456789"),)))
    path = planted.save()
    os.chown(path, NOBODY, -1)
    with served(tmp_path, "--workers", "2", "--no-ledger") as server:
        assert path.stat().st_uid == os.geteuid()
        assert oct(path.stat().st_mode & 0o777) == oct(0o600)
        for _ in range(4):
            mallory = httpx.get(f"{server.base}/v1/submissions", timeout=30,
                                headers={"Authorization": "Bearer mallory-token-0123456789"})
            assert mallory.status_code == 401
        acme = httpx.get(f"{server.base}/v1/submissions", timeout=30,
                         headers={"Authorization": f"Bearer {TOKENS['acme']}"})
        assert acme.status_code == 200
