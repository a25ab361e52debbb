"""One verdict on every path: the same files under one scrub.toml, through every front end.

The site's scrub.toml ignores a rule, makes a warning a reject in its payer
profile and fails on warnings; `scrub check`, the Python API's `check_files`,
`scrub watch --once`, `POST /v1/validate` and `scrub batch` must give every
claim the same status, rule ids and severities, because all of them build
their options with scrubber.options.scrub_options.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from scrubber.api import check_files
from scrubber.cli import main

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "fixtures" / "rules"
FILES = [RULES / "96523-diagnosis.fail.837p.x12",  # warn by default; the profile rejects
         RULES / "96523-units.fail.837p.x12",  # reject
         RULES / "snip-npi-check-digit.fail.837p.x12",  # its rule is ignored: accepted
         RULES / "96523-sole-service.fail.837i.x12",  # a warning: fails with fail-on warn
         ROOT / "fixtures" / "837p-multi.x12"]  # accepted
Verdicts = dict[str, dict[str, tuple[str, tuple[tuple[str, str], ...]]]]


@pytest.fixture
def site(tmp_path, monkeypatch) -> Path:
    """A site folder holding the non-default scrub.toml, the working folder of the test."""
    (tmp_path / "payer.xml").write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<profile name="payer"><rules>'
        '<rule id="96523-diagnosis" severity="reject"/></rules></profile>\n')
    (tmp_path / "scrub.toml").write_text(
        '[scrub]\nno-ledger = true\nignore = ["snip-npi-check-digit"]\n'
        f'profile = "{tmp_path / "payer.xml"}"\nfail-on = "warn"\n')
    monkeypatch.chdir(tmp_path)
    return tmp_path


def from_report(report: dict) -> Verdicts:
    """file name -> claim id -> (status, sorted (rule, severity)) of a JSON report."""
    found: Verdicts = {}
    for file in report["files"]:
        claims = found.setdefault(Path(file["path"]).name, {})
        for interchange in file["interchanges"]:
            for group in interchange["groups"]:
                for transaction in group["transactions"]:
                    for claim in transaction["claims"]:
                        claims[claim["id"]] = (claim["status"], tuple(sorted(
                            (f["rule"], f["severity"]) for f in claim["findings"])))
    return found


def checked() -> tuple[Verdicts, list[int]]:
    """`scrub check FILE` for each file (a watcher or a request scrubs one file a run: the
    fixtures share a patient and a day, so one run of them all would see more conflicts)."""
    verdicts: Verdicts = {}
    codes = []
    for path in FILES:
        check = CliRunner().invoke(main, ["check", str(path), "--format", "json"])
        verdicts.update(from_report(json.loads(check.stdout)))
        codes.append(check.exit_code)
    return verdicts, codes


def test_every_front_end_gives_each_claim_the_same_verdict(site, monkeypatch):
    expected, codes = checked()
    assert codes == [1, 1, 0, 1, 0]  # the 837I's warning fails the run: fail-on = "warn"
    # what the configuration must have done, so that agreeing means something
    assert expected["96523-diagnosis.fail.837p.x12"]["DX-A"][1] == (
        ("96523-diagnosis", "reject"),)
    assert all(status == "accepted" for status, _ in
               expected["snip-npi-check-digit.fail.837p.x12"].values())
    assert any(("96523-sole-service", "warn") in found for _, found in
               expected["96523-sole-service.fail.837i.x12"].values())

    api: Verdicts = {}
    for path in FILES:
        out = io.StringIO()
        check_files([str(path)], out, fmt="json")  # options from the site, as check's
        api.update(from_report(json.loads(out.getvalue())))
    assert api == expected

    root = site / "watched"
    (root / "inbox").mkdir(parents=True)
    for path in FILES:
        (root / "inbox" / path.name).write_bytes(path.read_bytes())
    subprocess.run([sys.executable, "-m", "scrubber", "watch", str(root), "--once", "--poll",
                    "--settle", "0.1", "--workers", "1"], check=True, capture_output=True,
                   timeout=300, cwd=site)
    watched: Verdicts = {}
    for report in (root / "reports").glob("*.json"):
        for name, claims in from_report(json.loads(report.read_text())).items():
            watched[name] = claims
    assert watched == expected

    captured = []
    monkeypatch.setattr("scrubber.serve.server.run_server", captured.append)
    monkeypatch.setenv("SCRUB_SERVE_TOKENS", "acme:acme-token-0123456789abcdef")
    served = CliRunner().invoke(main, ["serve", "--data-dir", str(site / "serve")])
    assert served.exit_code == 0, served.output
    from fastapi.testclient import TestClient

    from scrubber.serve.app import create_app

    validated: Verdicts = {}
    with TestClient(create_app(captured[0])) as client:
        for path in FILES:
            answer = client.post("/v1/validate", content=path.read_bytes(), headers={
                "Authorization": "Bearer acme-token-0123456789abcdef"})
            assert answer.status_code == 200
            (claims,) = from_report(answer.json()).values()
            validated[path.name] = claims
    assert validated == expected


@pytest.mark.slow
def test_scrub_batch_gives_each_claim_the_same_verdict(site):
    pytest.importorskip("pyspark")
    expected, _ = checked()
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"}
    batch = subprocess.run([sys.executable, "-m", "scrubber", "batch", *map(str, FILES),
                            "--out", str(site / "out"), "--master", "local[1]", "--scope",
                            "file", "--spark-conf", "spark.ui.enabled=false"],
                           capture_output=True, text=True, timeout=600, cwd=site, env=env)
    assert batch.returncode == 1, batch.stderr[-2000:]
    from scrubber.spark import session

    spark = session("local[1]", [("spark.ui.enabled", "false")])
    try:
        names = {row.path: Path(row.path).name for row in
                 spark.read.parquet(str(site / "out" / "claims")).select("path").collect()}
        found: dict[tuple[str, int], list[tuple[str, str]]] = {}
        for row in spark.read.parquet(str(site / "out" / "findings")).collect():
            found.setdefault((row.path, row.position), []).append((row.rule, row.severity))
        batched: Verdicts = {}
        for row in spark.read.parquet(str(site / "out" / "claims")).collect():
            batched.setdefault(names[row.path], {})[row.claim_id] = (
                row.status, tuple(sorted(found.get((row.path, row.position), []))))
    finally:
        spark.stop()
    assert batched == expected
