"""Hostile and damaged input: a located problem or a clean report, never an exception.

Each test is one finding of the fault drills (issue 16) on a small input we
write; the fuzz test (test_fuzz.py) covers the space around them.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from x12text import claim_837p, interchange

import scrubber
from scrubber.cli import main
from scrubber.core import feed
from scrubber.emit.html_report import HtmlReport, page_data
from scrubber.emit.summary import TextSummary
from scrubber.model.values import parse_decimal, small_int
from scrubber.rules.packs.snip import npi_is_valid

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from fuzz import check_case, schema_validator  # noqa: E402


@pytest.fixture(scope="module")
def validator():
    return schema_validator()


def _replace(body: list[str], prefix: str, segment: str) -> list[str]:
    return [segment if s.startswith(prefix) else s for s in body]


def report(data: str | bytes, *args: str) -> tuple[int, dict]:
    """``scrub check --format json`` on ``data``: exit code and the parsed report."""
    raw = data.encode("latin-1") if isinstance(data, str) else data
    runner = CliRunner()
    with runner.isolated_filesystem():
        with open("in.x12", "wb") as out:
            out.write(raw)
        result = runner.invoke(main, ["check", "in.x12", "--format", "json", "--no-ledger",
                                      *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, json.loads(result.stdout)


def problems(node: object) -> list[dict]:
    if isinstance(node, dict):
        return [p for k, v in node.items() for p in (v if k == "problems" else problems(v))]
    if isinstance(node, list):
        return [p for item in node for p in problems(item)]
    return []


def walked(data: dict) -> int:
    return sum(len(t["claims"]) for f in data["files"] for i in f["interchanges"]
               for g in i["groups"] for t in g["transactions"])


def test_numbers_are_parsed_within_bounds():
    assert parse_decimal("123.45") == parse_decimal("123.450")
    for text in ("1E+999999999", "1E999999", "NaN", "Infinity", "9" * 19, " 12", "+1", "1_0"):
        assert parse_decimal(text) is None, text
    assert small_int("12") == 12 and small_int("9" * 5000) is None
    assert small_int("\u00b2") is None and small_int("1234567") is None
    assert not npi_is_valid("\u00b9" * 10)


@pytest.mark.parametrize("lx", ["LX*" + "9" * 5000, "LX*\u00b2"])
def test_an_lx_of_5000_digits_or_a_superscript_is_a_problem_not_a_crash(lx, validator):
    data = interchange(_replace(claim_837p("LX5000"), "LX*", lx))
    code, result = report(data)
    assert code == 1 and walked(result) == 1
    assert any(p["code"].startswith("ig-") and "LX" in p["message"] for p in problems(result))
    check_case(data.encode("latin-1"), validator)
    (claim,) = scrubber.iter_claims(data.encode("latin-1"), conformance=False)
    assert claim.record.claim.lines[0].number is None


@pytest.mark.parametrize("charge", ["1E+999999999", "1E999999", "NaN"])
def test_an_amount_out_of_range_is_located_and_the_report_stays_small(charge, validator):
    body = [s.replace("*100***", f"*{charge}***") if s.startswith("CLM*") else s
            for s in claim_837p("HUGE1")]
    data = interchange(body)
    code, result = report(data)
    assert code == 1
    assert any(p["code"] == "ig-element" and "CLM02" in p["message"] for p in problems(result))
    assert len(json.dumps(result)) < 20000
    assert result["files"][0]["summary"]["charges_rejected"] == "0.00"
    unchecked = scrubber.scrub(data.encode("latin-1"), conformance=False)
    assert unchecked.claims[0].record.claim.charge is None
    check_case(data.encode("latin-1"), validator)


def _envelope_orders() -> dict[str, list[str]]:
    body = claim_837p("ORDER1")
    clm = next(i for i, s in enumerate(body) if s.startswith("CLM*"))
    inner = [s for s in body if not s.startswith(("GS*", "GE*"))]
    return {
        "no GS": inner,
        "GS after the claim": inner + [body[0], body[-1]],
        "GS inside the open ST": body[:clm] + [body[0].replace("*1*X*", "*2*X*")] +
        body[clm:] + ["GE*1*2"],
        "ST before GS": [body[1], body[0], *body[2:]],
    }


@pytest.mark.parametrize("order", list(_envelope_orders()))
def test_envelopes_out_of_order_keep_the_schema_and_every_claim(order, validator):
    data = interchange(_envelope_orders()[order])
    code, result = report(data)
    assert code == 1
    errors = [e.message for e in validator.iter_errors(result)]
    assert not errors
    named = [p for p in problems(result) if p["code"] == "env-claim-outside-transaction"]
    assert walked(result) == result["files"][0]["summary"]["claims"]
    assert walked(result) + len(named) == 1  # the claim is reported, or named where it stands
    for claim in scrubber.iter_claims(data.encode("latin-1")):
        assert claim.record.claim.id == "ORDER1"
    check_case(data.encode("latin-1"), validator)


def test_claims_outside_any_transaction_set_are_named_one_by_one():
    body = claim_837p("STRAY1")
    clm = next(i for i, s in enumerate(body) if s.startswith("CLM*"))
    claim = body[clm:-2]
    stray = [s for s in body[:clm] if not s.startswith("ST*")] + claim + \
        [s.replace("STRAY1", "STRAY2") for s in claim]
    _, result = report(interchange(stray + body[-1:]))
    named = [p for p in problems(result) if p["code"] == "env-claim-outside-transaction"]
    assert ["STRAY1" in named[0]["message"], "STRAY2" in named[1]["message"]] == [True, True]
    assert all(p["location"]["line"] > 1 for p in named)


CONTROL_ID = "\x1b]0;TITLE\x07\x1b[2J"


@pytest.mark.parametrize("fmt", ["text", "html"])
def test_control_characters_in_a_claim_id_are_shown_escaped(fmt):
    body = [s.replace("@ID@", CONTROL_ID) for s in claim_837p(
        "@ID@", lines=[("96523", "60", "2", "20261102")])]
    result = scrubber.scrub(interchange(body).encode("latin-1"), conformance=False)
    assert result.rejected
    out = io.StringIO()
    writer = (TextSummary if fmt == "text" else HtmlReport)(out)
    feed("in\x1b[2J.x12", result.events, [writer])
    writer.close()
    text = out.getvalue()
    if fmt == "html":  # the claim table's rows travel as data, shown by the page's script
        assert "\x1b" not in text and "in\\x1b[2J.x12" in text  # the file, in its section
        (row,) = page_data(text)["claims"]
        text = row[1]
    assert "\x1b" not in text and "\x07" not in text
    assert "\\x1b]0;TITLE\\x07\\x1b[2J" in text


def test_a_huge_segment_in_an_irregular_block_is_read_not_looped_on(validator):
    """A segment longer than the tokenizer's small retry block, where the pattern breaks."""
    body = claim_837p("LONG1")
    body.insert(3, "NTE*ADD*" + ":".join(["A1"] * 6000))  # 18 KB in one segment
    text = interchange(body).replace("~\nBHT", "~\n\n~\nBHT")  # an empty segment: irregular
    data = text.encode("latin-1")
    events = list(scrubber.model.read(data))
    assert any(getattr(e, "code", "") == "syntax-empty-segment" for e in events)
    check_case(data, validator)


