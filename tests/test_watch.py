"""The drop-folder watcher, with real processes and real files: nothing lost, nothing twice."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from x12text import claim_837p, interchange

from scrubber.ledger import open_store

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
OUTPUTS = ("accepted", "rejected", "failed")


def batch_file(n: int, *, reject: bool = False) -> str:
    lines = [("96523", "60", "2" if reject else "1", "20261102")]
    body = claim_837p(f"W{n:04d}", lines=lines, member=f"MBR{n:06d}",
                      notes=["PORT-A-CATH FLUSHED WITH 10ML NS"])
    return interchange(body, control=f"{n + 1:09d}")


def watch(root: Path, *args: str, **kwargs) -> subprocess.Popen:
    """The watcher on ``root``; its log to a pipe, or to ``stdout=`` when given."""
    kwargs.setdefault("stdout", subprocess.PIPE)
    return subprocess.Popen(
        [sys.executable, "-m", "scrubber", "watch", str(root), "--settle", "0.3", "--poll",
         "--workers", "2", *args],
        stderr=subprocess.STDOUT, text=True, **kwargs)


def run_once(root: Path, *args: str, status: int = 0) -> str:
    """``scrub watch ROOT --once``'s output; its exit status must be ``status``."""
    proc = watch(root, "--once", *args)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == status, out
    return out


def placed(root: Path) -> dict[str, list[str]]:
    """Where every input ended up: name -> output folders holding it."""
    where: dict[str, list[str]] = {}
    for folder in OUTPUTS:
        for entry in (root / folder).iterdir():
            where.setdefault(entry.name, []).append(folder)
    return where


def leftovers(root: Path) -> list[str]:
    return [e.name for e in (root / "inbox").iterdir()] + \
        [e.name for e in (root / "work").iterdir() if e.name != "journal.jsonl"]


