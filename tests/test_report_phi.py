"""Reports mask a person's identity wherever they quote input (issue 24, item 2).

The text report quoted a segment outside any transaction set word for word
(``NM1*IL*1*ZEBRAFINCH*OTTOLINE****MI*PHIMBR0001``) while the claim line above
it masked the same name. Every report but the JSON contract (which carries names
by design) masks what ``--show-phi`` masks: in claim lines, in a problem's
segment, in a finding's segment and the segments around it.
"""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from click.testing import CliRunner

from scrubber.api import process_file
from scrubber.cli import main
from scrubber.core import Scrubber, ScrubOptions
from scrubber.emit.html_report import page_data
from scrubber.emit.json_report import JsonWriter
from scrubber.emit.phi import in_person_loops, mask_segment
from scrubber.x12.tokenizer import Segment

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
# every fictional identity the two files below quote; none may reach a masked report
SECRETS = ("QUILLFEATHER", "OTTOLINE", "PHIMBR0001", "ZEBRAFINCH", "PHIMBR0002", "FAKENAME",
           "FAKE0000001")


def _single() -> str:
    return (FIXTURES / "837p-single.x12").read_text()


@pytest.fixture
def stray(tmp_path: Path) -> Path:
    """A subscriber's name segment between SE and GE: outside any transaction set."""
    data = _single()
    at = data.index("GE*")
    path = tmp_path / "stray.x12"
    path.write_text(data[:at] + "NM1*IL*1*QUILLFEATHER*OTTOLINE****MI*PHIMBR0001~\n"
                    + data[at:])
    return path


@pytest.fixture
def inside(tmp_path: Path) -> Path:
    """A claim with a finding (a diagnosis with its dot) right before its other
    subscriber's name (2320, 2330A): the HTML report shows it around the finding."""
    data = _single().replace(
        "HI*ABK:E119*ABF:I10~",
        "HI*ABK:I10.9~\nSBR*S*01*******CI~\nOI***Y*P**Y~\n"
        "NM1*IL*1*ZEBRAFINCH*OTTOLINE****MI*PHIMBR0002~\nN3*12 SECRET LANE~\n"
        "N4*HIDDENVILLE*PA*170001234~\nNM1*PR*2*OTHER HEALTH PLAN*****PI*88888~")
    path = tmp_path / "inside.x12"
    path.write_text(data.replace("SE*26*", "SE*32*"))
    return path


def _report(fmt: str, *paths: Path, show_phi: bool = False) -> str:
    args = ["check", "--no-ledger", "--format", fmt, *map(str, paths)]
    result = CliRunner().invoke(main, args + (["--show-phi"] if show_phi else []))
    assert result.exit_code == 1, result.output
    return _readable(fmt, result.output)


def _readable(fmt: str, report: str) -> str:
    """The report with what a reader sees: an HTML page's claim rows travel compressed
    inside it (scrubber.emit.html_report.page_data), so they are decoded and added."""
    if fmt != "html":
        return report
    return report + json.dumps(page_data(report), ensure_ascii=False)


@pytest.mark.parametrize("fmt", ["text", "html", "csv"])
def test_no_report_quotes_a_name_outside_or_inside_a_transaction_set(fmt, stray, inside):
    report = _report(fmt, stray, inside)
    assert not [secret for secret in SECRETS if secret in report]


def test_the_names_are_there_to_mask(stray, inside):
    """The control: with --show-phi the same reports quote them, so the test above
    tests the masking, not a fixture that quotes nothing."""
    text = _report("text", stray, inside, show_phi=True)
    assert "NM1*IL*1*QUILLFEATHER*OTTOLINE****MI*PHIMBR0001" in text
    masked = _report("text", stray, inside)
    assert "NM1*IL*1*Q###########*O#######****MI*P#########" in masked
    html = _report("html", stray, inside, show_phi=True)
    assert "NM1*IL*1*ZEBRAFINCH*OTTOLINE****MI*PHIMBR0002" in html
    assert "NM1*IL*1*Z#########*O#######****MI*P#########" in _report("html", stray, inside)


