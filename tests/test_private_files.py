"""Caches, state and spools are the user's alone (issue 24, items 1 and 6).

A cache is never code and never another user's: a compiled-map cache or an
index planted by someone else is ignored and rebuilt; every folder and file
the scrubber keeps is owner-only whatever the umask; a `--jobs` run's private
folder goes with the run, and one a killed run left is swept by the next.
"""

from __future__ import annotations

import os
import pickle
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import scrubber.parallel as parallel
from scrubber.core import Scrubber, ScrubOptions
from scrubber.emit.sinks import Sink
from scrubber.ig import compile as ig_compile
from scrubber.paths import UnsafeFolder, is_trusted, open_trusted, private_dir

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from gen837 import generate  # noqa: E402

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
NOBODY = 65534
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user "
                                                          "needs root")


class _Runs:
    """Unpickling this runs a command: the attack issue 24 found in the old pickle cache."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, (f"touch {self.marker}",))


def _fresh_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(ig_compile, "_LOADED", {})
    return tmp_path / "cache" / "scrubber"


def _planted_guides(stamp: str) -> bytes:
    """A well-formed cache file whose guides are visibly not the real ones."""
    from dataclasses import replace

    real = ig_compile.compile_guides(stamp)
    planted = {name: replace(guide, name="PLANTED") for name, guide in real.guides.items()}
    return ig_compile.guides_to_json(replace(real, guides=planted))


def _plant(path: Path, data: bytes, uid: int = NOBODY, mode: int = 0o644) -> None:
    path.write_bytes(data)
    os.chown(path, uid, -1)
    os.chmod(path, mode)


def _names(guides: ig_compile.GuideSet) -> set[str]:
    return {guide.name for guide in guides.guides.values()}


def test_the_cache_is_json_that_reads_back_to_the_same_guides(monkeypatch, tmp_path):
    folder = _fresh_cache(monkeypatch, tmp_path)
    guides = ig_compile.load_guides()
    (cached,) = folder.glob("ig-*")
    assert cached.suffix == ".json" and cached.read_bytes().startswith(b"{")
    assert ig_compile.guides_from_json(cached.read_bytes()) == guides
    monkeypatch.setattr(ig_compile, "_LOADED", {})
    assert ig_compile.load_guides() == guides
    assert "PLANTED" not in _names(guides)


@needs_root
def test_a_cache_file_of_another_user_is_never_loaded(monkeypatch, tmp_path, caplog):
    folder = _fresh_cache(monkeypatch, tmp_path)
    stamp = ig_compile.fingerprint()
    private_dir(folder)
    marker = tmp_path / "ran"
    # the old name and format: a pickle that would run a command if anything loaded it
    _plant(folder / f"ig-{stamp}.pickle", pickle.dumps(_Runs(marker)))
    cached = folder / f"ig-{stamp}.json"
    _plant(cached, _planted_guides(stamp))
    guides = ig_compile.load_guides()
    assert "PLANTED" not in _names(guides)
    assert not marker.exists()
    assert "ignoring the cache file" in caplog.text
    assert cached.stat().st_uid == os.geteuid()  # rebuilt over, now the user's own
    assert ig_compile.guides_from_json(cached.read_bytes()) == guides


def test_a_cache_file_others_can_write_is_never_loaded(monkeypatch, tmp_path):
    folder = _fresh_cache(monkeypatch, tmp_path)
    stamp = ig_compile.fingerprint()
    private_dir(folder)
    cached = folder / f"ig-{stamp}.json"
    _plant(cached, _planted_guides(stamp), uid=os.geteuid(), mode=0o666)
    assert "PLANTED" not in _names(ig_compile.load_guides())
    assert stat.S_IMODE(cached.stat().st_mode) == 0o600


def test_the_same_file_owner_only_is_loaded(monkeypatch, tmp_path):
    """The control for the two tests above: what keeps the planted file out is its owner
    and mode, nothing else."""
    folder = _fresh_cache(monkeypatch, tmp_path)
    stamp = ig_compile.fingerprint()
    private_dir(folder)
    _plant(folder / f"ig-{stamp}.json", _planted_guides(stamp), uid=os.geteuid(), mode=0o600)
    assert _names(ig_compile.load_guides()) == {"PLANTED"}


def test_a_planted_fifo_or_link_neither_hangs_nor_redirects(monkeypatch, tmp_path):
    folder = _fresh_cache(monkeypatch, tmp_path)
    stamp = ig_compile.fingerprint()
    private_dir(folder)
    cached = folder / f"ig-{stamp}.json"
    os.mkfifo(cached, 0o600)
    loaded: list = []
    reader = threading.Thread(target=lambda: loaded.append(ig_compile.load_guides()),
                              daemon=True)
    reader.start()
    reader.join(120)
    if reader.is_alive():  # free the reader before failing
        with open(os.open(cached, os.O_WRONLY | os.O_NONBLOCK), "wb"):
            pass
        pytest.fail("reading the cache waited on a FIFO planted under its name")
    assert "PLANTED" not in _names(loaded[0])
    assert stat.S_ISREG(cached.lstat().st_mode)  # compiled over

    monkeypatch.setattr(ig_compile, "_LOADED", {})
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_bytes(_planted_guides(stamp))
    os.chmod(elsewhere, 0o600)
    cached.unlink()
    cached.symlink_to(elsewhere)
    assert open_trusted(cached) is None
    assert "PLANTED" not in _names(ig_compile.load_guides())
    assert not cached.is_symlink()


@needs_root
def test_a_cache_folder_of_another_user_is_not_used(monkeypatch, tmp_path, caplog):
    folder = _fresh_cache(monkeypatch, tmp_path)
    folder.mkdir(parents=True)
    stamp = ig_compile.fingerprint()
    _plant(folder / f"ig-{stamp}.json", _planted_guides(stamp), uid=os.geteuid(), mode=0o600)
    os.chown(folder, NOBODY, -1)
    with pytest.raises(UnsafeFolder):
        private_dir(folder)
    assert "PLANTED" not in _names(ig_compile.load_guides())
    assert "not caching the compiled maps" in caplog.text


@needs_root
def test_an_index_of_another_user_is_rebuilt(tmp_path):
    from scrubber.codesets import load_codesets

    folder = tmp_path / "indexes"
    first = load_codesets(cache_dir=folder)
    assert first.built
    first.close()
    os.chown(first.path, NOBODY, -1)
    assert not is_trusted(first.path)
    again = load_codesets(cache_dir=folder)
    try:
        assert again.built and again.path == first.path
        assert again.path.stat().st_uid == os.geteuid()
    finally:
        again.close()
    third = load_codesets(cache_dir=folder)  # the user's own index is opened, not rebuilt
    third.close()
    assert not third.built


def test_an_index_others_can_write_is_rebuilt(tmp_path):
    from scrubber.codesets import load_codesets

    folder = tmp_path / "indexes"
    first = load_codesets(cache_dir=folder)
    first.close()
    os.chmod(first.path, 0o666)
    again = load_codesets(cache_dir=folder)
    again.close()
    assert again.built and stat.S_IMODE(again.path.stat().st_mode) == 0o600


def test_a_fifo_or_link_planted_as_an_index_is_built_over(tmp_path):
    from scrubber.codesets import load_codesets

    folder = tmp_path / "indexes"
    first = load_codesets(cache_dir=folder)
    first.close()
    real = first.path.read_bytes()
    first.path.unlink()
    os.mkfifo(first.path, 0o600)  # opening it to read would wait for a writer forever
    again = load_codesets(cache_dir=folder)
    again.close()
    assert again.built and stat.S_ISREG(again.path.lstat().st_mode)
    elsewhere = tmp_path / "elsewhere.sqlite"
    elsewhere.write_bytes(real)
    os.chmod(elsewhere, 0o600)
    again.path.unlink()
    again.path.symlink_to(elsewhere)
    third = load_codesets(cache_dir=folder)
    third.close()
    assert third.built and not third.path.is_symlink()


# -- modes whatever the umask -------------------------------------------------------------

def _modes(root: Path) -> dict[str, int]:
    found = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder, name)
            found[str(path.relative_to(root))] = stat.S_IMODE(path.lstat().st_mode)
    return found


def test_everything_kept_is_owner_only_under_umask_000(tmp_path):
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "XDG_STATE_HOME": str(tmp_path / "state"), "TMPDIR": str(tmp_path / "tmp")}
    (tmp_path / "tmp").mkdir()
    for args in (["--jobs", "2"], ["--277ca", str(tmp_path / "acks"), "--format", "json",
                                   "--output", str(tmp_path / "report.json")]):
        done = subprocess.run(
            [sys.executable, "-m", "scrubber", "check", str(FIXTURES / "837p-multi.x12"),
             *args], env=env, capture_output=True, preexec_fn=lambda: os.umask(0))
        assert done.returncode in (0, 1), done.stderr.decode()
    kept = {f"cache/{k}": v for k, v in _modes(tmp_path / "cache").items()} | \
        {f"state/{k}": v for k, v in _modes(tmp_path / "state").items()}
    assert any(name.endswith(".json") for name in kept)  # the compiled maps
    assert any(name.endswith(".sqlite") for name in kept if name.startswith("cache/"))
    assert "state/scrubber/ledger.sqlite" in kept and "state/scrubber/ledger.sqlite.key" in kept
    for name, mode in kept.items():
        folder = (tmp_path / name).is_dir()
        assert mode == (0o700 if folder else 0o600), f"{name}: {oct(mode)}"
    for name, mode in {"cache": 0o700, "state": 0o700, "report.json": 0o600}.items():
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, name
    assert _modes(tmp_path / "acks") and all(
        mode == 0o600 for mode in _modes(tmp_path / "acks").values())
    assert not list((tmp_path / "tmp").iterdir())  # the --jobs spool went with its run


def test_the_watchers_folders_and_files_are_owner_only_under_umask_000(tmp_path):
    root = tmp_path / "root"
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "XDG_STATE_HOME": str(tmp_path / "state")}
    (root / "inbox").mkdir(parents=True, mode=0o700)
    (root / "inbox" / "a.x12").write_bytes((FIXTURES / "837p-multi.x12").read_bytes())
    done = subprocess.run(
        [sys.executable, "-m", "scrubber", "watch", str(root), "--once", "--settle", "0.2",
         "--poll", "--workers", "1"], env=env, capture_output=True,
        preexec_fn=lambda: os.umask(0))
    assert done.returncode == 0, done.stderr.decode()
    made = {name: mode for name, mode in _modes(root).items()
            if not name.startswith(("inbox", "accepted/"))}  # the input is the sender's
    assert "work/journal.jsonl" in made and any(n.startswith("reports/") for n in made)
    for name, mode in made.items():
        assert mode == (0o700 if (root / name).is_dir() else 0o600), f"{name}: {oct(mode)}"


def test_a_jobs_spool_is_owner_only_under_umask_000(tmp_path, monkeypatch):
    """Seen while the run reports: the spool folder 0700, its index, lock and findings
    0600."""
    import tempfile

    path = tmp_path / "batch.x12"
    generate(str(path), 200, "P", seed=3, claims_per_transaction=50)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    seen: dict[str, int] = {}

    class Looks(Sink):
        def event(self, event: object) -> None:
            if not seen:
                seen.update(_modes(tmp_path / "tmp"))

    monkeypatch.setattr(parallel.threading, "active_count", lambda: 1)
    old = os.umask(0)
    try:
        with Scrubber(ScrubOptions()) as scrubber:
            scrubber.run([(str(path), "batch")], [Looks()], jobs=2)
    finally:
        os.umask(old)
    folders = [name for name in seen if "/" not in name]
    assert len(folders) == 1 and folders[0].startswith("scrub-jobs-")
    assert {name.split("/")[1] for name in seen if "/" in name} >= {
        "lock", "index.db", "findings-0.bin", "findings-1.bin"}
    for name, mode in seen.items():
        assert mode == (0o700 if "/" not in name else 0o600), f"{name}: {oct(mode)}"
    assert not list((tmp_path / "tmp").iterdir())


def test_the_data_folder_is_the_users_alone_under_umask_000(tmp_path, monkeypatch):
    """`scrub data add`'s folder: the user's own is 0700, a site's named folder is made
    writable by its owner only (others could swap the tables every run trusts)."""
    from scrubber.data.store import open_data_store

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    old = os.umask(0)
    try:
        for store in (open_data_store(None), open_data_store(str(tmp_path / "site" / "store"))):
            with store._locked():
                pass
    finally:
        os.umask(old)
    own = _modes(tmp_path / "data")
    assert own == {"scrubber": 0o700, "scrubber/.lock": 0o600}
    site = _modes(tmp_path / "site")
    assert site["store/.lock"] == 0o600
    assert all(not mode & 0o022 for mode in site.values()), site


# -- spools of dead runs ------------------------------------------------------------------

def test_only_spools_nobody_holds_are_swept(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    live, fd = parallel.make_spool()
    dead, dead_fd = parallel.make_spool()
    os.close(dead_fd)  # its run died: the kernel let go of its lock
    starting = tmp_path / "scrub-jobs-starting"
    starting.mkdir()  # no lock file yet, and new: a run between mkdtemp and its lock
    old = tmp_path / "scrub-jobs-old"
    old.mkdir()
    os.utime(old, (time.time() - 3600,) * 2)  # a folder of a scrubber without locks
    other = tmp_path / "unrelated"
    other.mkdir()
    try:
        assert parallel.sweep_spools() == 2
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
            [Path(live).name, "scrub-jobs-starting", "unrelated"])
    finally:
        os.close(fd)


def _jobs_run_under_way(tmp_path: Path) -> tuple[subprocess.Popen, Path, dict]:
    """A `scrub check --jobs 2` of a big file whose workers are indexing: the process,
    its spool folder's parent ($TMPDIR) and its environment."""
    path = tmp_path / "big.x12"
    generate(str(path), 20000, "P", seed=5, claims_per_transaction=2000)
    spools = tmp_path / "tmp"
    spools.mkdir()
    env = {**os.environ, "TMPDIR": str(spools)}
    child = subprocess.Popen(
        [sys.executable, "-m", "scrubber", "check", str(path), "--jobs", "2", "--no-ledger",
         "--format", "json"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + 120
    while not list(spools.glob("scrub-jobs-*/index-*.db")):  # the workers are at it
        assert child.poll() is None, child.stderr.read().decode() if child.stderr else ""
        assert time.monotonic() < deadline, "the workers never started"
        time.sleep(0.05)
    return child, spools, env


@pytest.mark.slow
def test_a_new_run_sweeps_the_spool_of_a_run_killed_with_sigkill(tmp_path):
    child, spools, env = _jobs_run_under_way(tmp_path)
    workers = [int(p) for p in subprocess.run(
        ["pgrep", "-P", str(child.pid)], capture_output=True, text=True).stdout.split()]
    os.kill(child.pid, signal.SIGKILL)  # the parent alone, as the OOM killer would
    child.wait()
    assert list(spools.glob("scrub-jobs-*"))  # left behind: nobody could remove it
    for pid in workers:  # they die with their parent, letting go of the spool's lock
        for _ in range(200):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            pytest.fail(f"worker {pid} outlived its killed parent")
    done = subprocess.run(
        [sys.executable, "-m", "scrubber", "check", str(FIXTURES / "837p-multi.x12"),
         "--jobs", "2", "--no-ledger"], env=env, capture_output=True)
    assert done.returncode in (0, 1), done.stderr.decode()
    assert not list(spools.iterdir())


@pytest.mark.slow
def test_sigterm_during_jobs_leaves_no_spool(tmp_path):
    child, spools, _ = _jobs_run_under_way(tmp_path)
    child.terminate()
    _, err = child.communicate(timeout=60)
    assert child.returncode != 0 and b"Traceback" not in err, err.decode()
    assert not list(spools.iterdir())
