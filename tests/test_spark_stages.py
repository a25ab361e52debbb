"""The Spark stages answer as DayIndex does, claim by claim (plain Python, no Spark).

The files written here (fictional patients, fixtures/rules/build.py's builder)
hold a resend, a replacement and a void of claims across files, one CLM01
under two payers, twins in one submission (a replacement among them) and two
patients on one day. Stage 1's rows go through a dict in place of the
shuffle; each claim's services on every date of its lines, its twins and the
ledger's ``holds`` must then equal those of a DayIndex over the same claims:
one index over every file (scope "run"), or one per file (scope "file").
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from datetime import timedelta

import pytest
from rule_fixtures import rules_builder

from scrubber.core import Scrubber, ScrubOptions
from scrubber.ledger import open_store
from scrubber.model import ClaimRecord, read
from scrubber.model.keys import patient_identity
from scrubber.passes import check_and_index
from scrubber.rules.context import SPAN_DAYS, claim_key, service_date, submission_id
from scrubber.rules.engine import DayIndex, patient_key
from scrubber.spark.job import ordinal_bases, piece_counts
from scrubber.spark.pieces import plan, readings
from scrubber.spark.stages import (
    FILE,
    RUN,
    BatchedLedger,
    Job,
    PieceContext,
    context_rows,
    index_pieces,
    piece_contexts,
    shuffle_rows,
)

build = rules_builder()
D1, D2 = "20261102", "20261103"
OTHER_PAYER = "77777"


def visit(cid: str, *codes: str, day: str = D1, freq: str = "1", patient=None) -> dict:
    return build.claim(cid, [build.line(code, day=day) for code in codes],
                       patient=patient or build.ALEX, freq=freq)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> list[str]:
    folder = tmp_path_factory.mktemp("stages")
    first = build.interchange("837p", [[
        visit("P-1", "96523", "99213"), visit("P-2", "99213"),
        visit("P-3", "96523", patient=build.SAM),
        visit("P-5", "93000"), visit("P-5", "93000"), visit("P-5", "93000", freq="7"),
        visit("P-5", "36591")]], control="000000101")
    # two interchanges, so that planning with piece_bytes=1 cuts the file in two
    second = build.interchange("837p", [[
        visit("P-1", "96523", "99213"),  # a resend: supersedes the first file's P-1
        visit("P-2", "99213", day=D2, freq="7")]], control="000000201")
    third = build.interchange("837p", [[
        visit("P-3", "96523", patient=build.SAM, freq="8"),  # a void of the first's P-3
        visit("P-4", "96523"), visit("P-4", "99211")]], control="000000202")
    # the last claim of the interchange goes to another payer: another claim, same CLM01
    head, _, tail = third.rpartition("PI*96523~")
    third = f"{head}PI*{OTHER_PAYER}~{tail}"
    institutional = build.interchange("837i", [[visit("P-6", "96523")]], control="000000301")
    paths = []
    for name, text in (("a.x12", first), ("b.x12", second + third),
                       ("c.x12", institutional)):
        path = folder / name
        path.write_text(text)
        paths.append(str(path))
    return paths


def claims_of(source) -> list[ClaimRecord]:
    return [event for event in read(source) if isinstance(event, ClaimRecord)]


def reference(paths: list[str], scope: str) -> dict[tuple[int, int], DayIndex]:
    """DayIndex as scrub check builds it: (file, ordinal) -> the index that claim reads."""
    indexes: dict[tuple[int, int], DayIndex] = {}
    index, ordinal = DayIndex(), 0
    for number, path in enumerate(paths):
        if scope == FILE and ordinal:
            index.finish()
            index, ordinal = DayIndex(), 0
        for record in claims_of(path):
            ordinal += 1
            index.add(record, ordinal, submission_id(record))
            indexes[number, ordinal] = index
    index.finish()
    return indexes


def spark_contexts(paths: list[str], scope: str, conformance: bool = False):
    """Stages 1 and 2 with a dict for the shuffle: (pieces, bases, piece id -> context)."""
    job = Job(ScrubOptions(conformance=conformance), b"s" * 32, scope)
    pieces = plan(paths, 1)
    rows = list(index_pieces(pieces, job))
    counts = {row[1]: row[2] for row in rows if row[0] == "count"}
    held = {row[1]: row[3] for row in rows if row[0] == "count"}
    bases, _ = ordinal_bases(pieces, counts, scope)
    groups = defaultdict(list)
    for key, item in shuffle_rows(rows):
        groups[key].append(item)
    sent = list(context_rows(groups.items(), bases, ledger=True, held=held))
    sent += [(piece.id, ("piece", piece)) for piece in pieces]
    return pieces, bases, {i: context for i, (_, context) in piece_contexts(sent, job).items()}


def bare(services) -> tuple:
    """Services without their locations: a piece's are in the piece, the reference's in
    the file (the equivalence tests compare the findings' locations)."""
    return tuple(replace(service, location=None) for service in services)


@pytest.mark.parametrize("scope", [RUN, FILE])
def test_every_claim_reads_what_day_index_gives_it(files, scope):
    indexes = reference(files, scope)
    pieces, bases, contexts = spark_contexts(files, scope)
    assert len(pieces) == 4  # b.x12 was cut at its second interchange

    every = {(record.claim.id, claim_key(record)[1]) for path in files
             for record in claims_of(path)}
    queries = every | {(cid, "") for cid, _ in every} | {("P-9", "96523"), ("P-1", OTHER_PAYER)}
    seen = {"services": 0, "spans": 0, "twins": 0, "holds": 0, "not held": 0}
    for piece in pieces:
        context: PieceContext = contexts[piece.id]
        with piece.open() as source:
            records = claims_of(source)
        for place, record in enumerate(records, 1):
            ordinal = bases[piece.id] + place  # in the run, or in the file: as the index's
            index = indexes[piece.file, ordinal]
            key = patient_key(record)
            _, payer, cid = claim_key(record)
            submission = submission_id(record)
            for day in {service_date(record, line) for line in record.claim.lines} - {None}:
                assert day is not None
                want = bare(index.services(key, day, ordinal, cid, payer))
                assert bare(context.services(key, day, ordinal, cid, payer)) == want, \
                    (scope, cid, ordinal, day)
                seen["services"] += len(want)
                # over a period within SPAN_DAYS of its dates: a global surgery period
                first, last = day - timedelta(days=SPAN_DAYS), day + timedelta(days=1)
                spans = [(d, bare((s,))) for d, s in
                         index.services_between(key, first, last, ordinal, cid, payer)]
                assert [(d, bare((s,))) for d, s in context.services_between(
                    key, first, last, ordinal, cid, payer)] == spans, (scope, cid, ordinal)
                seen["spans"] += sum(1 for d, _ in spans if d != day)
            twins = index.twins(record, submission, ordinal)
            assert context.twins(record, submission, ordinal) == twins, (scope, cid, ordinal)
            seen["twins"] += len(twins)
            for other, other_payer in sorted(queries):
                held = index.holds(key, other, other_payer)
                assert context.holds(key, other, other_payer) == held, \
                    (scope, cid, other, other_payer)
                seen["holds" if held else "not held"] += 1
    assert all(seen.values()), seen  # the files exercise every answer


def test_the_files_exercise_what_day_index_leaves_out(files):
    """The reference itself: a superseded copy, the same CLM01 and payer, and a void are
    left out of the run's day context, and the same CLM01 under another payer is not."""
    indexes = reference(files, RUN)
    records = [record for path in files for record in claims_of(path)]
    index = indexes[0, 1]
    p4 = next(o for o, r in enumerate(records, 1) if r.claim.id == "P-4"
              and claim_key(r)[1] == OTHER_PAYER)
    key, day = patient_key(records[p4 - 1]), service_date(records[p4 - 1],
                                                          records[p4 - 1].claim.lines[0])
    assert day is not None
    seen = [(s.claim_id, s.claim_ordinal) for s in
            index.services(key, day, p4, "P-4", OTHER_PAYER)]
    first_p1 = 1
    resent_p1 = next(o for o, r in enumerate(records, 1) if r.claim.id == "P-1" and o > 1)
    assert ("P-1", first_p1) not in seen and ("P-1", resent_p1) in seen
    assert ("P-4", p4 - 1) in seen  # the same CLM01 under the other payer counts
    assert not any(cid == "P-2" for cid, _ in seen)  # replaced, and moved to another day
    sam = patient_key(records[2])
    assert index.services(sam, day, 0) == ()  # the void took P-3's line out


def test_claims_the_ig_check_holds_are_in_no_day_context(tmp_path):
    """A set the IG check rejects is held (999): its claims' lines are in no other claim's
    day context, as check_and_index takes them out of DayIndex; and stage 3 gets the
    piece's report from stage 1 instead of checking the piece again."""
    text = build.interchange("837p", [[visit("H-1", "96523")], [visit("H-2", "99213")]],
                             control="000000401")
    bht = text.index("BHT*", text.index("ST*837*0002"))
    end = text.index("~", bht) + 1
    path = tmp_path / "held.x12"
    path.write_text(text[:bht] + text[end:].lstrip("\n"))  # the second set without its BHT

    index = DayIndex()
    check_and_index(ScrubOptions(), str(path), "held.x12", index)
    index.finish()
    record = claims_of(str(path))[0]
    key, (_, payer, cid) = patient_key(record), claim_key(record)
    day = service_date(record, record.claim.lines[0])
    assert day is not None and index.services(key, day, 1, cid, payer) == ()

    pieces, _, contexts = spark_contexts([str(path)], RUN, conformance=True)
    context = contexts[pieces[0].id]
    assert context.services(key, day, 1, cid, payer) == ()
    assert context.checked is not None
    report, claims, _ = context.checked
    assert claims == 2 and report is not None and not report.is_accepted(
        "000000401", "9652", "0002") and report.is_accepted("000000401", "9652", "0001")
    # without the check, H-2 is in H-1's day: the test holds something back
    _, _, unchecked = spark_contexts([str(path)], RUN)
    assert [s.claim_id for s in unchecked[pieces[0].id].services(key, day, 1, cid, payer)] \
        == ["H-2"]


def test_a_file_read_in_shares_gives_what_it_gives_read_whole(tmp_path):
    """Stage 1 of one big file with idle cores (readings): each task checks and indexes
    the transaction sets of its share; together they give the rows, claim count, held
    claims and (merged, in stage 3) IG report of the piece read by one task."""
    text = build.interchange("837p", [[visit("S-1", "96523"), visit("S-2", "99213")],
                                      [visit("S-3", "99213")],
                                      [visit("S-4", "96523", patient=build.SAM)]],
                             control="000000501")
    bht = text.index("BHT*", text.index("ST*837*0002"))
    end = text.index("~", bht) + 1
    path = tmp_path / "shares.x12"
    path.write_text(text[:bht] + text[end:].lstrip("\n"))  # the second set is held
    # with a ledger (and no recording) stage 1 ships each claim's ledger keys too
    job = Job(ScrubOptions(ledger=str(tmp_path / "ledger.sqlite")), b"s" * 32, RUN)
    pieces = plan([str(path)])
    whole = list(index_pieces(pieces, job))
    tasks = readings(pieces, 3, share_from=0)
    assert [task.part for task in tasks] == [0, 1, 2]
    shared = [row for task in tasks for row in index_pieces([task], job)]

    def body(rows):
        return sorted(repr(row) for row in rows if row[0] not in ("count", "report"))

    def counted(rows):
        return piece_counts([row[1:] for row in rows if row[0] == "count"])

    def checked(rows):
        groups = defaultdict(list)
        for key, item in shuffle_rows(reversed(rows)):
            groups[key].append(item)
        sent = [(pieces[0].id, ("piece", pieces[0]))]
        sent += [row for row in context_rows(groups.items(), {pieces[0].id: 0})
                 if row[1][0] == "report"]
        return piece_contexts(sent, job)[pieces[0].id][1].checked

    assert body(shared) == body(whole) and len(body(whole)) > 8
    assert counted(shared) == counted(whole) == ({pieces[0].id: 4}, {pieces[0].id: ((3, 3),)})
    # more cores than sets: one share per set, none that owns nothing
    assert [task.part for task in readings(pieces, 16, share_from=0)] == [0, 1, 2]
    report, claims, keys = checked(shared)
    assert (report, claims, keys) == checked(whole)
    assert keys is not None and len(keys) == claims == 4  # one per claim, in piece order
    assert report is not None and not report.is_accepted("000000501", "9652", "0002")


def test_the_ledger_is_read_a_batch_of_claims_at_a_time(files, tmp_path, monkeypatch):
    """Stage 3 reads a piece's ledger history in a few queries (BatchedLedger over the
    keys stage 1 shipped), with the answers one query per claim and date gives."""
    ledger = str(tmp_path / "history.sqlite")
    with Scrubber(ScrubOptions(conformance=False, ledger=ledger, record=True)) as recorder:
        recorder.run([(files[0], "a.x12")], [])
    records = [record for path in files for record in claims_of(path)]
    with open_store(ledger) as store:
        batched = BatchedLedger(store, tuple(store.lock_keys(r) for r in records))
        asked = []
        for record in records:
            identity, submission = patient_identity(record), submission_id(record)
            for day in sorted({service_date(record, line) for line in record.claim.lines}
                              - {None}):
                asked.append(("lines", identity, day, submission))
            asked.append(("sent", claim_key(record)))

        def answers(reader) -> list:
            return [reader.lines_for(q[1], q[2], exclude_submission=q[3]) if q[0] == "lines"
                    else reader.sent_claim(q[1]) for q in asked]

        queries = []
        run = store._run
        monkeypatch.setattr(store, "_run", lambda *a: queries.append(a) or run(*a))
        got = answers(batched)
        in_batches = len(queries)
        want = answers(store)
    assert got == want
    assert sum(len(found) for found in want if isinstance(found, list)) > 0  # history read
    assert sum(found is not None for found in want if not isinstance(found, list)) > 0
    assert in_batches <= 2 < len(asked) == len(queries) - in_batches