def test_the_json_contract_carries_names_and_masks_them_when_asked(stray, inside):
    assert "QUILLFEATHER" in _report("json", stray, inside)  # the contract: names included
    out = StringIO()
    with Scrubber(ScrubOptions(ledger=None)) as scrubber:
        scrubber.run([(str(stray), "stray"), (str(inside), "inside")],
                     [JsonWriter(out, show_phi=False)])
    report = out.getvalue()
    assert not [secret for secret in SECRETS if secret in report]
    assert "NM1*IL*1*Q###########*O#######****MI*P#########" in _quoted(json.loads(report))


def _quoted(node: object) -> list[str]:
    """Every segment_text of a JSON report, however deep."""
    if isinstance(node, dict):
        return ([node["segment_text"]] if node.get("segment_text") else []) + \
            [t for value in node.values() for t in _quoted(value)]
    if isinstance(node, list):
        return [t for value in node for t in _quoted(value)]
    return []


def test_the_watcher_and_serve_reports_are_masked(stray, tmp_path):
    """Both write their reports with process_file: the .txt (serve's format=text) and
    .html mask, the JSON carries names."""
    (tmp_path / "out").mkdir()
    process_file(str(stray), str(tmp_path / "out"), ledger=None)
    written = {p.suffix: _readable(p.suffix[1:], p.read_text())
               for p in (tmp_path / "out").iterdir()}
    assert {".txt", ".html", ".json"} <= set(written)
    for suffix in (".txt", ".html"):
        assert not [secret for secret in SECRETS if secret in written[suffix]], suffix
    assert "NM1*IL*1*Q###########" in written[".txt"]
    assert "QUILLFEATHER" in written[".json"]


@pytest.mark.parametrize("segment, person, masked", [
    ("NM1*IL*1*DOE*JANE*Q**JR*MI*M123", None, "NM1*IL*1*D##*J###*Q**J#*MI*M###"),
    ("NM1*QC*1*DOE*JANE", None, "NM1*QC*1*D##*J###"),
    ("NM1*85*2*SAMPLE CLINIC*****XX*1728394655", None,
     "NM1*85*2*SAMPLE CLINIC*****XX*1728394655"),
    ("DMG*D8*19800101*F", None, "DMG*D8*1#######*F"),
    ("PAT*****D8*20260101", None, "PAT*****D8*2#######"),
    ("REF*SY*123456789", None, "REF*SY*1########"),
    ("REF*EI*990000001", None, "REF*EI*990000001"),
    ("N3*1 PRETEND PLACE*APT 2", None, "N3*1##############*A####"),
    ("N4*ANYTOWN*PA*170009999", True, "N4*A######*PA*1########"),
    ("N3*100 IMAGINARY AVENUE", False, "N3*100 IMAGINARY AVENUE"),
    ("NM1|IL|1|DOE|JANE", None, "NM1|IL|1|D##|J###"),  # the sender's separator
    ("NM1#IL#1#DOE#JANE", None, "NM1#IL#1#D**#J***"),  # never the separator as the fill
    ("NM1", None, "NM1"),
    ("", None, ""),
])
def test_what_a_quoted_segment_masks(segment, person, masked):
    assert mask_segment(segment, person) == masked


def test_an_address_is_a_persons_after_a_persons_name():
    segments = [Segment(text.split("*")[0], tuple(text.split("*")), n, n, 0, 0)
                for n, text in enumerate(["CLM*1", "N3*X", "NM1*IL*1*A", "N3*Y", "N4*Z",
                                          "NM1*PR*2*P", "N3*W"], 1)]
    assert in_person_loops(segments) == {1: None, 2: None, 3: True, 4: True, 5: True,
                                         6: False, 7: False}
