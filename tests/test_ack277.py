"""277CA: every emitted acknowledgement validates with pyx12, and says what was found."""

from __future__ import annotations

import io
import itertools
import json
import logging
import os
import stat
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
import pyx12.params
import pyx12.x12n_document
from click.testing import CliRunner

from scrubber.cli import main
from scrubber.core import Scrubber
from scrubber.emit.ack277 import Ack277Writer
from scrubber.model import ClaimRecord, read
from scrubber.x12 import Segment, Tokenizer

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
GOLDEN = Path(__file__).resolve().parent / "golden"
INPUTS = sorted(FIXTURES.glob("*.x12")) + sorted((FIXTURES / "rules").glob("*.x12"))


@pytest.fixture(autouse=True)
def quiet_pyx12():
    log = logging.getLogger("pyx12")
    log.addHandler(logging.NullHandler())
    log.propagate = False


def ack(path) -> tuple[str, list]:
    out = io.BytesIO()
    writer = Ack277Writer(clock=lambda: datetime(2026, 11, 28, 12, 0),
                          control_numbers=itertools.count(1))
    summaries = writer.write(Scrubber().events(path), out)
    return out.getvalue().decode(), summaries


def pyx12_errors(text: str) -> list:
    found = []

    def walk(node):
        if isinstance(node, dict):
            found.extend((node.get("seg_id"), e.get("err_str")) for e in node.get("errors") or [])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    report = io.StringIO()
    ok = pyx12.x12n_document.x12n_document(pyx12.params.params(), io.StringIO(text),
                                           io.StringIO(), None, None, report)
    walk(json.loads(report.getvalue()) if report.getvalue() else {})
    return [] if ok else found or ["rejected"]


def interchanges(text: str) -> list[list[Segment]]:
    result: list[list[Segment]] = []
    for seg in Tokenizer(io.BytesIO(text.encode())):
        assert isinstance(seg, Segment), seg  # the golden texts are clean X12
        if seg.id == "ISA":
            result.append([])
        result[-1].append(seg)
    return result


@pytest.mark.parametrize("path", INPUTS, ids=[p.name for p in INPUTS])
def test_every_277ca_validates_with_pyx12_and_acknowledges_every_claim(path):
    text, summaries = ack(path)
    claims = [e for e in read(path) if isinstance(e, ClaimRecord)]
    if not text:
        assert not claims or all(s.skipped for s in summaries)
        return
    for one in interchanges(text):
        body = "".join("*".join(s.elements) + "~\n" for s in one)
        assert pyx12_errors(body) == [], path.name
    segs = [s for one in interchanges(text) for s in one]
    trn = [s.get(2) for s in segs if s.id == "TRN" and s.get(1) == "2"]
    acked = [c.claim.id for c in claims
             if not any(c.interchange.control_number == s.answers and s.skipped
                        for s in summaries)]
    assert acked and set(acked) <= set(trn)  # TRN02 = CLM01, exactly


def test_counts_and_amounts_add_up():
    text, (summary,) = ack(FIXTURES / "rules" / "96523-sole-service.fail.837p.x12")
    segs = interchanges(text)[0]
    # a claim's STC follows its TRN*2, which follows the patient's NM1*QC
    claim_stcs = [segs[i + 1] for i in range(1, len(segs) - 1)
                  if segs[i].id == "TRN" and segs[i - 1].id == "NM1" and segs[i - 1].get(1) == "QC"]
    rejected = [s for s in claim_stcs if s.get(3) == "U"]
    accepted = [s for s in claim_stcs if s.get(3) == "WQ"]
    qty = {s.get(1): int(s.get(2)) for s in segs if s.id == "QTY"}
    amt: dict[str, Decimal] = {}
    for s in segs:
        if s.id == "AMT":
            amt[s.get(1)] = amt.get(s.get(1), Decimal(0)) + Decimal(s.get(2))
    assert qty.get("AA", 0) == qty.get("QC", 0) == len(rejected) == summary.rejected
    assert qty.get("90", 0) == qty.get("QA", 0) == len(accepted) == summary.accepted
    assert amt.get("YY", 0) == 2 * sum(Decimal(s.get(4)) for s in rejected)  # 2000B + 2000C
    assert rejected and all(s.get(1).startswith("A8:454") for s in rejected)


def test_one_277ca_per_input_interchange():
    text, summaries = ack(FIXTURES / "837p-multi-envelope.x12")
    assert len(interchanges(text)) == len(summaries) == 2
    assert [s.answers for s in summaries] == [e.control_number for e in read(
        FIXTURES / "837p-multi-envelope.x12") if e.__class__.__name__ == "Interchange"]


def test_broken_interchange_gets_no_claim_acknowledgement():
    text, summaries = ack(FIXTURES / "broken-missing-iea.x12")
    assert text == ""
    assert summaries and summaries[0].skipped


@pytest.mark.parametrize("source, expect", [
    ("rules/96523-units.fail.837p.x12", ["SVC*HC:96523", "STC*A7:476"]),  # line level
    ("837p-multi.x12", ["STC*A2:20", "QTY*90*3"]),  # all accepted
    ("rules/96523-drug-admin.fail.837p.x12", ["QTY*90*1", "QTY*AA*1"]),  # mixed
    ("837i-single.x12", ["STC*A6:294", "DTP*472*"]),  # institutional, undocumented 96523
])
def test_277ca_golden(source, expect):
    """Golden files; SCRUBBER_REGOLD=1 rewrites them (read the diff before committing)."""
    text, _ = ack(FIXTURES / source)
    golden = GOLDEN / (Path(source).name.replace(".x12", ".277ca.x12"))
    if os.environ.get("SCRUBBER_REGOLD"):
        golden.write_text(text)
    assert text == golden.read_text()
    assert all(piece in text for piece in expect)


def test_cli_writes_owner_only_277ca(tmp_path):
    result = CliRunner().invoke(main, ["check", str(FIXTURES / "837p-multi.x12"),
                                       "--277ca", str(tmp_path / "acks")])
    assert result.exit_code == 0, result.output
    (written,) = (tmp_path / "acks").iterdir()
    assert written.name == "837p-multi.x12.277ca.x12"
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert pyx12_errors(written.read_text()) == []
    assert written.read_text().count("STC*A2:20") == 3


def test_cli_sender_id_and_name_are_configurable(tmp_path):
    result = CliRunner().invoke(main, ["check", str(FIXTURES / "837p-single.x12"), "--no-ledger",
                                       "--277ca", str(tmp_path), "--ack-sender", "ACMECH",
                                       "--ack-name", "ACME CLEARING"])
    assert result.exit_code == 0, result.output
    text = next(tmp_path.iterdir()).read_text()
    assert text.startswith("ISA*00*          *00*          *ZZ*ACMECH         *")
    assert "NM1*AY*2*ACME CLEARING*****46*ACMECH~" in text
    assert pyx12_errors(text) == []
