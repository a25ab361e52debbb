"""bench/gen837.py writes valid 837s: pyx12 accepts them and the counts add up."""

from __future__ import annotations

import io
import logging
import re
import sys
from decimal import Decimal
from pathlib import Path

import pytest
import pyx12.params
import pyx12.x12n_document

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from gen837 import generate  # noqa: E402


@pytest.fixture(autouse=True)
def quiet_pyx12():
    log = logging.getLogger("pyx12")
    log.addHandler(logging.NullHandler())
    log.propagate = False


def luhn_full(number: str) -> bool:
    """Plain Luhn over the whole number (check digit included) -- independent of gen837."""
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def segments(text: str) -> list[list[str]]:
    return [s.strip().split("*") for s in text.split("~") if s.strip()]


@pytest.fixture(scope="module", params=["P", "I"])
def generated(request, tmp_path_factory):
    kind = request.param
    path = tmp_path_factory.mktemp("gen") / f"837{kind}.x12"
    counts = generate(path, 40, kind, seed=3, claims_per_transaction=15)
    return kind, path, counts, path.read_text("ascii")


def test_luhn_helper_knows_a_valid_npi():
    assert luhn_full("80840" + "1234567893")
    assert not luhn_full("80840" + "1234567890")


def test_pyx12_accepts_the_file(generated):
    _, path, _, _ = generated
    fd_json = io.StringIO()
    ok = pyx12.x12n_document.x12n_document(pyx12.params.params(), str(path), io.StringIO(),
                                           None, None, io.StringIO(), fd_json)
    assert ok, fd_json.getvalue()[:2000]


def test_counts_match_the_text(generated):
    kind, path, counts, text = generated
    segs = segments(text)
    ids = [s[0] for s in segs]
    assert counts["claims"] == ids.count("CLM") == 40
    assert counts["lines"] == ids.count("LX")
    assert counts["transactions"] == ids.count("ST") == 3  # 15 + 15 + 10
    assert counts["bytes"] == path.stat().st_size
    assert counts["segments"] == len(segs)
    assert len(text.split("~")[0]) + 1 == 106  # ISA with its terminator
    impl = {"P": "005010X222A1", "I": "005010X223A2"}[kind]
    assert all(s[3] == impl for s in segs if s[0] == "ST")


def test_claims_balance_and_lines_are_numbered(generated):
    kind, _, _, text = generated
    segs = segments(text)
    charge_at = 2 if kind == "P" else 3  # SV102 / SV203
    claim = None
    for s in segs + [["CLM", "END", "0"]]:
        if s[0] == "CLM":
            if claim:
                assert claim["total"] == sum(claim["lines"]), claim
                assert claim["lx"] == list(range(1, len(claim["lx"]) + 1))
                assert claim["ref6r"] == len(claim["lx"])
            claim = {"total": Decimal(s[2]), "lines": [], "lx": [], "ref6r": 0}
        elif s[0] == "LX":
            claim["lx"].append(int(s[1]))
        elif s[0] in ("SV1", "SV2"):
            claim["lines"].append(Decimal(s[charge_at]))
        elif s[0] == "REF" and s[1] == "6R":
            claim["ref6r"] += 1


def test_every_npi_has_a_valid_check_digit(generated):
    _, _, _, text = generated
    npis = [s[9] for s in segments(text) if s[0] == "NM1" and len(s) > 9 and s[8] == "XX"]
    assert npis
    assert all(re.fullmatch(r"\d{10}", n) and luhn_full("80840" + n) for n in npis), npis


def test_dates_are_2026_before_nov_28(generated):
    _, _, _, text = generated
    dates = []
    for s in segments(text):
        if s[0] == "DTP":  # DTP03: D8 date or RD8 range
            dates += s[3].split("-")
        elif s[0] in ("BHT", "GS"):  # BHT04, GS04
            dates.append(s[4])
    assert dates
    assert all(re.fullmatch(r"2026\d{4}", d) and d < "20261128" for d in dates), dates


def test_same_seed_same_bytes():
    one, two, other = io.BytesIO(), io.BytesIO(), io.BytesIO()
    assert generate(one, 30, "P", seed=9) == generate(two, 30, "P", seed=9)
    generate(other, 30, "P", seed=10)
    assert one.getvalue() == two.getvalue()
    assert other.getvalue() != one.getvalue()


def test_mix_of_dependents_and_96523():
    buf = io.BytesIO()
    counts = generate(buf, 400, "P", seed=1)
    text = buf.getvalue().decode("ascii")
    assert 0 < counts["dependent_claims"] < 400
    assert 0 < counts["claims_96523"] < 100
    assert text.count("HC:96523") == counts["claims_96523"]
    assert "NTE*ADD*" in text
    assert len(set(re.findall(r"NM1\*85\*2\*[^*]+\*+XX\*(\d+)", text))) > 2


def test_the_reader_reads_what_the_generator_writes(generated):
    model = pytest.importorskip("scrubber.model")
    _, path, counts, _ = generated
    events = list(model.read(str(path)))
    assert sum(isinstance(e, model.ClaimRecord) for e in events) == counts["claims"]
