"""The HTTP intake in process (FastAPI's test client): every endpoint and every error."""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from servekit import FIXTURES, auth, ledger_lines, settings

from scrubber.cli import main
from scrubber.serve import create_app
from scrubber.serve.app import SubmissionAnswer
from scrubber.serve.auth import TokenError, load_tokens, parse_tokens
from scrubber.serve.store import open_submissions

VALID = FIXTURES / "837p-multi.x12"  # three claims, all accepted
REJECTED = FIXTURES / "rules" / "snip-claim-balance.fail.837p.x12"
BROKEN_ENVELOPE = FIXTURES / "broken-control-mismatch.x12"  # readable, TA1
NOT_837 = FIXTURES / "broken-binary.bin"


@pytest.fixture
def service(tmp_path):
    config = settings(tmp_path)
    with TestClient(create_app(config)) as client:
        client.config = config
        yield client


def cli_report(path: Path, *extra: str) -> tuple[int, dict]:
    result = CliRunner().invoke(main, ["check", str(path), "--format", "json", *extra])
    return result.exit_code, json.loads(result.stdout)


def without_path(report: dict) -> list[dict]:
    return [{k: v for k, v in f.items() if k != "path"} for f in report["files"]]


# -- probes ----------------------------------------------------------------------------------

def test_probes(service):
    assert service.get("/healthz").json() == {"status": "ok"}
    ready = service.get("/readyz").json()
    assert ready["status"] == "ready"
    # the installed reference data (none here): said, without failing readiness
    assert ready["data"]["not_installed"] and "ok" in ready["data"]


def test_readyz_names_an_unusable_ledger_only_to_a_known_client(tmp_path, caplog):
    ledger = tmp_path / "ledger.sqlite"
    config = settings(tmp_path, ledger=str(ledger))
    with TestClient(create_app(config)) as client:
        ledger.write_bytes(b"this is not a database" * 100)
        with caplog.at_level(logging.INFO, logger="scrubber.serve"):
            anyone = client.get("/readyz")
            for headers in ({"Authorization": "Bearer wrong-token-0123456789"},
                            {"Authorization": "Basic YWNtZTpzZWNyZXQ="}):
                assert client.get("/readyz", headers=headers).json() == anyone.json()
            known = client.get("/readyz", headers=auth())
        # without a known token: ready or not, no path, address or URL
        assert anyone.status_code == 503 and anyone.json()["status"] == "not ready"
        assert set(anyone.json()) == {"status", "data"}  # data: kinds and a date (docs/data.md)
        assert str(tmp_path) not in json.dumps(anyone.json())
        assert known.status_code == 503
        assert "ledger" in " ".join(known.json()["problems"])
        assert str(tmp_path) in " ".join(known.json()["problems"])
        # the operator finds the reason in the log, said once while it lasts
        assert caplog.text.count("not ready: the ledger cannot be opened") == 1
        # an intake request meets the same ledger: a clear 503, not a traceback, no path
        sent = client.post("/v1/submissions", content=VALID.read_bytes(), headers=auth())
        assert sent.status_code == 503 and sent.json()["error"] == "unavailable"
        assert sent.headers["retry-after"] and str(tmp_path) not in sent.text


# -- validate --------------------------------------------------------------------------------

@pytest.mark.parametrize("path", [VALID, REJECTED, BROKEN_ENVELOPE], ids=lambda p: p.name)
def test_validate_answers_the_report_scrub_check_gives(service, path):
    answer = service.post("/v1/validate", content=path.read_bytes(),
                          headers={**auth(), "Content-Type": "application/edi-x12"})
    assert answer.status_code == 200  # whatever the verdict
    _, expected = cli_report(path, "--ledger", service.config.options.ledger)
    assert without_path(answer.json()) == without_path(expected)
    assert answer.json()["files"][0]["path"] == "upload.x12"


def test_validate_takes_a_multipart_file_and_records_nothing(service):
    answer = service.post("/v1/validate", headers=auth(),
                          files={"file": ("morning batch.x12", VALID.read_bytes())},
                          data={"note": "ignored"})
    assert answer.status_code == 200
    report = answer.json()["files"][0]
    assert report["path"] == "morning batch.x12"
    assert report["summary"]["accepted"] == 3
    assert ledger_lines(service.config.options.ledger, [VALID]) == []


def test_not_an_837_is_a_400_with_located_problems(service):
    for body in (NOT_837.read_bytes(), b"", b"hello, world"):
        answer = service.post("/v1/validate", content=body, headers=auth())
        assert answer.status_code == 400
        problems = answer.json()["problems"]
        assert problems and problems[0]["location"]["offset"] == 0
        assert answer.json()["message"] == problems[0]["message"]


