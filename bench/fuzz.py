"""Mutation fuzzer: damaged and hostile 837s must never crash the scrub or break its output.

    python bench/fuzz.py --seed 7 --count 500            # any seed, any count
    python bench/fuzz.py --seed 7 --count 500 --keep out/ # keep each failing input

Each case starts from a small valid 837P or 837I of our own generator
(bench/gen837.py: fictional people, NPIs with valid check digits) and applies
one to three mutations: truncation, byte flips, duplicated / deleted / swapped
segments, swapped delimiters, huge elements and components, NUL bytes,
UTF-16, HL trees with bad parents, envelopes out of order, and hostile values
(our delimiters, terminal escapes, 1E+999999999, 5,000 digits, non-ASCII).
Then ``check_case`` asserts what docs/reliability.md promises:

- ``scrub check --format json`` exits 0, 1 or 2 with no traceback, and its
  JSON is valid against docs/report.schema.json;
- walking files -> interchanges -> groups -> transactions -> claims finds
  exactly ``summary.claims``, and every CLM segment of the input is a claim of
  the report or named by a located problem;
- ``scrubber.scrub`` does not raise; each acknowledgement it writes (277CA,
  999, TA1) reads back as whole interchanges of acknowledgement segments;
- the text and HTML reports render, with no control character in them;
- time and output size stay bounded (``LIMITS``).

The same function runs in the suite with a fixed seed and count
(tests/test_fuzz.py), so CI is reproducible; run it here with fresh seeds.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import re
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from gen837 import generate  # noqa: E402

SCHEMA = HERE.parent / "docs" / "report.schema.json"
ACK_SEGMENTS = frozenset((
    "ISA", "GS", "ST", "SE", "GE", "IEA", "TA1",  # envelopes and the TA1
    "AK1", "AK2", "IK3", "CTX", "IK4", "IK5", "AK9",  # 999
    "BHT", "HL", "NM1", "TRN", "DTP", "STC", "QTY", "AMT", "REF", "SVC",  # 277CA
))
#: bounds a case must stay within: seconds, and output bytes per input byte (plus a floor)
LIMITS = {"seconds": 20.0, "output_per_input": 40, "output_floor": 256 * 1024}
HOSTILE = (
    "~IEA*1*000000001~ISA*INJECTED", "*:^~", "\x1b]0;pwned\x07\x1b[2J", "1E+999999999",
    "1E999999", "9" * 5000, "-0", "NaN", "Infinity", "\u00e9\u00b2", "\x00", "\x9b31m",
    "A" * 70000, "..", "-", "+1", "1_000", " 12 ", "\u2028",
)


# -- mutations ---------------------------------------------------------------------------
Mutation = Callable[[bytes, random.Random], bytes]


def _segments(data: bytes) -> tuple[list[bytes], bytes]:
    """The input split on its terminator (the 106th byte of a sound ISA)."""
    term = data[105:106] if len(data) > 106 and data.startswith(b"ISA") else b"~"
    return data.split(term), term


def _join(parts: list[bytes], term: bytes) -> bytes:
    return term.join(parts)


def _pick(parts: list[bytes], rng: random.Random, prefix: bytes | None = None) -> int:
    body = [i for i, p in enumerate(parts) if p.strip() and
            (prefix is None or p.lstrip().startswith(prefix))]
    return rng.choice(body) if body else 0


def truncate(data: bytes, rng: random.Random) -> bytes:
    return data[:rng.randrange(len(data) + 1)]


def flip_bytes(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        if out:
            out[rng.randrange(len(out))] = rng.randrange(256)
    return bytes(out)


def duplicate_segment(data: bytes, rng: random.Random) -> bytes:
    parts, term = _segments(data)
    i = _pick(parts, rng)
    parts[i:i] = [parts[i]] * rng.choice((1, 1, 2, 50))
    return _join(parts, term)


def delete_segment(data: bytes, rng: random.Random) -> bytes:
    parts, term = _segments(data)
    prefix = rng.choice((None, None, b"GS", b"GE", b"ST", b"SE", b"HL", b"IEA", b"ISA"))
    del parts[_pick(parts, rng, prefix)]
    return _join(parts, term)


def swap_segments(data: bytes, rng: random.Random) -> bytes:
    parts, term = _segments(data)
    i, j = _pick(parts, rng), _pick(parts, rng)
    parts[i], parts[j] = parts[j], parts[i]
    return _join(parts, term)


def move_envelope(data: bytes, rng: random.Random) -> bytes:
    """A GS, ST or ISA moved after a claim (or into another set)."""
    parts, term = _segments(data)
    head = _pick(parts, rng, rng.choice((b"GS", b"ST", b"ISA", b"GE", b"SE")))
    segment = parts.pop(head)
    parts.insert(min(len(parts), _pick(parts, rng, b"CLM") + rng.randint(0, 3)), segment)
    return _join(parts, term)


def swap_delimiters(data: bytes, rng: random.Random) -> bytes:
    a, b = rng.sample((b"*", b":", b"^", b"~", b"|", b"\n"), 2)
    start = 106 if rng.random() < 0.5 else 0  # the body only, or the ISA too
    body = data[start:].replace(a, b"\x00\x01").replace(b, a).replace(b"\x00\x01", b)
    return data[:start] + body


def _set_element(data: bytes, rng: random.Random, value: bytes,
                 prefix: bytes | None = None) -> bytes:
    parts, term = _segments(data)
    i = _pick(parts, rng, prefix)
    elements = parts[i].split(b"*")
    if len(elements) > 1:
        elements[rng.randrange(1, len(elements))] = value
    parts[i] = b"*".join(elements)
    return _join(parts, term)


def huge_element(data: bytes, rng: random.Random) -> bytes:
    size = rng.choice((5000, 70000, 400000))
    value = rng.choice((b"9", b"X", b"1.")) * size
    return _set_element(data, rng, value, rng.choice((None, b"LX", b"CLM", b"SV1", b"HL")))


def huge_components(data: bytes, rng: random.Random) -> bytes:
    return _set_element(data, rng, b":".join([b"A1"] * rng.choice((500, 50000))),
                        rng.choice((None, b"HI", b"SV1", b"CLM")))


def nul_bytes(data: bytes, rng: random.Random) -> bytes:
    at = rng.randrange(len(data) + 1)
    return data[:at] + b"\x00" * rng.choice((1, 3, 4096)) + data[at:]


def utf16(data: bytes, rng: random.Random) -> bytes:
    text = data.decode("latin-1")
    return text.encode(rng.choice(("utf-16", "utf-16-le", "utf-16-be")))


def bad_hl_parent(data: bytes, rng: random.Random) -> bytes:
    value = rng.choice((b"", b"99", b"0", b"-1", b"1", b"3", b"A"))
    parts, term = _segments(data)
    i = _pick(parts, rng, b"HL")
    elements = parts[i].split(b"*")
    if len(elements) > 2:
        elements[rng.choice((1, 2))] = value
    parts[i] = b"*".join(elements)
    return _join(parts, term)


def hostile_value(data: bytes, rng: random.Random) -> bytes:
    value = rng.choice(HOSTILE).encode("utf-8")
    prefix = rng.choice((None, b"CLM", b"NM1", b"ST", b"GS", b"LX", b"SV1", b"SV2", b"REF"))
    return _set_element(data, rng, value, prefix)


def hostile_isa(data: bytes, rng: random.Random) -> bytes:
    """A sender id (ISA06) or control number (ISA13) holding our delimiters, at ISA width."""
    if len(data) < 106:
        return data
    value = rng.choice((b"Z~IEA*1*1~ISA*Q", b"1~IEA*1*1", b"\xe9\xe9\xe9"))
    at = {b"Z": 35, b"1": 90, b"\xe9": 35}[value[:1]]
    return data[:at] + value + data[at + len(value):]


MUTATIONS: tuple[Mutation, ...] = (
    truncate, flip_bytes, duplicate_segment, delete_segment, swap_segments, move_envelope,
    swap_delimiters, huge_element, huge_components, nul_bytes, utf16, bad_hl_parent,
    hostile_value, hostile_value, hostile_isa,
)


def make_case(seed: int, number: int) -> tuple[bytes, list[str]]:
    """Case ``number`` of ``seed``: the input and the names of its mutations."""
    rng = random.Random(f"fuzz-{seed}-{number}")
    out = io.BytesIO()
    generate(out, claims=rng.randint(1, 4), kind=rng.choice("PI"), seed=rng.randrange(1000),
             claims_per_transaction=rng.choice((1, 2, 5000)))
    data = out.getvalue()
    applied = []
    for mutation in rng.sample(MUTATIONS, rng.randint(1, 3)):
        if mutation is utf16 and applied:
            continue  # last or alone: the others work on single bytes
        data = mutation(data, rng)
        applied.append(mutation.__name__)
    return data, applied


# -- what every case must satisfy ------------------------------------------------------------
@dataclass(frozen=True)
class Finding:
    """A case that broke a promise."""

    seed: int
    number: int
    mutations: tuple[str, ...]
    what: str


def ack_interchanges(data: bytes) -> list[list]:
    """An acknowledgement read back with our tokenizer: its interchanges, each a segment list.

    Raises AssertionError unless ``data`` is whole interchanges (ISA ... IEA,
    IEA02 = ISA13) of acknowledgement segments: a value that smuggled a
    delimiter in shows up as a foreign segment or a second ISA.
    """
    from scrubber.x12 import SyntaxProblem, Tokenizer

    assert data.isascii(), "an acknowledgement is ASCII"
    found: list[list] = []
    current: list | None = None
    for item in Tokenizer(io.BytesIO(data)):
        assert not isinstance(item, SyntaxProblem), item
        assert item.id in ACK_SEGMENTS, f"foreign segment {item.id!r}: {item.elements}"
        if item.id == "ISA":
            assert current is None, "an ISA inside an interchange"
            assert len(item.elements) == 17, item.elements
            current = [item]
            continue
        assert current is not None, f"{item.id} outside an interchange"
        current.append(item)
        if item.id == "IEA":
            assert item.get(2) == current[0].get(13), "IEA02 is not ISA13"
            found.append(current)
            current = None
    assert current is None, "an interchange without its IEA"
    return found


def _clm_segments(data: bytes) -> int:
    """CLM segments as our reader sees them (each interchange's own delimiters)."""
    from scrubber.x12 import Tokenizer

    return sum(1 for item in Tokenizer(io.BytesIO(data)) if getattr(item, "id", "") == "CLM")


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def check_case(data: bytes, validator=None) -> None:
    """Assert every promise on one input (see the module docstring)."""
    import tempfile

    from click.testing import CliRunner

    import scrubber
    from scrubber.cli import main

    started = time.monotonic()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "case.x12"
        path.write_bytes(data)
        result = CliRunner().invoke(main, ["check", str(path), "--format", "json",
                                           "--no-ledger"])
        assert result.exception is None or isinstance(result.exception, SystemExit), \
            "".join(traceback.format_exception(result.exception))
        assert result.exit_code in (0, 1, 2), result.exit_code
        assert "Traceback" not in result.output
        report = json.loads(result.stdout)
    if validator is not None:
        errors = [e.message[:200] for e in validator.iter_errors(report)]
        assert not errors, errors
    files = report["files"]
    walked = sum(len(t["claims"]) for f in files for i in f["interchanges"]
                 for g in i["groups"] for t in g["transactions"])
    summary = sum(f["summary"]["claims"] for f in files) if all("summary" in f for f in files) \
        else walked
    assert walked == summary, f"walking finds {walked} claims, summary says {summary}"
    problems = [p for f in files for p in _problems(f)]
    named = sum(1 for p in problems if p["code"] == "env-claim-outside-transaction")
    dropped = sum(1 for p in problems if p["code"] in _CLAIMS_DROPPED)
    clm = _clm_segments(data)
    assert walked + named >= clm or dropped, \
        f"{clm} CLM segments, {walked} claims reported and {named} named in problems"
    size = LIMITS["output_floor"] + LIMITS["output_per_input"] * len(data)
    assert len(result.stdout) <= size, f"a {len(result.stdout)}-byte report"

    scrubbed = scrubber.scrub(data)
    for name in ("ack_277ca", "ack_999", "ack_ta1"):
        ack = getattr(scrubbed, name)
        assert len(ack) <= size, f"a {len(ack)}-byte {name}"
        if ack:
            try:
                ack_interchanges(ack)
            except AssertionError as exc:
                raise AssertionError(f"{name}: {exc}") from None
    for fmt in ("text", "html"):
        out = io.StringIO()
        with tempfile.TemporaryDirectory() as folder:
            scrubbed.write_report(Path(folder) / f"r.{fmt}", fmt)
            text = (Path(folder) / f"r.{fmt}").read_text(encoding="utf-8")
        out.write(text)
        bad = _CONTROL.search(text)
        assert bad is None, f"{fmt} report carries control character {bad.group()!r}"
        assert len(text) <= size, f"a {len(text)}-byte {fmt} report"
    seconds = time.monotonic() - started
    assert seconds <= LIMITS["seconds"], f"{seconds:.1f} s"


#: problems that stand for claims they do not name: the reader could not go on, or the
#: transaction set holding them is not a 5010 837 and is not read (the problem locates the set)
_CLAIMS_DROPPED = frozenset(("syntax-binary", "syntax-no-isa", "syntax-empty", "syntax-junk",
                             "env-wrong-delimiter", "syntax-unreadable",
                             "env-unsupported-transaction", "env-unsupported-version"))


def _problems(node: object) -> list[dict]:
    """Every problem anywhere in a report (files, interchanges, groups, transactions)."""
    found: list[dict] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "problems" and isinstance(value, list):
                found += [p for p in value if isinstance(p, dict)]
            elif isinstance(value, (dict, list)):
                found += _problems(value)
    elif isinstance(node, list):
        for item in node:
            found += _problems(item)
    return found


def schema_validator():
    import jsonschema

    schema = json.loads(SCHEMA.read_text())
    return jsonschema.validators.validator_for(schema)(schema)


def run(seed: int, count: int, keep: Path | None = None,
        report: Callable[[str], None] = print) -> list[Finding]:
    """Run ``count`` cases of ``seed``; the ones that broke a promise."""
    validator = schema_validator()
    findings = []
    for number in range(count):
        data, mutations = make_case(seed, number)
        try:
            check_case(data, validator)
        except Exception as exc:  # a finding, whatever broke
            what = "".join(traceback.format_exception_only(exc)).strip()[:2000]
            findings.append(Finding(seed, number, tuple(mutations), what))
            report(f"case {seed}/{number} ({', '.join(mutations)}): {what}")
            if keep is not None:
                keep.mkdir(parents=True, exist_ok=True)
                (keep / f"fuzz-{seed}-{number}.x12").write_bytes(data)
    return findings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--keep", type=Path, help="write each failing input here")
    args = parser.parse_args(argv)
    started = time.monotonic()
    findings = run(args.seed, args.count, args.keep)
    print(f"seed {args.seed}: {args.count} cases, {len(findings)} findings, "
          f"{time.monotonic() - started:.1f} s")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
