"""Checks on the hand-made X12 fixtures in fixtures/.

Uses only pyx12 and the standard library (never the scrubber package), so the
fixtures can be trusted independently of the parser that is tested with them.
"""
import io
import json
import logging
import random
import re
from decimal import Decimal
from pathlib import Path

import pytest

FIX = Path(__file__).resolve().parent.parent / "fixtures"
MANIFEST = json.loads((FIX / "MANIFEST.json").read_text())
BY_FILE = {e["file"]: e for e in MANIFEST}
VALID = [e["file"] for e in MANIFEST if e["kind"] != "broken"]
PYX12_CLEAN = [e["file"] for e in MANIFEST if e["valid_pyx12"]]
PYX12_DIRTY = [e["file"] for e in MANIFEST if not e["valid_pyx12"]]
TODAY = "20261128"

_log = logging.getLogger("pyx12")
_log.addHandler(logging.NullHandler())
_log.propagate = False


# --------------------------------------------------------------------- helpers
def npi_ok(npi):
    """NPI check digit: Luhn over '80840' + the ten NPI digits."""
    if len(npi) != 10 or not npi.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed("80840" + npi)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def test_npi_helper():
    assert npi_ok("1234567893")  # the CMS worked example
    assert not npi_ok("1234567890")
    assert not npi_ok("123456789")


def read_text(name):
    """File text, or None when it is not UTF-8 (the binary fixture)."""
    try:
        return (FIX / name).read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        return None


class Seg:
    def __init__(self, text, elem, comp, ic):
        self.text = text
        self.el = text.split(elem)
        self.comp = comp
        self.ic = ic  # interchange index, -1 when there is no ISA

    @property
    def id(self):
        return self.el[0]

    def __getitem__(self, i):
        return self.el[i] if i < len(self.el) else ""


def tokenize(text):
    """Split text into segments, re-reading the delimiters at every ISA.

    Tolerant on purpose (short ISA, missing ISA, no final terminator).
    Returns (segments, interchanges) with interchanges a list of
    dicts: start, end (offsets in text), isa_len (incl. terminator).
    """
    segs, ics = [], []
    elem, comp, term = "*", ":", "~"
    pos, n, ic = 0, len(text), -1
    while pos < n:
        while pos < n and text[pos].isspace():
            pos += 1
        if pos >= n:
            break
        if text.startswith("ISA", pos):
            elem = text[pos + 3]
            parts = text[pos:].split(elem, 16)
            comp, term = parts[16][0], parts[16][1]
            ic += 1
            # 16 elements, separator, ISA16, terminator
            ics.append({"start": pos, "end": None, "isa_len": len(elem.join(parts[:16])) + 3})
        end = text.find(term, pos)
        stop = n if end == -1 else end
        seg = text[pos:stop].strip()
        if seg:
            s = Seg(seg, elem, comp, ic)
            segs.append(s)
            if s.id == "IEA" and ics:
                ics[-1]["end"] = stop + 1
        pos = stop + 1
    for k, c in enumerate(ics):
        if c["end"] is None:
            c["end"] = ics[k + 1]["start"] if k + 1 < len(ics) else n
    return segs, ics


def claims_from_text(segs):
    """Claims found by a plain walk over the segments."""
    claims, cur = [], None
    billing = patient = None
    for s in segs:
        if s.id == "NM1" and s[1] == "85":
            billing = s[9]
        elif s.id == "NM1" and s[1] in ("IL", "QC"):
            patient = s[3]
        elif s.id == "CLM":
            cur = {"id": s[1], "charge": s[2], "lines": 0, "line_charges": [],
                   "patient_last": patient, "billing_npi": billing}
            claims.append(cur)
        elif s.id == "LX" and cur is not None:
            cur["lines"] += 1
        elif s.id in ("SV1", "SV2") and cur is not None:
            cur["line_charges"].append(s[2] if s.id == "SV1" else s[3])
        elif s.id in ("SE", "HL", "IEA", "GE"):
            cur = None
    return claims


def pyx12_ok(src):
    """pyx12 validation of a fixture path (Path) or of X12 text (str)."""
    import pyx12.params
    import pyx12.x12n_document

    src = str(src) if isinstance(src, Path) else io.StringIO(src)
    return pyx12.x12n_document.x12n_document(
        pyx12.params.params(), src, io.StringIO(), None, None, io.StringIO())


# --------------------------------------------------------------------- manifest
def test_manifest_lists_every_fixture():
    on_disk = {p.name for p in FIX.iterdir() if p.is_file()} - {"MANIFEST.json", "README.md"}
    assert on_disk == set(BY_FILE)
    readme = (FIX / "README.md").read_text()
    for name in BY_FILE:
        assert name in readme, name


@pytest.mark.parametrize("name", sorted(BY_FILE))
def test_manifest_shape(name):
    e = BY_FILE[name]
    assert e["kind"] in ("837P", "837I", "broken")
    assert isinstance(e["valid_pyx12"], bool)
    assert ("defect" in e) == (e["kind"] == "broken")
    if e["kind"] != "broken":
        assert e["valid_pyx12"] or name == "837p-bom.x12"