def test_a_multipart_body_without_a_file_is_a_400(service):
    answer = service.post("/v1/validate", headers=auth(), data={"file": "not a file part"},
                          files={})
    assert answer.status_code in (400,)
    assert answer.json()["error"] in ("no_file", "not_an_837")
    broken = service.post("/v1/validate", content=b"--x\r\nnonsense",
                          headers={**auth(), "Content-Type": "multipart/form-data; boundary=x"})
    assert broken.status_code == 400 and broken.json()["error"] == "no_file"


# -- safety ------------------------------------------------------------------------------------

@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong-token-0123456789"},
                                     {"Authorization": "Basic YWNtZTpzZWNyZXQ="}])
def test_a_request_without_a_known_token_is_401(service, headers):
    for method, url in (("post", "/v1/validate"), ("post", "/v1/submissions"),
                        ("get", "/v1/submissions/" + "0" * 32)):
        answer = getattr(service, method)(url, headers=headers)
        assert answer.status_code == 401, (url, headers)
        assert answer.headers["www-authenticate"] == "Bearer"


def test_a_body_over_the_limit_is_413_with_or_without_a_length(tmp_path):
    config = settings(tmp_path, max_body=5000)
    with TestClient(create_app(config)) as client:
        big = VALID.read_bytes() * 3
        assert len(big) > 5000
        assert client.post("/v1/validate", content=big, headers=auth()).status_code == 413

        def chunks():  # no Content-Length: the limit is kept while streaming
            for start in range(0, len(big), 1000):
                yield big[start:start + 1000]

        answer = client.post("/v1/submissions", content=chunks(), headers=auth())
        assert answer.status_code == 413 and answer.json()["error"] == "too_large"
        assert list(config.spool_dir.iterdir()) == []  # the partial spool is gone


def test_everything_kept_is_owner_only_and_the_spool_is_emptied(service):
    for path in (VALID, REJECTED, BROKEN_ENVELOPE):
        assert service.post("/v1/submissions", content=path.read_bytes(),
                            headers=auth()).status_code == 201
    service.post("/v1/validate", content=VALID.read_bytes(), headers=auth())
    data = service.config.data_dir
    assert list(service.config.spool_dir.iterdir()) == []
    for folder, _, files in os.walk(data):
        assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700, folder
        for name in files:
            assert stat.S_IMODE(os.stat(Path(folder) / name).st_mode) == 0o600, name


def test_the_access_log_has_routes_and_statuses_never_phi(service, caplog):
    body = VALID.read_bytes()
    with caplog.at_level(logging.INFO, logger="scrubber.serve"):
        sid = service.post("/v1/submissions?name=SAMPLETON", content=body,
                           headers=auth()).json()["id"]
        service.get(f"/v1/submissions/{sid}?format=text", headers=auth())
        service.get("/v1/validate/SAMPLETON-BOB")
    text = caplog.text
    assert "acme POST /v1/submissions 201" in text
    assert "acme GET /v1/submissions/{submission_id} 200" in text
    assert "<no route>" in text
    for phi in ("SAMPLETON", "BOB", "FAKE0000002", "19700315", sid):
        assert phi not in text


# -- submissions ---------------------------------------------------------------------------------

def test_a_submission_is_recorded_and_its_reports_and_acks_are_kept(service):
    answer = service.post("/v1/submissions", headers=auth(),
                          files={"file": ("batch.x12", VALID.read_bytes())})
    assert answer.status_code == 201
    body = answer.json()
    assert body["verdict"] == "accepted" and body["file"] == "batch.x12"
    SubmissionAnswer.model_validate(body)  # the answer the OpenAPI schema documents
    assert body["counts"] == {"claims": 3, "accepted": 3, "rejected": 0,
                              "envelope_problems": 0}
    assert answer.headers["location"] == body["links"]["self"] == f"/v1/submissions/{body['id']}"
    report = service.get(body["links"]["self"], headers=auth())
    assert report.headers["content-type"] == "application/json"
    assert report.json()["files"][0]["summary"]["accepted"] == 3
    assert "<html" in service.get(body["links"]["report_html"], headers=auth()).text.lower()
    text = service.get(body["links"]["report_text"], headers=auth()).text
    assert "3 accepted" in text and "SAMPLETON" not in text  # names masked
    ack = service.get(body["links"]["277ca"], headers=auth())
    assert ack.headers["content-type"] == "application/edi-x12"
    assert ack.content.startswith(b"ISA*") and b"ST*277*" in ack.content
    assert service.get(body["links"]["999"], headers=auth()).content.startswith(b"ISA*")
    assert "ta1" not in body["links"]
    assert service.get(f"{body['links']['self']}/ta1", headers=auth()).status_code == 404
    # the ledger now holds exactly what scrub check --record would have put there
    lines = ledger_lines(service.config.options.ledger, [VALID])
    manifest = json.loads((FIXTURES / "MANIFEST.json").read_text())
    entry = next(f for f in manifest if f["file"] == VALID.name)
    assert len(lines) == sum(claim["lines"] for claim in entry["claims"])
    other = Path(service.config.data_dir) / "check-ledger.sqlite"
    CliRunner().invoke(main, ["check", str(VALID), "--record", "--ledger", str(other)])
    assert ledger_lines(str(other), [VALID]) == lines


