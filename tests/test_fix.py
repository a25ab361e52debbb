"""scrub fix: mechanical faults mended, nothing billed changed, a second run changes nothing.

300 generated mutants (tests/mutate.py: one defect each), each with a mechanical
fault laid over it: the fix is idempotent; the fixed file's scrub no longer shows
what was fixed and shows nothing new; no safe fix changes an amount, a code, a
unit count or a date (the claims are read before and after and compared).
"""

from __future__ import annotations

import io
import random
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner
from mutate import mutants

from scrubber.api import scrub
from scrubber.cli import main
from scrubber.fix import FIXERS, fix, fix_file
from scrubber.model import ClaimRecord, read
from scrubber.options import ScrubOptions
from scrubber.rules.registry import all_rules

ROOT = Path(__file__).resolve().parent.parent
OPTIONS = ScrubOptions(data=None)
MECHANICAL = ("bom", "crlf", "blank-lines", "trailing-separator", "lower-case", "se-count",
              "se-control", "ge-count", "iea-control", "unterminated", "wrapped", "none")


def fault(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    """One mechanical fault laid over an 837 (``*`` elements, ``~`` terminators)."""
    kind = rng.choice(MECHANICAL)
    text = data.decode("latin-1")
    segments = text.split("~")
    body = [i for i, s in enumerate(segments) if s.strip() and s.strip()[:3] not in
            ("ISA", "GS*", "ST*", "SE*", "GE*", "IEA")]
    if kind == "bom":
        text = "\ufeff".encode().decode("latin-1") + text
    elif kind == "crlf":
        i = rng.choice(body)
        segments[i] = "\r\n" + segments[i].lstrip("\r\n")
        text = "~".join(segments)
    elif kind == "blank-lines":
        i = rng.choice(body)
        segments[i] = "\n\n   " + segments[i].lstrip("\r\n")
        text = "~".join(segments)
    elif kind == "trailing-separator":
        i = rng.choice(body)
        segments[i] += "*" * rng.randint(1, 3)
        text = "~".join(segments)
    elif kind == "lower-case":
        for i in body:
            parts = segments[i].split("*")
            if parts[0].strip() == "DTP" and len(parts) > 2:
                parts[2] = parts[2].lower()
                segments[i] = "*".join(parts)
                break
        text = "~".join(segments)
    elif kind in ("se-count", "se-control", "ge-count", "iea-control"):
        sid = {"se": "SE", "ge": "GE", "iea": "IEA"}[kind.split("-")[0]]
        element = 1 if kind.endswith("count") else 2
        for i, segment in enumerate(segments):
            parts = segment.split("*")
            if parts[0].strip() == sid and len(parts) > element:
                parts[element] = parts[element] + "7"
                segments[i] = "*".join(parts)
                break
        text = "~".join(segments)
    elif kind == "unterminated":
        text = text.rstrip("\r\n").rstrip("~")
    elif kind == "wrapped":
        i = rng.choice(body)
        if len(segments[i]) > 12:
            segments[i] = segments[i][:10] + "\r\n" + segments[i][10:]
        text = "~".join(segments)
    return kind, text.encode("latin-1")


def fixed(data: bytes, **kwargs) -> tuple[bytes, tuple]:
    out = io.BytesIO()
    result = fix(data, out, **kwargs)
    return out.getvalue(), result.fixes


def billed(data: bytes) -> list[tuple]:
    """What each claim bills, as sent: charges, codes, modifiers, units, dates."""
    out = []
    for event in read(data):
        if event.__class__ is ClaimRecord:
            claim = event.claim
            out.append((claim.id, claim.charge_text, tuple(
                (line.procedure_qualifier, line.procedure, line.modifiers, line.revenue_code,
                 line.charge_text, line.unit_basis, line.units_text,
                 tuple(d.text for d in line.dates)) for line in claim.lines),
                tuple(d.text for d in claim.dates), tuple(d.code for d in claim.diagnoses)))
    return out


def said(data: bytes) -> Counter:
    """Every problem code the scrub says about ``data`` and every rule that fires on its
    claims, counted. The rules are run without the guide check: a set the check rejects
    holds its claims from the rules, so mending its envelope would show findings that were
    there all along as if they were new."""
    checked = scrub(data, options=OPTIONS)
    judged = scrub(data, options=OPTIONS, conformance=False)
    return Counter([p.code for p in checked.problems]
                   + [f.rule for c in judged.claims for f in c.findings])


CASES = mutants(300, seed=28)


def test_fix_on_300_mutants_is_idempotent_and_changes_nothing_billed() -> None:
    rng = random.Random(28)
    applied: Counter = Counter()
    for case in CASES:
        kind, data = fault(case.data, rng)
        once, fixes = fixed(data)
        twice, again = fixed(once)
        assert not again and twice == once, (case.name, kind, again)
        assert billed(once) == billed(data), (case.name, kind, fixes)
        assert all(f.safe for f in fixes)
        applied.update(f.rule for f in fixes)
    # the faults laid over the mutants were found and mended
    for rule in ("syntax-bom", "syntax-whitespace", "ig-trailing-separator", "ig-element",
                 "env-se-count", "env-se-control", "env-ge-count", "env-iea-control",
                 "syntax-unterminated"):
        assert applied[rule] > 0, (rule, applied)


def test_a_fixed_file_no_longer_shows_what_was_fixed_and_nothing_new() -> None:
    rng = random.Random(2028)
    checked = 0
    for case in CASES[:120]:
        kind, data = fault(case.data, rng)
        once, fixes = fixed(data)
        if not fixes:
            continue
        before, after = said(data), said(once)
        new = +(after - before)
        assert not new, (case.name, kind, new, [f.describe() for f in fixes])
        for rule in {f.rule for f in fixes}:
            if before[rule]:
                assert after[rule] < before[rule], (case.name, rule)
        checked += 1
    assert checked > 60


def test_a_clean_file_comes_out_byte_for_byte() -> None:
    for path in sorted((ROOT / "fixtures").glob("837*.x12")):
        data = path.read_bytes()
        out, fixes = fixed(data)
        if path.name != "837p-bom.x12":
            assert out == data and not fixes, (path.name, fixes)
        else:
            assert [f.rule for f in fixes] == ["syntax-bom", "syntax-whitespace"]
            assert out == data[3:].lstrip(b"\r\n ")


def test_unsafe_fixes_only_when_asked(tmp_path: Path) -> None:
    source = ROOT / "fixtures/rules/snip-claim-balance.fail.837p.x12"
    target = tmp_path / "fixed.x12"
    result, left = fix_file(source, target)
    assert left >= 1 and not [f for f in result.fixes if not f.safe]
    assert target.read_bytes() == source.read_bytes()
    result, left = fix_file(source, target, unsafe=True)
    [unsafe] = [f for f in result.fixes if not f.safe]
    assert unsafe.rule == "snip-claim-balance" and unsafe.where == "CLM02"
    assert "snip-claim-balance" not in said(target.read_bytes())
    units = ROOT / "fixtures/rules/96523-units.fail.837p.x12"
    result, _ = fix_file(units, target, unsafe=True)
    assert [f.rule for f in result.fixes if not f.safe] == ["96523-units"]
    assert said(target.read_bytes())["96523-units"] < said(units.read_bytes())["96523-units"]


def test_cli_fix_lists_diffs_and_writes_whole(tmp_path: Path) -> None:
    data = (ROOT / "fixtures/837p-multi.x12").read_bytes()
    broken = b"\xef\xbb\xbf" + data.replace(b"SE*74*0001", b"SE*7*0001")
    (tmp_path / "in.x12").write_bytes(broken)
    runner = CliRunner()
    got = runner.invoke(main, ["fix", str(tmp_path / "in.x12"), "-o",
                               str(tmp_path / "out.x12"), "--diff"])
    assert got.exit_code == 0, got.output
    assert "env-se-count: line 76, SE01: '7' -> '74'" in got.output
    assert "-SE*7*0001~" in got.output and "+SE*74*0001~" in got.output
    assert (tmp_path / "out.x12").read_bytes() == data
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    again = runner.invoke(main, ["fix", str(tmp_path / "out.x12")])
    assert again.exit_code == 0 and "0 fixes" in again.output
    (tmp_path / "again.x12").write_bytes(broken)
    in_place = runner.invoke(main, ["fix", str(tmp_path / "again.x12"), "-o",
                                    str(tmp_path / "again.x12"), "--diff"])
    assert "+SE*74*0001~" in in_place.output
    assert (tmp_path / "again.x12").read_bytes() == data
    listed = runner.invoke(main, ["fix", "--list"])
    assert [line.split()[0] for line in listed.output.splitlines()] == [f.rule for f in FIXERS]
    missing = runner.invoke(main, ["fix", str(tmp_path / "missing.x12"), "-o",
                                   str(tmp_path / "x.x12")])
    assert missing.exit_code == 2


def test_rules_declare_their_fix() -> None:
    fixes = {r.id: r.fix for r in all_rules() if r.fix}
    assert set(fixes) == {f.rule for f in FIXERS if f.rule in {r.id for r in all_rules()}}
    table = CliRunner().invoke(main, ["rules"]).output.splitlines()
    row = next(line for line in table if line.startswith("snip-claim-balance "))
    assert "  unsafe  " in row
    assert "fix:           sometimes available, unsafe" in CliRunner().invoke(
        main, ["rules", "snip-claim-balance"]).output


@pytest.mark.parametrize("name", ["broken-se-count.x12", "broken-control-mismatch.x12"])
def test_broken_fixtures_are_mended(name: str) -> None:
    data = (ROOT / "fixtures" / name).read_bytes()
    before = said(data)
    out, fixes = fixed(data)
    assert fixes
    after = said(out)
    assert not +(after - before)
    assert not [code for code in after if code.startswith("env-")]
