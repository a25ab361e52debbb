"""scrub split: the accepted claims as a batch of their own, the rest held, nothing lost.

On every fixture and (when present) every file of the shared corpus: the
claims of the accepted and the hold batch are exactly the input's, each
byte-identical, the accepted batch re-scrubs with every claim accepted and
passes pyx12's validator; control numbers are fresh across runs; a conflict
across claims of one batch is held whole; --record records only what went out.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from scrubber.api import scrub
from scrubber.cli import main
from scrubber.ledger import open_store
from scrubber.model import ClaimRecord, read
from scrubber.options import ScrubOptions
from scrubber.split import SplitError, split
from scrubber.x12.tokenizer import Run

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "fixtures").rglob("*.x12"))
CORPUS = Path(os.environ.get("SCRUBBER_CORPUS", ROOT.parent / "shared" / "corpus"))
CORPUS_FILES = sorted(str(p) for p in CORPUS.rglob("*") if p.is_file()
                      and p.name != "PROVENANCE.tsv") if CORPUS.is_dir() else []
OPTIONS = ScrubOptions(data=None)
PYX12_VERSIONS = ("005010X222A1", "005010X223A2")  # the guides pyx12 has maps for


def claim_bytes(data: bytes) -> list[bytes]:
    """Each claim of ``data`` as the bytes it was sent as: CLM through its last segment."""
    out = []
    for event in read(data):
        if event.__class__ is ClaimRecord:
            last = event.claim.source.pieces[-1]
            end = last.offset + (len(last.text) if type(last) is Run else last.length)
            out.append(data[event.claim.location.offset:end])
    return out


def verdicts(data: bytes) -> Counter:
    """Each claim's bytes with the scrub's verdict, counted."""
    result = scrub(data, options=OPTIONS)
    counted: Counter = Counter()
    for claim, raw in zip(result.claims, claim_bytes(data), strict=True):
        counted[raw, claim.rejected] += 1
    return counted


def split_and_check(source: str, tmp_path: Path, *, pyx12: bool = True) -> None:
    accepted, held = tmp_path / "accepted.x12", tmp_path / "hold.x12"
    result = split([source], accepted, held, options=OPTIONS)
    data = Path(source).read_bytes()
    out_accepted = accepted.read_bytes() if accepted.exists() else b""
    out_held = held.read_bytes() if held.exists() else b""
    assert (result.accepted_file is not None) == accepted.exists()
    assert (result.held_file is not None) == held.exists()
    # exactly the input's claims, each byte for byte, in one file or the other
    assert Counter(claim_bytes(data)) == Counter(claim_bytes(out_accepted)
                                                 + claim_bytes(out_held))
    assert result.accepted + result.held == result.claims == len(claim_bytes(data))
    if result.outside:
        return
    judged = verdicts(data)
    for raw in claim_bytes(out_accepted):  # nothing the scrub rejected goes out
        assert judged[raw, False] > 0
    if not out_accepted:
        return
    again = scrub(out_accepted, options=OPTIONS)
    assert again.ok, (again.verdict, [p.code for p in again.problems],
                      [(c.claim.id, [f.rule for f in c.findings]) for c in again.rejected])
    versions = set(re.findall(rb"ST\*837\*[^*~]*\*([0-9A-Z]+)", out_accepted))
    if pyx12 and versions <= {v.encode() for v in PYX12_VERSIONS}:
        from ig_reference import run_pyx12

        valid, tree, _ = run_pyx12(out_accepted)
        assert valid, tree


@pytest.mark.parametrize("name", FIXTURES)
def test_split_every_fixture(name: str, tmp_path: Path) -> None:
    split_and_check(str(ROOT / name), tmp_path)


@pytest.mark.slow
@pytest.mark.skipif(not CORPUS_FILES, reason="the shared corpus is not here")
@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: Path(p).name)
def test_split_corpus(path: str, tmp_path: Path) -> None:
    split_and_check(path, tmp_path)


def test_rejected_claim_is_held_and_the_rest_go_out(tmp_path: Path) -> None:
    source = ROOT / "fixtures/rules/96523-units.fail.837p.x12"
    scrubbed = scrub(source.read_bytes(), options=OPTIONS)
    assert scrubbed.rejected, "the fixture has a rejected claim"
    good = scrub(ROOT / "fixtures/837p-multi.x12", options=OPTIONS)
    assert good.ok
    result = split([source, ROOT / "fixtures/837p-multi.x12"], tmp_path / "a.x12",
                   tmp_path / "h.x12", options=OPTIONS)
    assert result.held == len(scrubbed.rejected)
    assert result.accepted == len(good.claims) + len(scrubbed.claims) - len(scrubbed.rejected)
    held_ids = {c.claim.id for c in scrub(tmp_path / "h.x12", options=OPTIONS).claims}
    assert held_ids == {c.claim.id for c in scrubbed.rejected}


def test_envelopes_are_rebuilt_with_counts_and_fresh_numbers(tmp_path: Path) -> None:
    source = str(ROOT / "fixtures/837p-multi-envelope.x12")
    seen: set[str] = set()
    for run in range(2):
        result = split([source], tmp_path / f"a{run}.x12", tmp_path / f"h{run}.x12",
                       options=OPTIONS)
        data = (tmp_path / f"a{run}.x12").read_bytes()
        numbers = re.findall(rb"^ISA(?:\*[^*]*){12}\*(\d{9})\*", data, re.M)
        numbers += re.findall(rb"^GS(?:\*[^*]*){5}\*(\d+)\*", data, re.M)
        numbers += re.findall(rb"^ST\*837\*(\d+)\*", data, re.M)
        assert numbers and len(result.accepted_controls) >= 1
        fresh = {n.decode() for n in numbers}
        assert len(fresh) == len(numbers), "every envelope has a number of its own"
        assert not fresh & seen, "no number of an earlier run is used again"
        seen |= fresh
        original = Path(source).read_bytes()
        for isa13 in re.findall(rb"^ISA(?:\*[^*]*){12}\*(\d{9})\*", original, re.M):
            assert isa13.decode() not in fresh
        problems = scrub(data, options=OPTIONS).problems
        assert not problems, [p.code for p in problems]


def test_hl_numbers_and_children_follow_the_new_batch(tmp_path: Path) -> None:
    """The patient claim alone goes out: its subscriber keeps HL04 1 and the numbering
    starts from 1; the subscriber who only has the rejected claim does not appear."""
    source = (ROOT / "fixtures/837p-multi.x12").read_bytes()
    # reject the subscriber's own claims by a charge that does not add up
    broken = source.replace(b"CLM*MLT-0001*182.50", b"CLM*MLT-0001*999.99").replace(
        b"CLM*MLT-0002*105.25", b"CLM*MLT-0002*999.99")
    result = split([broken], tmp_path / "a.x12", tmp_path / "h.x12", options=OPTIONS)
    assert result.held == 2 and result.accepted == 1
    accepted = (tmp_path / "a.x12").read_bytes()
    hls = re.findall(rb"^HL\*([^~]*)~", accepted, re.M)
    assert hls == [b"1**20*1", b"2*1*22*1", b"3*2*23*0"]
    held = (tmp_path / "h.x12").read_bytes()
    assert re.findall(rb"^HL\*([^~]*)~", held, re.M) == [b"1**20*1", b"2*1*22*0"]
    assert b"MOCKINGTON" not in held and b"SAMPLETON" not in accepted


def test_a_day_conflict_is_held_whole(tmp_path: Path) -> None:
    """96523 on one claim and a visit on another, same patient and day: both wait."""
    source = ROOT / "fixtures/rules/96523-sole-service.fail.837p.x12"
    scrubbed = scrub(source.read_bytes(), options=OPTIONS)
    ids = {c.claim.id: c.rejected for c in scrubbed.claims}
    assert sorted(ids.values()) == [False, True], "one side rejected, the other accepted"
    result = split([source], tmp_path / "a.x12", tmp_path / "h.x12", options=OPTIONS)
    assert result.accepted == 0 and result.held == 2
    assert not (tmp_path / "a.x12").exists()
    [partner] = result.partners
    assert not ids[partner.claim_id] and all(ids[i] for i in partner.rejected_with)


def test_a_conflict_across_files_is_held_whole(tmp_path: Path) -> None:
    """The day context spans the run: a conflict between two files is held whole too."""
    data = (ROOT / "fixtures/rules/96523-sole-service.fail.837p.x12").read_bytes()
    first, second = _split_claims(data)
    (tmp_path / "one.x12").write_bytes(first)
    (tmp_path / "two.x12").write_bytes(second)
    result = split([tmp_path / "one.x12", tmp_path / "two.x12"], tmp_path / "a.x12",
                   tmp_path / "h.x12", options=OPTIONS)
    assert result.claims == 2 and result.held == 2 and len(result.partners) == 1


def _split_claims(data: bytes) -> tuple[bytes, bytes]:
    """The fixture's two transaction sets as two files of one set each, the second under
    another ISA13."""
    text = data.decode("ascii")
    second_st = text.index("ST*837*0002")
    ge = text.index("GE*2*")
    envelope = text[:text.index("ST*837*0001")]
    one = text[:second_st] + "GE*1*9652~\nIEA*1*000009652~\n"
    two = (envelope.replace("000009652", "987654321") + text[second_st:ge]
           + "GE*1*9652~\nIEA*1*987654321~\n")
    return one.encode(), two.encode()


def test_record_records_only_the_accepted_batch(tmp_path: Path, ledger_target: str) -> None:
    ledger = ledger_target
    conflict = ROOT / "fixtures/rules/96523-sole-service.fail.837p.x12"
    multi = ROOT / "fixtures/837p-multi.x12"
    options = ScrubOptions(data=None, ledger=str(ledger), record=True)
    result = split([conflict, multi], tmp_path / "a.x12", tmp_path / "h.x12",
                   options=options)
    assert result.partners and result.accepted == 3
    sent = {c.claim.id for c in scrub(multi, options=OPTIONS).claims}
    every = sent | {c.claim.id for c in scrub(conflict, options=OPTIONS).claims}
    with open_store(str(ledger)) as store:
        recorded = {claim_id for claim_id in every if store.claims(claim_id)}
        assert sum(s.held for s in store.submissions()) == 0, "nothing is left held"
        # recorded under the interchange they go out in, not the one they came in
        assert {s.submission for s in store.submissions()} == {
            f"SCRUBTESTSUBM:{control}" for control in result.accepted_controls}
    assert recorded == sent


def test_nothing_is_recorded_when_the_split_fails(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.sqlite"
    options = ScrubOptions(data=None, ledger=str(ledger), record=True)
    (tmp_path / "same.x12").write_bytes(b"")
    with pytest.raises(SplitError):
        split([ROOT / "fixtures/837p-multi.x12"], tmp_path / "same.x12",
              tmp_path / "same.x12", options=options)
    with open_store(str(ledger)) as store:
        assert not store.submissions()


def test_an_old_batch_is_not_left_behind(tmp_path: Path) -> None:
    """A run with nothing accepted removes the accepted file of an earlier run."""
    (tmp_path / "a.x12").write_bytes(b"yesterday's batch")
    split([ROOT / "fixtures/rules/96523-sole-service.fail.837p.x12"], tmp_path / "a.x12",
          tmp_path / "h.x12", options=OPTIONS)
    assert not (tmp_path / "a.x12").exists()
    assert oct((tmp_path / "h.x12").stat().st_mode & 0o777) == "0o600"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_cli_split(tmp_path: Path) -> None:
    runner = CliRunner()
    got = runner.invoke(main, ["split", str(ROOT / "fixtures/rules/96523-sole-service.fail"
                                              ".837p.x12"), str(ROOT / "fixtures/837p-multi.x12"),
                               "--accepted", str(tmp_path / "out.x12"),
                               "--rejected", str(tmp_path / "hold.x12"), "--no-ledger"])
    assert got.exit_code == 1, got.output
    assert "5 claims: 3 accepted" in got.output
    assert "held with its partner: SOLE-" in got.output
    assert (tmp_path / "hold.report.txt").exists()
    clean = runner.invoke(main, ["split", str(ROOT / "fixtures/837p-multi.x12"),
                                 "--accepted", str(tmp_path / "out.x12"),
                                 "--rejected", str(tmp_path / "hold.x12"), "--no-ledger"])
    assert clean.exit_code == 0, clean.output
    assert not (tmp_path / "hold.x12").exists()


def test_cli_split_unreadable_input(tmp_path: Path) -> None:
    got = CliRunner().invoke(main, ["split", str(tmp_path / "missing.x12"), "--accepted",
                                    str(tmp_path / "a.x12"), "--rejected",
                                    str(tmp_path / "h.x12"), "--no-ledger"])
    assert got.exit_code == 2
    assert "not scrubbed" in got.output


def test_api_split(tmp_path: Path) -> None:
    import io

    from scrubber import api

    report = io.StringIO()
    result = api.split([(ROOT / "fixtures/rules/96523-sole-service.fail.837p.x12").read_bytes(),
                        str(ROOT / "fixtures/837p-multi.x12")], tmp_path / "a.x12",
                       tmp_path / "h.x12", options=OPTIONS, report=report)
    assert (result.claims, result.accepted, result.held) == (5, 3, 2)
    assert '"claims"' in report.getvalue()
    with pytest.raises(api.InputError):
        api.split([tmp_path / "missing.x12"], tmp_path / "a.x12", tmp_path / "h.x12",
                  options=OPTIONS)


def test_serve_split(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient
    from servekit import auth, settings

    from scrubber.serve.app import create_app

    body = (ROOT / "fixtures/rules/96523-sole-service.fail.837p.x12").read_bytes()
    with TestClient(create_app(settings(tmp_path))) as client:
        assert client.post("/v1/split", content=body).status_code == 401
        answer = client.post("/v1/split", content=body + (ROOT / "fixtures/837p-multi.x12")
                             .read_bytes(), headers=auth())
        assert answer.status_code == 200, answer.text
        said = answer.json()
        assert (said["claims"], said["accepted"], said["held"]) == (5, 3, 2)
        assert [p["claim_id"] for p in said["held_with_partner"]] == ["SOLE-B"]
        assert Counter(claim_bytes(said["accepted_batch"].encode())) + Counter(
            claim_bytes(said["held_batch"].encode())) == Counter(claim_bytes(
                body + (ROOT / "fixtures/837p-multi.x12").read_bytes()))
        assert scrub(said["accepted_batch"].encode(), options=OPTIONS).ok
        assert said["report"]["files"][0]["summary"]["claims"] == 5
        junk = client.post("/v1/split", content=b"not an 837", headers=auth())
        assert junk.status_code == 400 and junk.json()["error"] == "not_an_837"
    with open_store(str(tmp_path / "ledger.sqlite")) as store:
        assert not store.submissions(), "a split records nothing"
    assert not [p for p in (tmp_path / "serve").rglob("*") if p.is_file()
                and p.suffix in (".x12", ".json")], "nothing is kept"


def test_watch_split_files_a_mixed_file_in_both_folders(tmp_path: Path) -> None:
    import subprocess
    import sys

    root = tmp_path / "root"
    inbox = root / "inbox"
    inbox.mkdir(parents=True)
    conflict = (ROOT / "fixtures/rules/96523-sole-service.fail.837p.x12").read_bytes()
    multi = (ROOT / "fixtures/837p-multi.x12").read_bytes()
    other = (ROOT / "fixtures/837i-multi.x12").read_bytes()
    (inbox / "mixed.x12").write_bytes(conflict + multi)
    (inbox / "good.x12").write_bytes(other)
    (inbox / "bad.x12").write_bytes(conflict)
    ledger = tmp_path / "ledger.sqlite"
    proc = subprocess.run([sys.executable, "-m", "scrubber", "watch", str(root), "--once",
                           "--split", "--settle", "0.2", "--poll", "--workers", "1",
                           "--ledger", str(ledger)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "mixed.x12: split into" in proc.stderr
    assert sorted(p.name for p in (root / "accepted").iterdir()) == ["good.x12", "mixed.x12"]
    assert sorted(p.name for p in (root / "rejected").iterdir()) == ["bad.x12", "mixed.x12"]
    assert (root / "accepted/good.x12").read_bytes() == other
    assert (root / "rejected/bad.x12").read_bytes() == conflict
    sent = (root / "accepted/mixed.x12").read_bytes()
    assert Counter(claim_bytes(sent)) == Counter(claim_bytes(multi))
    assert Counter(claim_bytes(sent) + claim_bytes((root / "rejected/mixed.x12")
                                                   .read_bytes())) == Counter(
        claim_bytes(conflict + multi))
    [kept] = [p for p in (root / "reports").iterdir() if p.name.endswith(".original.x12")]
    assert kept.read_bytes() == conflict + multi
    assert [p.name for p in (root / "work").iterdir()] == ["journal.jsonl"]
    with open_store(str(ledger)) as store:
        assert not store.claims("SOLE-B") and not store.claims("SOLE-A")
        assert store.claims("MLT-0001") and store.claims("INM-0001")
        assert sum(s.held for s in store.submissions()) == 0


def test_watch_recover_files_the_batches_of_a_split_cut_short(tmp_path: Path) -> None:
    """Killed after the file was kept in reports/ but before its batches were filed: the
    next start files them; a job still in work/ is redone and its old batches dropped."""
    from scrubber.watch import Watcher, WatchSettings, ensure_folders

    settings = WatchSettings(root=tmp_path, options=ScrubOptions(data=None))
    ensure_folders(settings)
    work = tmp_path / "work"
    done, redo = "1-1-1__mixed.x12", "1-1-2__again.x12"
    for job in (done, redo):
        (work / f".{job}.accepted.part").write_bytes(b"accepted " + job.encode())
        (work / f".{job}.held.part").write_bytes(b"held " + job.encode())
    (work / redo).write_bytes(b"the input")
    (work / "journal.jsonl").write_text(json_lines(
        {"step": "taken", "job": done, "name": "mixed.x12"},
        {"step": "taken", "job": redo, "name": "again.x12"}))
    assert Watcher(settings).recover() == [redo]
    assert (tmp_path / "accepted/mixed.x12").read_bytes() == b"accepted " + done.encode()
    assert (tmp_path / "rejected/mixed.x12").read_bytes() == b"held " + done.encode()
    assert sorted(p.name for p in work.iterdir()) == sorted(["journal.jsonl", redo])


def json_lines(*entries: dict) -> str:
    import json

    return "".join(json.dumps(entry) + "\n" for entry in entries)


def test_bytes_outside_ascii_are_copied_as_sent(tmp_path: Path) -> None:
    """A claim with UTF-8 in a note and a subscriber loop with a Latin-1 byte: the claims
    come out byte for byte, wherever the scrub puts them."""
    data = (ROOT / "fixtures/837p-multi.x12").read_bytes()
    data = data.replace(b"FICTIONAL CLAIM NOTE FOR TESTING", "NOTE ÜBER DÉJÀ VU".encode())
    data = data.replace(b"1 PRETEND PLACE", b"1 PRETEND PL\xc1CE", 1)
    (tmp_path / "in.x12").write_bytes(data)
    result = split([tmp_path / "in.x12"], tmp_path / "a.x12", tmp_path / "h.x12",
                   options=OPTIONS)
    out = [(tmp_path / name).read_bytes() for name in ("a.x12", "h.x12")
           if (tmp_path / name).exists()]
    assert result.claims == 3
    assert Counter(claim_bytes(data)) == Counter(c for batch in out for c in claim_bytes(batch))
    assert any(b"\xc1" in batch for batch in out), "the subscriber loop is copied as sent"


def test_cli_split_reads_standard_input(tmp_path: Path) -> None:
    import subprocess
    import sys

    data = (ROOT / "fixtures/837p-multi.x12").read_bytes()
    proc = subprocess.run([sys.executable, "-m", "scrubber", "split", "-", "--accepted",
                           str(tmp_path / "a.x12"), "--rejected", str(tmp_path / "h.x12"),
                           "--no-ledger"], input=data, capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert Counter(claim_bytes((tmp_path / "a.x12").read_bytes())) == Counter(
        claim_bytes(data))


def test_numbers_come_from_the_acknowledgements_store(tmp_path: Path) -> None:
    """The batches draw from the counter the 277CA, 999 and TA1 draw from: a writer of
    acknowledgements made afterwards never hands out a number the split used."""
    from scrubber.emit.control import counter_path
    from scrubber.options import AckIdentity

    result = split([ROOT / "fixtures/rules/96523-sole-service.fail.837p.x12",
                    ROOT / "fixtures/837p-multi.x12"], tmp_path / "a.x12", tmp_path / "h.x12",
                   options=OPTIONS)
    assert counter_path().exists()
    used = {int(n) for n in result.accepted_controls + result.held_controls}
    later = AckIdentity().writer().control_numbers
    assert not used & {next(later) for _ in range(300)}


def test_jobs_split_the_same(tmp_path: Path) -> None:
    """--jobs shares the scrub among processes; the batches hold the same claims."""
    sources = [ROOT / "fixtures/rules/96523-sole-service.fail.837p.x12",
               ROOT / "fixtures/837p-multi.x12", ROOT / "fixtures/837i-multi.x12"]
    batches = []
    for jobs in (1, 2):
        result = split(sources, tmp_path / f"a{jobs}.x12", tmp_path / f"h{jobs}.x12",
                       options=OPTIONS, jobs=jobs)
        assert len(result.partners) == 1
        batches.append([Counter(claim_bytes((tmp_path / f"{kind}{jobs}.x12").read_bytes()))
                        for kind in ("a", "h")])
    assert batches[0] == batches[1]