def test_rejected_and_broken_envelopes_are_201_with_their_verdict(service):
    rejected = service.post("/v1/submissions", content=REJECTED.read_bytes(), headers=auth())
    assert rejected.status_code == 201 and rejected.json()["verdict"] == "rejected"
    assert rejected.json()["counts"]["rejected"] >= 1
    envelope = service.post("/v1/submissions", content=BROKEN_ENVELOPE.read_bytes(),
                            headers=auth()).json()
    assert envelope["verdict"] == "rejected" and envelope["counts"]["envelope_problems"]
    ta1 = service.get(envelope["links"]["ta1"], headers=auth())
    assert ta1.status_code == 200 and b"TA1*" in ta1.content


def test_a_submission_that_is_not_an_837_is_400_and_still_fetchable(service):
    answer = service.post("/v1/submissions", content=NOT_837.read_bytes(), headers=auth())
    assert answer.status_code == 400
    body = answer.json()
    assert body["error"] == "not_an_837" and body["verdict"] == "failed" and body["problems"]
    report = service.get(body["links"]["self"], headers=auth()).json()
    assert report["files"][0]["summary"]["file_problems"] == 1


def test_a_client_sees_only_its_own_submissions(service):
    sid = service.post("/v1/submissions", content=VALID.read_bytes(),
                       headers=auth("acme")).json()["id"]
    for url in (f"/v1/submissions/{sid}", f"/v1/submissions/{sid}/277ca"):
        assert service.get(url, headers=auth("acme")).status_code == 200
        other = service.get(url, headers=auth("beta"))
        assert other.status_code == 404 and other.json()["error"] == "not_found"
    assert service.get("/v1/submissions/" + "f" * 32, headers=auth()).status_code == 404
    assert service.get("/v1/submissions/../../etc", headers=auth()).status_code == 404
    assert service.get(f"/v1/submissions/{sid}/835", headers=auth()).status_code == 422
    assert service.get(f"/v1/submissions/{sid}?format=pdf", headers=auth()).status_code == 422


def test_an_idempotency_key_returns_the_first_answer_and_records_once(service):
    key = {"Idempotency-Key": "batch-2026-12-02-001"}
    first = service.post("/v1/submissions", content=VALID.read_bytes(), headers={**auth(), **key})
    lines = ledger_lines(service.config.options.ledger, [VALID])
    again = service.post("/v1/submissions", content=VALID.read_bytes(), headers={**auth(), **key})
    assert again.status_code == first.status_code == 201
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert ledger_lines(service.config.options.ledger, [VALID]) == lines
    kept = list(service.config.submissions_dir.iterdir())
    assert [p.name for p in kept] == [first.json()["id"]]  # scrubbed once
    # the same key from another client is that client's own
    beta = service.post("/v1/submissions", content=VALID.read_bytes(), headers={**auth("beta"),
                                                                                 **key})
    assert beta.status_code == 201 and beta.json()["id"] != first.json()["id"]
    # the same key with another body is refused, not answered with the first file's result
    other = service.post("/v1/submissions", content=REJECTED.read_bytes(),
                         headers={**auth(), **key})
    assert other.status_code == 422 and other.json()["error"] == "idempotency_key_reused"
    bad = service.post("/v1/submissions", content=VALID.read_bytes(),
                       headers={**auth(), "Idempotency-Key": "x" * 300})
    assert bad.status_code == 422