def test_a_problem_quotes_a_huge_segment_only_in_part():
    body = claim_837p("QUOTE1")
    body.insert(1, "ZZZ*" + "Q" * 100000)  # outside any transaction set
    _, result = report(interchange(body))
    quoted = [p["segment_text"] for p in problems(result) if p.get("segment_text")]
    assert quoted and max(len(q) for q in quoted) < 2100
    assert any("more characters" in q for q in quoted)


MEASURE = """
import sys
from scrubber.cli import main
sys.argv = ["scrub", "check", sys.argv[1], "--format", "json", "--no-ledger"]
try:
    main()
except SystemExit as end:
    code = end.code
# VmHWM, not ru_maxrss: getrusage keeps the peak of the forking parent across exec
peak = next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM"))
sys.stderr.write(f"exit {code} peak {peak}\\n")
"""


@pytest.mark.parametrize("filler", [b"A" * (30 << 20), b"*A" * (15 << 20)],
                         ids=["30 MB element", "15 M elements"])
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM from /proc")
def test_a_huge_segment_is_skipped_in_bounded_memory(tmp_path, filler):
    import subprocess

    body = claim_837p("BIG1")
    text = interchange(body)
    head, _, tail = text.partition("HI*ABK:Z452~")
    path = tmp_path / "big.x12"
    with open(path, "wb") as out:
        out.write(head.encode() + b"NTE*ADD*" + filler + b"~\n" + b"HI*ABK:Z452~" +
                  tail.encode())
    result = subprocess.run([sys.executable, "-c", MEASURE, str(path)], capture_output=True,
                            text=True, timeout=300)
    code, peak_kb = result.stderr.split()[-3], int(result.stderr.split()[-1])
    assert code == "1", result.stderr[-2000:]
    report = json.loads(result.stdout)
    codes = [p["code"] for p in problems(report)]
    assert "syntax-segment-too-long" in codes
    assert walked(report) == 1  # the claim around it is still read
    assert len(result.stdout) < 100_000
    assert peak_kb < 120_000, f"peak {peak_kb // 1024} MB for a 30 MB segment"


def test_a_set_with_thousands_of_ig_errors_lists_a_thousand_and_counts_the_rest():
    body = claim_837p("MANY1")
    at = next(i for i, s in enumerate(body) if s.startswith("CLM*")) + 1
    body[at:at] = ["ZZ1*X"] * 1200
    body[-2] = f"SE*{len(body) - 2}*0001"  # SE01 recounted: the IG errors are the only fault
    _, result = report(interchange(body))
    found = problems(result)
    assert sum(p["code"].startswith("ig-") and p["code"] != "ig-more-errors"
               for p in found) == 1000
    (more,) = [p for p in found if p["code"] == "ig-more-errors"]
    assert int(more["message"].split()[0]) >= 200  # every ZZ1 beyond the first 1,000
