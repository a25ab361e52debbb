"""scrubber.ig.check: what a payer's front end says about an 837, before business rules."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from mutate import build_837

from scrubber.ig import check, load_guides
from scrubber.ig import compile as ig_compile

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def _edit(data: bytes, old: bytes, new: bytes) -> bytes:
    assert old in data, old
    return data.replace(old, new, 1)


def _position(data: bytes, prefix: bytes) -> int:
    """Position in the transaction set (ST = 1) of the first segment starting with ``prefix``."""
    segments = [s.strip() for s in data.split(b"~")]
    start = next(i for i, s in enumerate(segments) if s.startswith(b"ST*"))
    return next(i for i, s in enumerate(segments) if s.startswith(prefix)) - start + 1


def _errors(data: bytes) -> list[tuple]:
    (st,) = check(data).transactions
    return [(e.segment_id, e.position, e.loop_id, e.segment_code, e.element, e.element_code)
            for e in st.errors]


def test_path_bytes_and_stream_give_the_same_report(tmp_path):
    data = build_837("P", 4, 2)
    path = tmp_path / "claims.x12"
    path.write_bytes(data)
    reports = [check(path), check(str(path)), check(data), check(io.BytesIO(data))]
    assert all(r == reports[0] for r in reports)
    (st,) = reports[0].transactions
    assert st.accepted and st.transaction_set_id == "837" and st.implementation == "005010X222A1"
    assert reports[0].is_accepted(*st.key)
    assert reports[0].verdict(*st.key) is st


@pytest.mark.parametrize("source, problem", [
    (b"", "syntax-empty"),
    (bytes(range(256)) * 8, "syntax-binary"),
    (b"hello, this is not X12", "syntax-no-isa"),
])
def test_input_that_is_not_x12_is_a_problem_not_a_crash(source, problem):
    report = check(source)
    assert report.interchanges == () and not report.accepted
    assert report.problems[0].startswith(problem)


def test_a_missing_file_is_a_problem(tmp_path):
    report = check(tmp_path / "nope.x12")
    assert report.problems[0].startswith("file-unreadable") and not report.accepted


def test_missing_required_segment_is_ik3_code_3_at_the_next_segment():
    data = _edit(build_837("P", 0, 1), b"N4*MADEUPVILLE*OH*430109999~\n", b"")
    # N4 of 2010AA is required; the walk notices at the next segment, REF*EI
    assert _errors(data) == [("N4", _position(data, b"REF*EI"), "2010AA", "3", 0, "")]


def test_element_errors_are_ik4_with_position_and_code():
    data = build_837("P", 0, 1)
    data = _edit(data, b"DMG*D8*19", b"DMG*D8*18")  # still a date, but ...
    data = _edit(data, b"*11:B:1*", b"*11:Q:1*")  # CLM05-2 must be B
    data = _edit(data, b"******CI~", b"******QQ~")  # SBR09 is a code
    errors = _errors(data)
    assert ("CLM", _position(data, b"CLM*"), "2300", "8", 5, "7") in errors
    assert ("SBR", _position(data, b"SBR*"), "2000B", "8", 9, "7") in errors
    clm = next(e for e in check(data).transactions[0].errors if e.segment_id == "CLM")
    assert (clm.component, clm.data_element, clm.value, clm.claim_id) == (2, "1332", "Q", "M0000C0")


def test_bad_dates_and_times_are_ik4_8_and_9():
    data = _edit(build_837("P", 0, 1), b"BHT*0019*00*MUT00000*20261120*0930",
                 b"BHT*0019*00*MUT00000*20260230*2460")
    assert _errors(data) == [("BHT", 2, "", "8", 4, "8"), ("BHT", 2, "", "8", 5, "9")]


def test_envelope_counts_and_control_numbers():
    data = build_837("P", 1, 1)
    data = _edit(data, b"\nSE*", b"\nSE*9")
    data = _edit(data, b"GE*1*", b"GE*2*")
    report = check(data)
    (st,) = report.transactions
    assert (st.ack_code, st.syntax_codes) == ("R", ("4",))
    group = report.interchanges[0].groups[0]
    assert (group.ack_code, group.syntax_codes, group.declared, group.received, group.accepted) == (
        "R", ("5",), 2, 1, 0)


def test_loop_repeats_over_the_guide_limit():
    """2400 repeats at most 50 times per claim in the 837P guide (pyx12 checks it too)."""
    data = build_837("P", 0, 1).decode()
    lx = data.index("LX*1~")
    se = data.index("SE*")
    end = data.find("LX*2~")
    line = data[lx:end if end > 0 else se]
    lines = "".join(line.replace("LX*1~", f"LX*{i}~", 1) for i in range(1, 52))
    data = data[:lx] + lines + data[se:]
    count = data.count("~\n", data.index("ST*"), data.index("SE*")) + 1
    data = data[:data.index("SE*")] + f"SE*{count}*0001~\n" + data[data.index("GE*"):]
    errors = _errors(data.encode())
    assert [e[:4] for e in errors] == [("LX", errors[0][1], "2400", "4")]
    assert errors[0][1] == _position(data.encode(), b"LX*51")


def test_hl_parent_and_numbering():
    data = _edit(build_837("P", 0, 1), b"HL*2*1*22*", b"HL*2*7*22*")
    (st,) = check(data).transactions
    assert [(e.check, e.segment_id, e.element, e.element_code) for e in st.errors] == [
        ("ig-hl-parent", "HL", 2, "I12")]


def test_messages_never_carry_the_data():
    """Member ids and names stay in IK404 (value), never in the message a log might print."""
    data = _edit(build_837("P", 0, 1), b"*MI*MUT", b"*MI*" + b"SECRETMEMBERID" * 6 + b"MUT")
    (st,) = check(data).transactions
    (error,) = st.errors
    assert error.element_code == "5" and "SECRETMEMBERID" in error.value
    assert "SECRETMEMBERID" not in error.message


def test_versions_pyx12_has_no_map_for_use_the_nearest_and_say_so():
    data = build_837("I", 1, 1).replace(b"005010X223A2", b"005010X223A3")
    (st,) = check(data).transactions
    assert st.accepted and st.guide == "837Q3.I.5010.X223.A1.xml" and "X223A3" in st.note


def test_a_version_without_any_guide_rejects_its_group():
    data = build_837("P", 1, 1).replace(b"005010X222A1", b"005010X999A1")
    report = check(data)
    group = report.interchanges[0].groups[0]
    assert group.ack_code == "R" and "2" in group.syntax_codes
    assert not report.is_accepted(*report.transactions[0].key)


def test_duplicate_transaction_control_numbers_are_not_accepted():
    one = build_837("P", 1, 1).decode()
    st = one[one.index("ST*"):one.index("GE*")]
    two = one.replace(st, st + st).replace("GE*1*", "GE*2*")
    report = check(two.encode())
    first, second = report.transactions
    assert first.accepted and not second.accepted and second.syntax_codes == ("23",)
    assert not report.is_accepted(*first.key)  # the key no longer names one transaction set


def test_the_shared_corpus_reads_without_a_crash():
    corpus = Path("/work/shared/corpus")
    files = sorted(corpus.rglob("*.edi"))[:40] + sorted(corpus.rglob("*.x12"))[:40] \
        if corpus.is_dir() else []
    if not files:
        pytest.skip("no shared corpus here")
    for path in files:
        report = check(path)
        assert report.interchanges or report.problems


def test_compiled_maps_are_cached_and_a_torn_cache_is_rebuilt(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(ig_compile, "_LOADED", {})
    guides = load_guides()
    (cached,) = (tmp_path / "scrubber").glob("ig-*.json")
    assert guides.fingerprint in cached.name
    assert ig_compile.guides_from_json(cached.read_bytes()) == guides
    cached.write_bytes(b"torn")
    monkeypatch.setattr(ig_compile, "_LOADED", {})
    assert load_guides() == guides
    assert cached.stat().st_size > 100_000 and not os.access(cached, os.X_OK)


def test_the_fingerprint_follows_pyx12_and_the_maps(monkeypatch):
    base = ig_compile.fingerprint()
    assert ig_compile.fingerprint() == base
    monkeypatch.setattr(ig_compile, "COMPILER_VERSION", "test")
    assert ig_compile.fingerprint() != base


@pytest.mark.parametrize("kind, sent, map_version", [
    ("P", b"005010X222A2", b"005010X222A1"), ("I", b"005010X223A1", b"005010X223A2")])
def test_errata_versions_pyx12_has_no_map_for_are_checked_with_the_nearest(kind, sent,
                                                                           map_version):
    from mutate import build_837

    data = build_837(kind, 3, 2)
    assert data.count(map_version) == 2  # GS08 and ST03
    report = check(data.replace(map_version, sent))
    (st,) = report.transactions
    assert report.accepted and st.accepted, [e.message for e in st.errors]
    assert sent.decode() in st.note and map_version.decode() in st.note
    # the stand-in does not hide real errors
    broken = check(data.replace(map_version, sent).replace(b"SBR*P*", b"SBR*Q*", 1))
    assert not broken.accepted


def test_positions_and_segment_counts_survive_a_tokenizer_problem_inside_a_set():
    """The body loop keeps its own segment count: an empty segment (a tokenizer problem
    handled mid-loop), an error after it and the SE count must all see the true count."""
    data = build_837("P", 0, 1)
    data = _edit(data, b"*11:B:1*", b"*11:Q:1*")  # an element error on the first CLM
    clm = _position(data, b"CLM*")
    data = _edit(data, b"\nCLM*", b"\n~\nCLM*")  # an empty segment just before it
    (st,) = check(data).transactions
    assert ("5", "an empty segment") in [(e.code, e.message[:16]) for e in st.envelope_errors]
    element_errors = [e for e in st.errors if e.segment_id == "CLM" and e.segment_code == "8"]
    assert [e.position for e in element_errors] == [clm]  # the empty segment is no segment
    se = next(s for s in data.split(b"~") if s.strip().startswith(b"SE*"))
    se_count = int(se.split(b"*")[1])
    assert st.segment_count == se_count  # ST through SE, as SE01 declares for the clean file
    assert not [e for e in st.envelope_errors if e.code == "4"]  # SE01 still agrees


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.x12")) + sorted(FIXTURES.glob("*.bin"))
                         + [FIXTURES / "no-such-file.x12"], ids=lambda p: p.name)
def test_one_reading_checks_and_models_as_two_would(path: Path) -> None:
    """CheckedRead: the model's events and the IG report from one tokenization, both as
    ``read`` and ``check`` give them apart (an unreadable path included)."""
    from scrubber.ig.checker import CheckedRead
    from scrubber.model import read

    checked = CheckedRead(str(path))
    assert list(checked.events()) == list(read(str(path)))
    assert checked.report() == check(str(path))


def test_one_reading_holds_across_the_tokenizer_s_chunks(tmp_path: Path) -> None:
    """A file over one tokenizer chunk (1 MiB) reaches the checker in pieces cut inside a
    transaction set's body; the checker takes up where the last piece ended."""
    import sys

    from scrubber.ig.checker import CheckedRead
    from scrubber.model import read
    from scrubber.x12.tokenizer import CHUNK_SIZE

    sys.path.insert(0, str(FIXTURES.parent / "bench"))
    from gen837 import generate

    path = tmp_path / "big.x12"
    generate(str(path), 3000, "P", seed=3, claims_per_transaction=3000)
    data = path.read_bytes()
    assert len(data) > CHUNK_SIZE and data.count(b"~ST*") + data.count(b"\nST*") == 1
    # an error past the first chunk, so the piece that carries it is a resumed one
    at = data.index(b"CLM*", CHUNK_SIZE + 1000)
    path.write_bytes(data[:at] + b"CLM**" + data[at + 4:])
    checked = CheckedRead(str(path))
    assert sum(1 for _ in checked.events()) == sum(1 for _ in read(str(path)))
    report = checked.report()
    assert report == check(str(path)) and not report.accepted