@pytest.mark.parametrize("name", sorted(BY_FILE))
def test_manifest_matches_text(name):
    e = BY_FILE[name]
    text = read_text(name)
    if text is None:
        assert e["interchanges"] == e["transactions"] == 0 and e["claims"] == []
        return
    segs, ics = tokenize(text)
    assert e["interchanges"] == sum(s.id == "ISA" for s in segs) == len(ics)
    assert e["transactions"] == sum(s.id == "ST" for s in segs)
    assert len(e["claims"]) == len(re.findall(r"(?:^|[~!\n])\s*CLM[*|]", text))
    assert e["claims"] == claims_from_text(segs)


# --------------------------------------------------------------------- pyx12
@pytest.mark.parametrize("name", PYX12_CLEAN)
def test_pyx12_clean(name):
    assert pyx12_ok(FIX / name) is True
    # pyx12 takes the delimiters from the first ISA only and silently stops
    # at an interchange with other delimiters, so validate each one alone too.
    text = read_text(name)
    _, ics = tokenize(text)
    for c in ics:
        assert pyx12_ok(text[c["start"]:c["end"]]) is True


@pytest.mark.parametrize("name", PYX12_DIRTY)
def test_pyx12_not_clean(name):
    try:
        ok = pyx12_ok(FIX / name)
    except Exception:  # UnicodeDecodeError on the binary and BOM files
        ok = False
    assert ok is False


def test_bom_fixture_is_clean_without_bom_and_leading_space():
    raw = (FIX / "837p-bom.x12").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    text = raw.decode("utf-8-sig")
    assert text[0].isspace()
    assert pyx12_ok(text.lstrip()) is True


# --------------------------------------------------------------------- NPIs
@pytest.mark.parametrize("name", sorted(BY_FILE))
def test_npis_have_valid_check_digit(name):
    text = read_text(name)
    if text is None:
        return
    segs, _ = tokenize(text)
    npis = [s[9] for s in segs if s.id == "NM1" and s[8] == "XX"]
    npis += [s[4] for s in segs if s.id == "N1" and s[3] == "XX"]
    if BY_FILE[name]["claims"]:
        assert npis
    for npi in npis:
        assert npi_ok(npi), npi


# --------------------------------------------------------------------- envelopes
@pytest.mark.parametrize("name", VALID)
def test_envelope_counts(name):
    text = read_text(name)
    segs, ics = tokenize(text)
    assert all(c["isa_len"] == 106 for c in ics)
    isa = gs = st = None
    n_gs = n_st = n_seg = 0
    for s in segs:
        if st is not None:
            n_seg += 1
        if s.id == "ISA":
            isa, n_gs = s, 0
        elif s.id == "GS":
            gs, n_st = s, 0
            n_gs += 1
        elif s.id == "ST":
            st, n_seg = s, 1
            n_st += 1
        elif s.id == "SE":
            assert (int(s[1]), s[2]) == (n_seg, st[2])
            st = None
        elif s.id == "GE":
            assert (int(s[1]), s[2]) == (n_st, gs[6])
        elif s.id == "IEA":
            assert (int(s[1]), s[2]) == (n_gs, isa[13])
    assert [s.id for s in segs if s.id in ("ISA", "IEA")] == ["ISA", "IEA"] * len(ics)


@pytest.mark.parametrize("name", VALID)
def test_hl_and_lx_sequences(name):
    segs, _ = tokenize(read_text(name))
    hl_ids, lx = [], 0
    for s in segs:
        if s.id == "ST":
            hl_ids = []
        elif s.id == "HL":
            assert int(s[1]) == len(hl_ids) + 1
            assert (s[2] == "") == (s[3] == "20")
            if s[2]:
                assert s[2] in hl_ids
            hl_ids.append(s[1])
        elif s.id == "CLM":
            lx = 0
        elif s.id == "LX":
            lx += 1
            assert int(s[1]) == lx


@pytest.mark.parametrize("name", VALID)
def test_claims_balance(name):
    claims = claims_from_text(tokenize(read_text(name))[0])
    assert claims
    for c in claims:
        assert Decimal(c["charge"]) == sum(Decimal(x) for x in c["line_charges"]), c["id"]
        assert c["lines"] == len(c["line_charges"])


@pytest.mark.parametrize("name", VALID)
def test_service_dates_in_2026_and_not_future(name):
    segs, _ = tokenize(read_text(name))
    dates = []
    for s in segs:
        if s.id == "DTP" and s[1] in ("472", "434"):
            dates += s[3].split("-")
    assert dates
    for d in dates:
        assert "20260101" <= d < TODAY


# --------------------------------------------------------------------- broken specifics
def test_broken_specifics():
    assert (FIX / "broken-empty.x12").stat().st_size == 0
    assert read_text("broken-no-isa.x12").startswith("GS*")
    _, ics = tokenize(read_text("broken-isa-short.x12"))
    assert ics[0]["isa_len"] == 104
    assert (FIX / "broken-binary.bin").read_bytes() == random.Random(96523).randbytes(4096)
    ids = lambda n: [s.id for s in tokenize(read_text(n))[0]]  # noqa: E731
    assert "SE" not in ids("broken-missing-se.x12")
    assert "GE" not in ids("broken-missing-ge.x12")
    assert ids("broken-missing-iea.x12")[-1] == "GE"
    assert ids("broken-truncated.x12")[-1] == "DTP"
    assert ids("broken-two-interchanges-first-bad.x12").count("ISA") == 2