def test_a_retention_sweep_removes_old_submissions(tmp_path):
    config = settings(tmp_path, retention_days=1)
    with TestClient(create_app(config)) as client:
        old = client.post("/v1/submissions", content=VALID.read_bytes(), headers=auth()).json()
        new = client.post("/v1/submissions", content=VALID.read_bytes(), headers=auth()).json()
        store = open_submissions(config.store_target)
        store._execute("UPDATE serve_submissions SET created = ? WHERE id = ?",
                       ("2020-01-01T00:00:00+00:00", old["id"]))
        assert client.app.state.intake.purge() == 1
        assert client.get(old["links"]["self"], headers=auth()).status_code == 404
        assert not (config.submissions_dir / old["id"]).exists()
        assert client.get(new["links"]["self"], headers=auth()).status_code == 200


def test_openapi_documents_the_endpoints(service):
    schema = service.get("/openapi.json").json()
    assert {"/v1/validate", "/v1/submissions", "/v1/submissions/{submission_id}",
            "/v1/submissions/{submission_id}/{kind}", "/healthz", "/readyz"} <= set(
                schema["paths"])
    body = schema["paths"]["/v1/submissions"]["post"]["requestBody"]["content"]
    assert "application/edi-x12" in body and "multipart/form-data" in body


# -- tokens and the command ------------------------------------------------------------------

def test_tokens_name_clients_and_bad_token_files_are_refused(tmp_path, monkeypatch):
    clients = parse_tokens("# clients\nacme:acme-token-0123456789abcdef  # the PM system\n", "f")
    assert clients.client_for("acme-token-0123456789abcdef") == "acme"
    assert clients.client_for("acme-token-0123456789abcdeX") is None
    for text, said in (("acme-token-0123456789abcdef", "client:token"),
                       ("acme:short", "shorter"), ("", "no client:token"),
                       ("a:tok-0123456789abcdef b:tok-0123456789abcdef", "share")):
        with pytest.raises(TokenError, match=said):
            parse_tokens(text, "f")
    loose = tmp_path / "tokens"
    loose.write_text("acme:acme-token-0123456789abcdef\n")
    loose.chmod(0o644)
    with pytest.raises(TokenError, match="readable by others"):
        load_tokens(str(loose))
    loose.chmod(0o600)
    monkeypatch.setenv("TEST_TOKENS", "beta:beta-token-0123456789abcdef")
    assert load_tokens(str(loose), "TEST_TOKENS").names == ("acme", "beta")


def test_scrub_serve_refuses_to_start_without_tokens(tmp_path, monkeypatch):
    monkeypatch.delenv("SCRUB_SERVE_TOKENS", raising=False)
    result = CliRunner().invoke(main, ["serve", "--data-dir", str(tmp_path / "d")])
    assert result.exit_code == 2 and "no bearer tokens" in result.output
    monkeypatch.setenv("SCRUB_SERVE_TOKENS", "acme:acme-token-0123456789abcdef")
    (tmp_path / "junk").write_bytes(b"not sqlite" * 200)
    result = CliRunner().invoke(main, ["serve", "--data-dir", str(tmp_path / "d"),
                                       "--store", str(tmp_path / "junk")])
    assert result.exit_code == 2 and "not a usable submission store" in result.output


def test_scrub_toml_serve_table_reaches_the_command(tmp_path, monkeypatch):
    monkeypatch.setenv("SCRUB_SERVE_TOKENS", "acme:acme-token-0123456789abcdef")
    junk = tmp_path / "junk-store"
    junk.write_bytes(b"not sqlite" * 200)
    config = tmp_path / "scrub.toml"
    config.write_text(f'[serve]\nstore = "{junk}"\ndata-dir = "{tmp_path / "d"}"\n'
                      "workers = 3\nmax-body = 1000\nretention-days = 7\n")
    result = CliRunner().invoke(main, ["--config", str(config), "serve"])
    assert result.exit_code == 2 and f"{junk} is not a usable submission store" in result.output
    bad = tmp_path / "bad.toml"
    bad.write_text("[serve]\nworkers = 0\n")
    result = CliRunner().invoke(main, ["--config", str(bad), "serve"])
    assert result.exit_code == 2 and "[serve] workers" in result.output


def test_docs_serve_lists_every_option_and_runs_its_code(tmp_path, monkeypatch):
    import re

    from scrubber.cli import serve
    from scrubber.rules.resources import resource_kinds

    data = {f"--{o.name}" for kind in resource_kinds() for o in kind.options}
    text = (FIXTURES.parent / "docs" / "serve.md").read_text()
    for param in serve.params:
        for name in getattr(param, "opts", []):
            if name.startswith("--") and name not in data:  # docs/data.md lists those
                assert f"`{name}" in text or f" {name}" in text, name
    tokens = tmp_path / "tokens"
    tokens.write_text("pm-system:8c1f0e3d2b6a49e7a5d4c3b2a1908f7e\n")
    tokens.chmod(0o600)
    (block,) = re.findall(r"```python\n(.*?)```", text, re.S)
    block = block.replace("/etc/scrubber/tokens", str(tokens)).replace("/srv/scrubber",
                                                                       str(tmp_path))
    scope: dict = {}
    exec(compile(block, "docs/serve.md", "exec"), scope)
    with TestClient(scope["app"]) as client:
        answer = client.post("/v1/submissions", content=VALID.read_bytes(), headers={
            "Authorization": "Bearer 8c1f0e3d2b6a49e7a5d4c3b2a1908f7e"})
        assert answer.status_code == 201


