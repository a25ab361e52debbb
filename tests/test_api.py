"""The library entry points front ends call: same verdicts as the CLI, reports owner-only."""

from __future__ import annotations

import io
import json
import stat
from pathlib import Path

from scrubber.api import check_files, process_file
from scrubber.core import Scrubber, ScrubOptions
from scrubber.rules import ScrubbedClaim

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
RULES = FIXTURES / "rules"


def statuses(source) -> list[str]:
    return [e.status for e in Scrubber().events(source) if isinstance(e, ScrubbedClaim)]


def test_path_bytes_and_one_shot_stream_give_the_same_verdicts():
    path = RULES / "96523-units.fail.837p.x12"

    class OneShot(io.RawIOBase):  # like standard input: no seeking
        def __init__(self, data):
            self._inner = io.BytesIO(data)

        def readable(self):
            return True

        def readinto(self, buf):
            return self._inner.readinto(buf)

    want = statuses(path)
    assert want == ["rejected"]
    assert statuses(path.read_bytes()) == want
    assert statuses(io.BufferedReader(OneShot(path.read_bytes()))) == want
    assert statuses(io.BytesIO(path.read_bytes())) == want


def test_process_file_writes_an_owner_only_report_with_the_verdict(tmp_path):
    outcome = process_file(str(RULES / "96523-units.fail.837p.x12"), str(tmp_path))
    assert (outcome.claims, outcome.rejected, outcome.verdict) == (1, 1, "rejected")
    names = [Path(r).name for r in outcome.reports]
    assert names == ["96523-units.fail.837p.x12." + s for s in ("json", "txt", "html", "277ca.x12",
                                                                "999.x12")]
    assert all(stat.S_IMODE(Path(r).stat().st_mode) == 0o600 for r in outcome.reports)
    data = json.loads(Path(outcome.reports[0]).read_text())
    assert data["files"][0]["summary"]["rejected"] == 1
    accepted = process_file(str(FIXTURES / "837p-single.x12"), str(tmp_path))
    assert accepted.verdict == "accepted" and accepted.accepted == accepted.claims == 1
    failed = process_file(str(FIXTURES / "broken-binary.bin"), str(tmp_path))
    assert failed.verdict == "failed" and "binary" in failed.reason


def test_check_files_counts_match_the_json_summary():
    out = io.StringIO()
    outcome = check_files([str(RULES / "96523-units.fail.837p.x12"),
                           str(FIXTURES / "837p-multi.x12")], out, fmt="json")
    assert outcome.rejected and not outcome.unreadable
    files = json.loads(out.getvalue())["files"]
    assert [f["summary"]["rejected"] for f in files] == [1, 0]
    assert files[1]["summary"]["accepted"] == 3


def test_process_file_records_accepted_claims_once(tmp_path):
    from scrubber.ledger import open_store as _open
    from scrubber.model import ClaimRecord, read
    from scrubber.model.keys import patient_identity

    path = FIXTURES / "837p-single.x12"
    record = next(e for e in read(path) if isinstance(e, ClaimRecord))
    with _open(tmp_path / "l.sqlite") as ledger:
        process_file(str(path), str(tmp_path), ledger=ledger)  # a check: nothing recorded
        assert ledger.lines_for(patient_identity(record), record.claim.lines[0].date_from) == []
        for _ in range(2):  # a redo after a crash must not duplicate
            process_file(str(path), str(tmp_path), ledger=ledger,
                         options=ScrubOptions(record=True))
        lines = ledger.lines_for(patient_identity(record), record.claim.lines[0].date_from)
    assert [ln.procedure for ln in lines] == [ln.procedure for ln in record.claim.lines]


def test_the_api_refuses_what_it_cannot_open_and_says_what_it_read(tmp_path):
    import pytest

    import scrubber
    from scrubber.api import InputError

    for missing in (tmp_path / "nope.x12", tmp_path):
        with pytest.raises(InputError, match=str(missing)):
            scrubber.scrub(missing)
        with pytest.raises(InputError):
            next(scrubber.iter_claims(missing))
    junk = scrubber.scrub(b"\x00\x01binary")
    assert not junk.ok and junk.verdict == "not an 837"
    assert junk.summary["file_problems"] == 1
    rejected = scrubber.scrub(RULES / "96523-units.fail.837p.x12")
    assert not rejected.ok and rejected.verdict == "fix 1 claim"
    assert scrubber.scrub(FIXTURES / "837p-multi.x12").ok