def test_mixed_inbox_is_filed_and_reported(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir(parents=True)
    (inbox / "good.x12").write_text(batch_file(1))
    (inbox / "bad.x12").write_text(batch_file(2, reject=True))
    (inbox / "junk.bin").write_bytes((FIXTURES / "broken-binary.bin").read_bytes())
    (inbox / "empty.x12").write_bytes(b"")
    (inbox / "dir.x12").mkdir()
    os.symlink("/etc/hostname", inbox / "link.x12")
    os.mkfifo(inbox / "pipe.x12")
    (inbox / "partial.tmp").write_text("ISA*")  # being written: never taken
    (inbox / ".hidden.x12").write_text("x")
    out = run_once(tmp_path, "--no-ledger")
    assert placed(tmp_path) == {
        "good.x12": ["accepted"], "bad.x12": ["rejected"], "junk.bin": ["failed"],
        "empty.x12": ["failed"], "dir.x12": ["failed"], "link.x12": ["failed"],
        "pipe.x12": ["failed"]}
    assert (tmp_path / "failed" / "link.x12").is_symlink()  # moved, not followed
    assert sorted(e.name for e in (tmp_path / "inbox").iterdir()) == [".hidden.x12",
                                                                      "partial.tmp"]
    reports = [p.name for p in (tmp_path / "reports").iterdir()]
    job = r"\.\d{8}-\d{6}(-\d+)?\."  # when it was taken, after the name: a redo overwrites
    for name in ("good.x12", "bad.x12"):
        assert sum(bool(re.fullmatch(re.escape(name) + job + "json", r)) for r in reports) == 1
        assert sum(bool(re.fullmatch(re.escape(name) + job + "277ca.x12", r))
                   for r in reports) == 1
        # the reports show the name the file arrived under, not the job name
        (report,) = (tmp_path / "reports").glob(f"{name}.*.json")
        assert json.loads(report.read_text())["files"][0]["path"] == name
        text = report.with_suffix(".txt").read_text()
        assert name in text and "__" not in text
    for name in ("dir.x12", "link.x12", "pipe.x12", "junk.bin", "empty.x12"):
        assert sum(bool(re.fullmatch(re.escape(name) + job + "reason.txt", r))
                   for r in reports) == 1, (name, reports)
    # one log line per file, a failure with its reason, and no patient data in the log
    assert out.count("good.x12: accepted") == 1 and "bad.x12: rejected" in out
    logged = {line.split(" ", 2)[2].split(":")[0]: line for line in out.splitlines()
              if ": failed; " in line}
    assert sorted(logged) == ["dir.x12", "empty.x12", "junk.bin", "link.x12", "pipe.x12"]
    for name in ("junk.bin", "empty.x12"):
        reason = next((tmp_path / "reports").glob(f"{name}.*.reason.txt")).read_text().strip()
        assert reason and reason in logged[name], (reason, logged[name])
    assert "symbolic link" in logged["link.x12"]
    assert "TESTER" not in out and "MBR000001" not in out


def test_the_watcher_scrubs_with_the_profile_it_is_given(tmp_path):
    profile = tmp_path / "payer.xml"
    profile.write_text('<?xml version="1.0"?><profile name="lenient"><rules>'
                       '<rule id="96523-units" enabled="false"/></rules></profile>')
    for root, args in ((tmp_path / "plain", ()), (tmp_path / "lenient",
                                                 ("--profile", str(profile)))):
        (root / "inbox").mkdir(parents=True)
        (root / "inbox" / "two-units.x12").write_text(batch_file(1, reject=True))
        run_once(root, "--no-ledger", *args)
    assert placed(tmp_path / "plain") == {"two-units.x12": ["rejected"]}
    assert placed(tmp_path / "lenient") == {"two-units.x12": ["accepted"]}


def test_name_clash_in_output_folder_never_overwrites_and_keeps_the_extension(tmp_path):
    (tmp_path / "accepted").mkdir(parents=True)
    for name in ("same.x12", "a.tar.x12", "noext"):
        (tmp_path / "accepted" / name).write_text("earlier")
    (tmp_path / "inbox").mkdir()
    for n, name in enumerate(("same.x12", "a.tar.x12", "noext")):
        (tmp_path / "inbox" / name).write_text(batch_file(3 + n))
    out = run_once(tmp_path, "--no-ledger")
    (tmp_path / "inbox" / "same.x12").write_text(batch_file(9))  # a third same.x12
    out += run_once(tmp_path, "--no-ledger")
    accepted = tmp_path / "accepted"
    assert sorted(p.name for p in accepted.iterdir()) == [
        "a.tar-2.x12", "a.tar.x12", "noext", "noext-2", "same-2.x12", "same-3.x12", "same.x12"]
    assert all((accepted / name).read_text() == "earlier"
               for name in ("same.x12", "a.tar.x12", "noext"))
    assert (accepted / "same-2.x12").read_text() == batch_file(3)
    assert (accepted / "a.tar-2.x12").read_text() == batch_file(4)
    assert (accepted / "noext-2").read_text() == batch_file(5)
    assert (accepted / "same-3.x12").read_text() == batch_file(9)
    # logged and journaled under the name it got
    assert "same-2.x12 (arrived as same.x12): accepted;" in out
    assert "same-3.x12 (arrived as same.x12): accepted;" in out
    journal = [json.loads(line) for line in (tmp_path / "work" / "journal.jsonl").open()]
    assert sorted(e["to"] for e in journal if e["step"] == "done") == [
        "a.tar-2.x12", "noext-2", "same-2.x12", "same-3.x12"]


STEPPED = """
import dataclasses, sys, time, types
from pathlib import Path
import scrubber.watch as watch
CONTROL = Path(sys.argv[2])
# the watcher's clock is the test's: it moves only when the test moves it, so a stalled
# writer (or a stalled test) is never a settled file
clock = types.SimpleNamespace(**{n: getattr(time, n) for n in dir(time) if n[0] != "_"})
clock.monotonic = lambda: float((CONTROL / "clock").read_text())
watch.time = clock
ready = watch.Watcher._ready
scans = 0
def counted(self):
    global scans
    names = ready(self)
    scans += 1  # a finished look at the inbox, for the test to wait on
    (CONTROL / "scans.tmp").write_text(str(scans))
    (CONTROL / "scans.tmp").replace(CONTROL / "scans")
    return names
watch.Watcher._ready = counted
init = watch.Watcher.__init__
def quick(self, settings, *a, **k):  # look often: the test waits for looks, not for time
    init(self, dataclasses.replace(settings, poll_seconds=0.02), *a, **k)
watch.Watcher.__init__ = quick
from scrubber.cli import main
sys.argv = ["scrub", "watch", sys.argv[1], "--settle", "0.3", "--poll", "--no-ledger",
            "--workers", "2"]
main()
"""


def test_slow_writer_is_taken_only_when_complete(tmp_path):
    """A file growing chunk by chunk, a tenth of the settle time apart on the watcher's
    clock, which the test steps: the watcher looks at every chunk twice, and a watcher
    that took a file before it settled would take it half-written."""
    root, control = tmp_path / "root", tmp_path / "control"
    control.mkdir()
    now = 0.0

    def set_clock(value: float) -> None:
        (control / "clock.tmp").write_text(repr(value))
        (control / "clock.tmp").replace(control / "clock")

    def scans() -> int:
        return int((control / "scans").read_text()) if (control / "scans").exists() else 0

    def a_full_look() -> None:
        """Wait until the watcher has looked at the inbox from start to end since now (the
        deadline only bounds a hang)."""
        target = scans() + 2  # the next look may have begun before now; the one after not
        deadline = time.monotonic() + 120
        while scans() < target and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()[0]
            time.sleep(0.01)
        assert scans() >= target, "the watcher stopped looking at its inbox"

    set_clock(now)
    proc = subprocess.Popen([sys.executable, "-c", STEPPED, str(root), str(control)],
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        inbox = root / "inbox"
        a_full_look()
        # the .tmp convention: never taken until renamed
        (inbox / "renamed.tmp").write_text(batch_file(5))
        text = batch_file(4)
        step = len(text) // 10 + 1
        with open(inbox / "slow.x12", "w") as out:
            for i in range(0, len(text), step):
                out.write(text[i:i + step])
                out.flush()
                a_full_look()  # seen with this chunk ...
                now += 0.1  # ... and again later, shorter than the settle time
                set_clock(now)
                a_full_look()
                assert (inbox / "slow.x12").exists(), f"taken half-written at {i + step}"
        deadline = time.monotonic() + 120
        while "slow.x12" not in placed(root) and time.monotonic() < deadline:
            now += 0.1  # time passes: the complete file settles
            set_clock(now)
            time.sleep(0.02)
        # seen again and again far longer than the settle time, yet not taken
        assert (inbox / "renamed.tmp").exists()
        os.rename(inbox / "renamed.tmp", inbox / "renamed.x12")
        while len(placed(root)) < 2 and time.monotonic() < deadline:
            now += 0.1
            set_clock(now)
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert placed(root) == {"slow.x12": ["accepted"], "renamed.x12": ["accepted"]}
    assert (root / "accepted" / "slow.x12").read_text() == batch_file(4)
    assert "changed while it was scrubbed" not in out  # taken once, complete


@pytest.mark.slow
def test_burst_of_200_files(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir(parents=True)
    for n in range(200):
        (inbox / f"b{n:03d}.x12").write_text(batch_file(n, reject=n % 10 == 0))
    run_once(tmp_path, "--no-ledger")
    where = placed(tmp_path)
    assert len(where) == 200 and all(len(v) == 1 for v in where.values())
    assert sum(v == ["rejected"] for v in where.values()) == 20
    assert leftovers(tmp_path) == []


POISON = """
import sys
import scrubber.api as api
real = api.process_file
def process_file(path, *a, **k):
    if path.endswith("a-poison.x12"):
        raise RuntimeError("scrubber bug triggered by this file")
    return real(path, *a, **k)
api.process_file = process_file
from scrubber.cli import main
sys.argv = ["scrub", "watch", sys.argv[1], "--once", "--settle", "0.2", "--poll",
            "--no-ledger"]
main()
"""


def test_poison_file_goes_to_failed_and_the_watcher_goes_on(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir(parents=True)
    (inbox / "a-poison.x12").write_text(batch_file(6))
    (inbox / "b-fine.x12").write_text(batch_file(7))
    result = subprocess.run([sys.executable, "-c", POISON, str(tmp_path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert placed(tmp_path) == {"a-poison.x12": ["failed"], "b-fine.x12": ["accepted"]}
    (reason,) = (tmp_path / "reports").glob("a-poison.x12.*.reason.txt")
    assert "scrubber bug triggered" in reason.read_text()


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1])
def test_kill_9_at_random_moments_loses_and_duplicates_nothing(tmp_path, seed):
    rng = random.Random(seed)
    inbox = tmp_path / "inbox"
    inbox.mkdir(parents=True)
    total = 60
    for n in range(total):
        (inbox / f"k{n:03d}.x12").write_text(batch_file(n, reject=n % 7 == 0))
    ledger = tmp_path / "ledger.sqlite"
    for _ in range(25):
        proc = watch(tmp_path, "--ledger", str(ledger), start_new_session=True)
        time.sleep(rng.uniform(0.3, 1.5))
        os.killpg(proc.pid, signal.SIGKILL)  # the watcher and its workers, mid-step
        proc.communicate(timeout=30)
    run_once(tmp_path, "--ledger", str(ledger))
    where = placed(tmp_path)
    assert sorted(where) == [f"k{n:03d}.x12" for n in range(total)]
    assert all(len(folders) == 1 for folders in where.values())
    assert leftovers(tmp_path) == []
    for name, (folder,) in where.items():
        assert folder == ("rejected" if int(name[1:4]) % 7 == 0 else "accepted")
        reports = list((tmp_path / "reports").glob(f"{name}.*.json"))
        assert len(reports) == 1, (name, reports)
    with open_store(ledger) as store:
        rows = [(claim["claim_id"], claim["submission"], line[4])
                for claim in list(store.export())[1:] for line in claim["lines"]]
    accepted = [n for n in range(total) if n % 7]
    assert len(rows) == len(set(rows)) == len(accepted)
    assert sorted(r[0] for r in rows) == [f"W{n:04d}" for n in accepted]


def test_scrub_toml_sets_every_site_default_of_the_watcher(tmp_path):
    """[watch] takes what the README lists as site defaults: the ack sender among them."""
    root = tmp_path / "claims"
    (root / "inbox").mkdir(parents=True)
    (root / "inbox" / "two-units.x12").write_text(batch_file(1, reject=True))
    (tmp_path / "scrub.toml").write_text(
        '[watch]\nroot = "claims"\nworkers = 1\nsettle = 0.2\npoll = true\n'
        'no-ledger = true\nig = true\nack-sender = "ACMECH"\nack-name = "ACME CLEARING"\n'
        'ignore = ["96523-units"]\nselect = ["96523-,snip-"]\n')
    result = subprocess.run([sys.executable, "-m", "scrubber", "watch", "--once"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert placed(root) == {"two-units.x12": ["accepted"]}  # the rule it breaks is ignored
    (ack,) = (root / "reports").glob("*.277ca.x12")
    text = ack.read_text()
    assert text.startswith("ISA*") and text.split("*")[6] == "ACMECH".ljust(15)
    assert "*ACME CLEARING*" in text or "*ACME CLEARING~" in text
    (tmp_path / "scrub.toml").write_text('[watch]\nack-sendr = "ACMECH"\n')
    result = subprocess.run([sys.executable, "-m", "scrubber", "watch", "--once"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "ack-sendr is not an option" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_start_line_says_where_with_what(tmp_path):
    from scrubber.core import ScrubOptions
    from scrubber.watch import WatchSettings, describe

    profile = tmp_path / "payer.xml"
    profile.write_text('<?xml version="1.0"?><profile name="acme-lenient"><rules>'
                       '<rule id="96523-units" enabled="false"/></rules></profile>')
    ledger = tmp_path / "ledger.sqlite"
    out = run_once(tmp_path / "root", "--ledger", str(ledger), "--profile", str(profile))
    (start,) = [line for line in out.splitlines() if " watching " in line]
    assert f"watching {tmp_path / 'root'} once: 2 workers" in start
    assert f"ledger {ledger}, recording accepted claims" in start
    assert f"profile acme-lenient ({profile})" in start
    assert "ledger none, profile default" in run_once(tmp_path / "plain", "--no-ledger")
    # a ledger URL's password is never shown
    settings = WatchSettings(root=Path("/srv/claims"), workers=1, options=ScrubOptions(
        ledger="postgresql://billing:s3cret-pw@db.example/claims", record=False))
    line = describe(settings, redo=2)
    assert "s3cret-pw" not in line and "postgresql://billing@db.example/claims" in line
    assert line.startswith("watching /srv/claims: 1 worker, ") and "2 files left" in line


SLOW = """
import sys, time
from pathlib import Path
import scrubber.api as api
real = api.process_file
ROOT = Path(sys.argv[1])
def process_file(path, *a, **k):
    (ROOT / ("started-" + Path(path).name.split("__")[-1])).write_text("x")
    deadline = time.monotonic() + 300  # a big file: in hand until the test releases it
    while not (ROOT / "release").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return real(path, *a, **k)
api.process_file = process_file
from scrubber.cli import main
sys.argv = ["scrub", "watch", str(ROOT), "--settle", "0.2", "--poll", "--no-ledger",
            "--workers", "1"]
main()
"""


def test_a_stop_says_at_once_what_it_is_finishing(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir(parents=True)
    for n in range(4):
        (inbox / f"big{n}.x12").write_text(batch_file(n))
    proc = subprocess.Popen([sys.executable, "-c", SLOW, str(tmp_path)], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 60
        while not (tmp_path / "started-big0.x12").exists() and time.time() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        assert proc.stdout is not None
        seen = []
        for line in proc.stdout:  # the stop line comes before the file in hand is filed
            seen.append(line)
            if " stopping: " in line:
                break
        assert not (tmp_path / "accepted" / "big0.x12").exists(), seen
        (tmp_path / "release").write_text("x")  # the big file may be finished now
        rest, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, "".join(seen) + rest
    stopping = seen[-1]
    assert "finishing" in stopping and "big0.x12" in stopping, stopping
    in_hand = [name for name in ("big0.x12", "big1.x12", "big2.x12", "big3.x12")
               if name in stopping]
    left = 4 - len(in_hand)
    assert f"{left} taken files stay in work/" in stopping
    assert sorted(placed(tmp_path)) == in_hand  # what it said it finished, it finished
    assert len(leftovers(tmp_path)) == left
    assert f"stopped: {len(in_hand)} file" in rest
    run_once(tmp_path, "--no-ledger")  # the next start redoes the rest
    assert sorted(placed(tmp_path)) == ["big0.x12", "big1.x12", "big2.x12", "big3.x12"]


def test_the_documented_watch_table_is_accepted(tmp_path):
    from scrubber.cli import main
    from scrubber.config import load_config

    doc = (Path(__file__).resolve().parent.parent / "docs" / "watcher.md").read_text()
    example = re.search(r"```toml\n(.*?)```", doc, re.S)
    assert example is not None
    from scrubber.rules.profile import DEFAULT_PROFILE, maps_dir

    # the documented profile, as the site would have it
    profile = tmp_path / "acme.xml"
    profile.write_bytes((maps_dir() / DEFAULT_PROFILE).read_bytes())
    (tmp_path / "scrub.toml").write_text(example.group(1).replace("/etc/scrubber/acme.xml",
                                                                  str(profile)))
    defaults, config = load_config(main, str(tmp_path / "scrub.toml"))
    assert defaults["watch"]["workers"] == 2 and defaults["watch"]["settle"] == 5.0
    from scrubber.options import scrub_options

    options = scrub_options("watch", config=config)  # what the watcher's options are made of
    assert options.ack.sender_id == "ACMECH" and options.ignore == ("96523-units",)
    assert options.ledger == "/var/lib/scrubber/ledger.sqlite" and options.record


def test_a_resent_batch_is_rejected_and_not_recorded_again(tmp_path):
    """The same claims under a new ISA13: exact duplicates, so rejected/, recorded once."""
    (tmp_path / "inbox").mkdir(parents=True)
    ledger = str(tmp_path / "ledger.sqlite")
    first = batch_file(1)
    (tmp_path / "inbox" / "first.x12").write_text(first)
    run_once(tmp_path, "--ledger", ledger)
    (tmp_path / "inbox" / "again.x12").write_text(first.replace("000000002", "000000777"))
    said = run_once(tmp_path, "--ledger", ledger)
    assert placed(tmp_path) == {"first.x12": ["accepted"], "again.x12": ["rejected"]}
    assert re.search(r"again\.x12: rejected; claims 1 accepted 0 rejected 1", said), said
    with open_store(ledger) as store:
        assert [(s.submission, s.claims, s.state) for s in store.submissions()] == [
            ("SENDERID:000000002", 1, "sent")]