def test_a_bug_is_a_json_500_logged_by_class_only(service, caplog, monkeypatch):
    from scrubber.serve.app import Intake

    def broken(self, body, name):
        raise RuntimeError("SAMPLETON BOB FAKE0000002 went wrong")

    monkeypatch.setattr(Intake, "validate", broken)
    with caplog.at_level(logging.INFO, logger="scrubber.serve"):
        answer = service.post("/v1/validate", content=VALID.read_bytes(), headers=auth())
    assert answer.status_code == 500
    assert answer.json() == {"error": "internal", "message": "the request could not be handled"}
    assert "internal error RuntimeError on /v1/validate" in caplog.text
    assert "SAMPLETON" not in caplog.text and "Traceback" not in caplog.text
    assert list(service.config.spool_dir.iterdir()) == []


@pytest.mark.parametrize("failure, status, code", [
    (OSError(28, "No space left on device"), 503, "storage_full"),
    (OSError(24, "Too many open files"), 503, "busy"),
    (PermissionError(13, "denied: SAMPLETON"), 500, "internal")])
def test_an_os_error_is_a_503_when_it_will_pass_and_a_500_when_not(service, monkeypatch,
                                                                   failure, status, code):
    from scrubber.serve.app import Intake

    def failing(self, body, name):
        raise failure

    monkeypatch.setattr(Intake, "validate", failing)
    answer = service.post("/v1/validate", content=VALID.read_bytes(), headers=auth())
    assert answer.status_code == status and answer.json()["error"] == code
    assert ("retry-after" in answer.headers) == (status == 503)
    assert "SAMPLETON" not in answer.text


def test_a_key_held_by_a_dead_worker_is_taken_over_at_once_a_live_ones_is_not(tmp_path):
    import hashlib

    from scrubber.procs import Owner

    body = VALID.read_bytes()
    digest = hashlib.sha256(body).hexdigest()
    headers = {**auth(), "Idempotency-Key": "held"}
    config = settings(tmp_path, idempotency_wait=0.5)
    me = Owner.current()
    with TestClient(create_app(config)) as client:
        # a live worker (of another machine, its lease running) holds the key: the retry
        # waits, then 409
        far = Owner("another-host/boot/1", 4242, 77)
        live = open_submissions(config.store_target, owner=far).claim("acme", "held", digest)
        assert live.won
        waiting = client.post("/v1/submissions", content=body, headers=headers)
        assert waiting.status_code == 409 and waiting.json()["error"] == "in_progress"
        open_submissions(config.store_target).abandon(live.submission.id)
        # a worker of this machine that died holds it (the same pid started at another
        # time is another process): taken over by the first retry, without waiting it out
        gone = Owner(me.machine, me.pid, me.started + 1)
        dead = open_submissions(config.store_target, owner=gone).claim("acme", "held", digest)
        assert dead.won
        (config.submissions_dir / dead.submission.id).mkdir()  # what it had written
        taken = client.post("/v1/submissions", content=body, headers=headers)
        assert taken.status_code == 201 and taken.json()["id"] != dead.submission.id
        assert not (config.submissions_dir / dead.submission.id).exists()
        again = client.post("/v1/submissions", content=body, headers=headers)
        assert again.json()["id"] == taken.json()["id"]


def test_a_key_held_on_another_machine_is_taken_over_when_its_lease_runs_out(tmp_path):
    import hashlib

    from scrubber.procs import Owner

    body = VALID.read_bytes()
    headers = {**auth(), "Idempotency-Key": "elsewhere"}
    config = settings(tmp_path, idempotency_wait=30)
    with TestClient(create_app(config)) as client:
        far = Owner("another-host/boot/1", 4242, 77)  # this machine cannot see if it lives
        held = open_submissions(config.store_target, owner=far, lease=0.3).claim(
            "acme", "elsewhere", hashlib.sha256(body).hexdigest())
        taken = client.post("/v1/submissions", content=body, headers=headers)
        assert taken.status_code == 201 and taken.json()["id"] != held.submission.id
