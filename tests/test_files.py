"""Files we write are created afresh, owner-only, and never through a planted link."""

from __future__ import annotations

import os
import stat

import pytest
from click.testing import CliRunner
from x12text import claim_837p, interchange

from scrubber.api import open_private as reexported
from scrubber.cli import main
from scrubber.files import open_private, write_private


def test_open_private_replaces_a_planted_link_and_leaves_its_target(tmp_path):
    target = tmp_path / "precious.txt"
    target.write_text("keep me\n")
    link = tmp_path / "report.json"
    link.symlink_to(target)
    with open_private(link) as out:
        out.write("{}\n")
    assert target.read_text() == "keep me\n"
    assert not link.is_symlink() and link.read_text() == "{}\n"
    assert stat.S_IMODE(os.lstat(link).st_mode) == 0o600


def test_an_existing_file_is_replaced_owner_only(tmp_path):
    path = tmp_path / "old.x12"
    path.write_text("old and longer\n")
    path.chmod(0o644)
    write_private(path, b"new\n")
    assert path.read_bytes() == b"new\n" and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert reexported is open_private


def test_a_folder_in_the_way_is_an_error_not_a_write(tmp_path):
    (tmp_path / "x.json").mkdir()
    with pytest.raises(OSError):
        open_private(tmp_path / "x.json")
    with pytest.raises(ValueError):
        open_private(tmp_path / "y.json", "a")


def test_a_link_planted_in_the_277ca_folder_is_not_followed(tmp_path):
    batch = tmp_path / "batch.x12"
    batch.write_text(interchange(claim_837p("LINK1")))
    acks = tmp_path / "acks"
    acks.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("not yours\n")
    (acks / "batch.x12.277ca.x12").symlink_to(victim)
    result = CliRunner().invoke(main, ["check", str(batch), "--277ca", str(acks), "--no-ledger"])
    assert result.exit_code == 0, result.output
    assert victim.read_text() == "not yours\n"
    written = acks / "batch.x12.277ca.x12"
    assert not written.is_symlink() and written.read_bytes().startswith(b"ISA*")
