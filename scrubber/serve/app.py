"""The ASGI application: request -> spooled source + ScrubOptions -> the core -> sinks.

Endpoints (OpenAPI at ``/openapi.json``, pages at ``/docs``): ``POST
/v1/validate`` scrubs and records nothing; ``POST /v1/submissions`` is the
intake (records accepted claims, keeps reports and acknowledgements);
``GET /v1/submissions/{id}`` and ``/{id}/277ca|999|ta1`` hand them back to
the client that submitted; ``/healthz`` and ``/readyz`` are for probes.

Scrubbing runs in a worker thread, never on the event loop. Every error is
a JSON body ``{"error": code, "message": text}`` with a 4xx status (503 when
the ledger or the store is down): no traceback ever reaches a client, and the
access log holds the route template, status and time, never a body, a query
string or a name.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import replace
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import Match
from starlette.types import Message, Receive, Scope, Send

from scrubber import __version__
from scrubber.api import FileOutcome, process_file
from scrubber.archives import expand
from scrubber.core import Recording, Scrubber
from scrubber.emit.sinks import report_sink
from scrubber.ledger import LedgerError
from scrubber.rules import Profile, load_profile
from scrubber.serve.settings import ServeSettings
from scrubber.serve.spool import (
    NoFile,
    Spooled,
    TooLarge,
    discard,
    multipart_file,
    spool_body,
)
from scrubber.serve.store import (
    KeyClaim,
    LeaseKeeper,
    StoreError,
    Submission,
    SubmissionStore,
    open_submissions,
)

log = logging.getLogger("scrubber.serve")
access_log = logging.getLogger("scrubber.serve.access")

X12_MEDIA = "application/edi-x12"
REPORT_STEM = "report"
ID_PATTERN = r"^[0-9a-f]{32}$"
PURGE_EVERY = 600.0  # seconds between retention sweeps of one worker
STALE_SPOOL = 3600.0  # a spool file this old was left by a crashed worker

_X12_BODY = {"schema": {"type": "string", "format": "binary"}}
_BODY = {"requestBody": {"required": True, "content": {
    X12_MEDIA: _X12_BODY,
    "application/octet-stream": _X12_BODY,
    "text/plain": {"schema": {"type": "string"}},
    "multipart/form-data": {"schema": {
        "type": "object", "required": ["file"],
        "properties": {"file": {"type": "string", "format": "binary"}}}},
}}}


class ErrorAnswer(BaseModel):
    """Every error: a code to branch on and a sentence for a person."""

    error: str
    message: str
    problems: list[dict[str, Any]] | None = None  # not_an_837: the located problems


class ReadyAnswer(BaseModel):
    """What /readyz answers: ready or not; what is wrong only to a known client."""

    status: Literal["ready", "not ready"]
    problems: list[str] | None = None
    # whether the installed reference data covers today (docs/data.md): kinds and a date
    data: dict[str, Any] | None = None


class Counts(BaseModel):
    claims: int
    accepted: int
    rejected: int
    envelope_problems: int


class SubmissionItem(BaseModel):
    """One submission in GET /v1/submissions: no patient, no file name, no report content."""

    id: str
    created: str  # ISO 8601 UTC
    state: Literal["pending", "done"]
    verdict: Literal["accepted", "rejected", "failed"] | None = None  # once done
    counts: Counts | None = None
    links: dict[str, str]


class SubmissionPage(BaseModel):
    """What GET /v1/submissions answers: a page of the client's submissions, newest first."""

    submissions: list[SubmissionItem]
    next: str | None  # the next page's URL; None on the last page


class SubmissionAnswer(BaseModel):
    """What POST /v1/submissions answers (201), and a retry with its key again."""

    id: str
    file: str  # the upload's file name, as in the reports
    verdict: Literal["accepted", "rejected", "failed"]
    counts: Counts
    links: dict[str, str]  # self, report_json/html/text, and 277ca/999/ta1 when there are


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    said = {400: "the body is not an 837 at all; `problems` says where",
            401: "no or an unknown bearer token", 404: "no such submission of this client",
            409: "the first request with this Idempotency-Key is still being scrubbed",
            413: "the body is larger than the limit",
            422: "the Idempotency-Key was used before with another body, or a bad parameter",
            503: "the ledger or the submission store cannot be reached, or the data folder "
                 "is full (`Retry-After` says when to try again)"}
    return {status: {"description": said[status], "model": ErrorAnswer} for status in statuses}


class ApiError(Exception):
    """An answer other than success, as ``{"error": code, "message": text}``."""

    def __init__(self, status: int, code: str, message: str,
                 headers: dict[str, str] | None = None, extra: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers
        self.extra = extra or {}

    def response(self) -> JSONResponse:
        return JSONResponse({"error": self.code, "message": self.message, **self.extra},
                            status_code=self.status, headers=self.headers)


class AckKind(StrEnum):
    """The acknowledgements a submission may have."""

    ack_277ca = "277ca"
    ack_999 = "999"
    ta1 = "ta1"


class Ledgers:
    """This process's open ledger stores, one per request thread at a time.

    Opening a ledger migrates, counts and sweeps it: done once per store, not
    per request. A store (one SQLite connection, or one PostgreSQL session)
    runs one transaction at a time, so each request takes its own from the
    pool and gives it back when done; a store a request left in doubt (it
    failed, or still holds a recording it could not end) is closed instead,
    as every request's store was before (closing lets its leases go, so the
    next sweep or ``resolve`` can end what it held).
    """

    def __init__(self, target: str | os.PathLike | None):
        self._target = target
        self._free: list[Any] = []
        self._spoiled: set[int] = set()  # id() of stores in use that must not come back
        self._lock = threading.Lock()

    @contextmanager
    def store(self) -> Iterator[Any]:
        from scrubber.ledger import open_store

        with self._lock:
            store = self._free.pop() if self._free else None
        if store is None:
            store = open_store(self._target)
        try:
            yield store
        except BaseException:
            self._spoiled.discard(id(store))
            store.close()
            raise
        with self._lock:
            spoiled = id(store) in self._spoiled
            self._spoiled.discard(id(store))
            if not spoiled:
                self._free.append(store)
        if spoiled:
            store.close()

    def spoil(self, store: Any) -> None:
        """Close ``store`` when its request is done instead of keeping it."""
        with self._lock:
            self._spoiled.add(id(store))

    def close(self) -> None:
        with self._lock:
            stores, self._free = self._free, []
        for store in stores:
            store.close()


class Intake:
    """What the endpoints share: settings, the submission store, and the blocking work."""

    def __init__(self, settings: ServeSettings):
        settings.prepare()
        self.settings = settings
        self.store: SubmissionStore = open_submissions(settings.store_target,
                                                       lease=settings.lease)
        self.leases = LeaseKeeper(self.store)
        options = settings.options
        if not isinstance(options.profile, Profile):  # load it once, not per request
            options = replace(options, profile=load_profile(options.profile))
        self.check_options = replace(options, record=False)
        self.intake_options = replace(options, record=options.ledger is not None)
        self.ledgers = Ledgers(options.ledger) if options.ledger is not None else None
        self.guides_loaded = False
        self._last_purge = 0.0
        self._said_unready: tuple[str, ...] = ()

    # -- start-up and probes -----------------------------------------------------------------
    def warm(self) -> None:
        """Load the implementation guides and the profile's engine once, before traffic."""
        from scrubber.ig import load_guides

        if self.settings.options.conformance:
            load_guides()
        self.guides_loaded = True
        self._sweep_spool()
        for orphan in self.store.orphans():  # left by a worker that died
            self.drop_orphan(orphan)
        try:
            self.resolve()
        except LedgerError as exc:  # /readyz says the ledger is down; the next purge retries
            log.warning("held claims of stopped submissions not ended yet: %s", exc)
        self.purge()

    def ready(self) -> list[str]:
        """What keeps the service from taking claims (empty: ready), logged when it changes.

        The problems name paths and addresses: /readyz shows them only to a
        known client; the log always has them.
        """
        problems = self._problems()
        said = tuple(problems)
        if said != self._said_unready:
            if problems:
                log.warning("not ready: %s", "; ".join(problems))
            else:
                log.info("ready again")
            self._said_unready = said
        return problems

    def _problems(self) -> list[str]:
        problems = []
        if not self.guides_loaded:
            problems.append("the implementation guides are still loading")
        try:
            self.store.ping()
        except StoreError as exc:
            problems.append(str(exc))
        try:
            Scrubber(self.check_options).close()  # opens (and closes) the ledger
        except (LedgerError, OSError) as exc:
            problems.append(f"the ledger cannot be opened: {exc}")
        return problems

    def data_freshness(self) -> dict:
        """Whether the installed reference data covers today: options and dates, no paths."""
        from scrubber.data import freshness_report

        store = self.settings.options.data
        return freshness_report(store) if store is not None else {"installed": "not used"}

    def _sweep_spool(self) -> None:
        cutoff = time.time() - STALE_SPOOL
        for entry in os.scandir(self.settings.spool_dir):
            try:
                if entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)
            except OSError:
                pass

    def purge(self) -> int:
        """Remove submissions older than the retention period, reports first; end what
        stopped submissions held in the ledger (``resolve``)."""
        self._last_purge = time.monotonic()
        try:
            self.resolve()
        except LedgerError as exc:
            log.warning("held claims of stopped submissions not ended yet: %s", exc)
        days = self.settings.retention_days
        if days <= 0:
            return 0
        removed = 0
        for old in self.store.expired(days):
            if old.folder:
                shutil.rmtree(old.folder, ignore_errors=True)
            self.store.remove(old.id)
            removed += 1
        return removed

    def claim(self, client: str, key: str | None, body_sha256: str) -> KeyClaim:
        """Claim a submission for this process (its lease kept from before the claim)."""
        submission_id = uuid.uuid4().hex
        self.leases.add(submission_id)
        claim = self.store.claim(client, key, body_sha256, submission_id)
        if not claim.won:
            self.leases.discard(submission_id)
        return claim

    def drop_orphan(self, holder: Submission) -> bool:
        """Drop a submission nobody will finish, with what it wrote: its worker died, or
        this process gave it up without being able to delete it."""
        abandoned = holder.owner == self.store.owner and holder.id not in self.leases
        if not self.store.take_over(holder, abandoned=abandoned):
            return False
        shutil.rmtree(self.settings.submissions_dir / holder.id, ignore_errors=True)
        return True

    def purge_due(self) -> bool:
        return time.monotonic() - self._last_purge > PURGE_EVERY

    # -- the work, run in a thread -------------------------------------------------------------
    def validate(self, body: Spooled, name: str) -> tuple[bool, Path]:
        """Scrub without recording into a JSON report file: (readable, report path)."""
        fd, report = _private_temp(self.settings.spool_dir, ".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out, self._ledger() as ledger, \
                    Scrubber(self.check_options, ledger=ledger) as scrubber:
                outcome = scrubber.run(expand(str(body.path), name), [report_sink("json", out)])
        except BaseException:
            os.unlink(report)
            raise
        return not outcome.unreadable, report

    def split(self, body: Spooled, name: str) -> tuple[bool, Path]:
        """Split without recording (scrubber.split): (readable, the JSON answer's path).

        The answer carries the counts, the claims held with a partner, the two
        batches as text and the run's JSON report; the batches' control numbers
        are fresh. Nothing is recorded: the client sends the accepted batch
        (to /v1/submissions, which records what it accepts) when it sends it.
        """
        from scrubber.split import split

        folder = Path(tempfile.mkdtemp(prefix="split-", dir=self.settings.spool_dir))
        fd, answer = _private_temp(self.settings.spool_dir, ".json")
        try:
            report = folder / "report.json"
            with Scrubber(self.check_options) as scrubber:
                result = split([(str(body.path), name)], folder / "accepted.x12",
                               folder / "held.x12", scrubber=scrubber, report=report,
                               fmt="json")

            def text(path: str | None) -> str | None:
                return Path(path).read_bytes().decode("utf-8", "replace") if path else None

            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump({
                    "claims": result.claims, "accepted": result.accepted,
                    "held": result.held, "rejected": result.rejected,
                    "held_with_partner": [{"claim_id": p.claim_id,
                                           "rejected_with": list(p.rejected_with)}
                                          for p in result.partners],
                    "complete": result.complete,
                    "accepted_controls": list(result.accepted_controls),
                    "held_controls": list(result.held_controls),
                    "accepted_batch": text(result.accepted_file),
                    "held_batch": text(result.held_file),
                    "report": json.loads(report.read_text(encoding="utf-8")),
                }, out)
        except BaseException:
            os.unlink(answer)
            raise
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return not result.outcome.unreadable, answer

    def submit(self, submission: Submission, body: Spooled, name: str) -> tuple[int, dict]:
        """Scrub, record and keep one claimed submission; store and return its answer.

        The accepted claims are held in the ledger under a recording prepared for
        this submission (``coordinator``) and sent once its answer is stored: a
        submission that fails, or whose worker dies, sends nothing, and one that
        died between its answer and the ledger's commit is sent at the next start
        (``resolve``).
        """
        folder = self.settings.submissions_dir / submission.id
        try:
            with self._ledger() as ledger, \
                    Scrubber(self.intake_options, ledger=ledger) as scrubber:
                # prepared for this submission as it begins (one ledger write, not two)
                recording = scrubber.begin_recording(self.coordinator(submission.id))
                try:
                    folder.mkdir(mode=0o700)
                    outcome = process_file(str(body.path), str(folder), stem=REPORT_STEM,
                                           name=name, scrubber=scrubber, recording=recording)
                    status, answer = _submission_answer(submission.id, name, outcome, folder)
                    self.store.finish(submission.id, status, answer, str(folder))
                except BaseException:
                    if recording is not None:
                        self._end(recording, send=False)
                    raise
                if recording is not None and not self._end(recording, send=True):
                    assert self.ledgers is not None
                    self.ledgers.spoil(ledger)  # it holds the recording's lease: close it
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            try:
                self.store.abandon(submission.id)
            except StoreError as exc:  # a retry takes it over (drop_orphan)
                log.warning("submission not abandoned: %s", exc)
            raise
        finally:
            self.leases.discard(submission.id)
        return status, answer

    def coordinator(self, submission_id: str = "") -> str:
        """How this service names itself on the recordings it prepares: its submission store
        (as a digest: no path or address in the ledger) and the submission."""
        import hashlib

        store = hashlib.blake2b(self.settings.store_target.encode(), digest_size=6).hexdigest()
        return f"serve:{store}:{submission_id}"

    @contextmanager
    def _ledger(self) -> Iterator[Any]:
        """An open ledger store of this process for one request (None without a ledger)."""
        if self.ledgers is None:
            yield None
            return
        with self.ledgers.store() as store:
            yield store

    @staticmethod
    def _end(recording: Recording, *, send: bool) -> bool:
        """Send (or drop) what a submission's recording holds; a ledger that fails now leaves
        it prepared, for ``resolve`` to end from the submission's row (False then)."""
        try:
            if send:
                recording.commit()
            else:
                recording.discard()
        except LedgerError as exc:
            log.warning("the ledger could not %s a submission's claims now (%s); they stay "
                        "held until the next start", "send" if send else "drop", exc)
            return False
        return True

    def resolve(self) -> int:
        """End the recordings of submissions whose worker stopped between answer and commit:
        sent when the submission was answered (its row done), dropped otherwise. Ended."""
        options = self.intake_options
        if not options.record or options.ledger is None:
            return 0
        from scrubber.ledger import open_store

        ended = 0
        with open_store(options.ledger) as ledger:
            for recording, coordinator in ledger.prepared(self.coordinator()):
                found = self.store.by_id(coordinator.rpartition(":")[2])
                if found is not None and not found.done and not found.orphaned():
                    continue  # its worker still runs
                held = Recording(ledger, recording)
                self._end(held, send=found is not None and found.done)
                ended += 1
        return ended


def _private_temp(folder: Path, suffix: str) -> tuple[int, Path]:
    import tempfile

    fd, name = tempfile.mkstemp(prefix="out-", suffix=suffix, dir=folder)  # mode 0600
    return fd, Path(name)


def _file_problems(report: Path) -> list[dict]:
    """The located problems of an unreadable file, from its JSON report."""
    with open(report, encoding="utf-8") as handle:
        files = json.load(handle).get("files", [])
    return files[0].get("problems", []) if files else []


PAGE_SIZE, PAGE_MAX = 50, 500  # GET /v1/submissions: a page by default, at most


def _listed(row: Submission) -> dict[str, Any]:
    """A submission as GET /v1/submissions lists it: from its stored answer, no PHI."""
    answer = row.answer or {}
    item: dict[str, Any] = {"id": row.id, "created": row.created,
                            "state": "done" if row.done else "pending",
                            "links": {"self": f"/v1/submissions/{row.id}"}}
    if row.done:
        item["verdict"] = answer.get("verdict")
        item["counts"] = answer.get("counts")
        item["links"] = answer.get("links") or item["links"]
    return item


def _submission_answer(submission_id: str, name: str, outcome: FileOutcome, folder: Path
                       ) -> tuple[int, dict]:
    base = f"/v1/submissions/{submission_id}"
    links = {"self": base, **{f"report_{fmt}": f"{base}?format={fmt}"
                              for fmt in ("json", "html", "text")}}
    for kind in AckKind:
        if (folder / f"{REPORT_STEM}.{kind.value}.x12").is_file():
            links[kind.value] = f"{base}/{kind.value}"
    answer: dict[str, Any] = {
        "id": submission_id, "file": name, "verdict": outcome.verdict,
        "counts": {"claims": outcome.claims, "accepted": outcome.accepted,
                   "rejected": outcome.rejected, "envelope_problems": outcome.envelope_errors},
        "links": links}
    if outcome.unreadable:
        answer = {"error": "not_an_837", "message": outcome.reason,
                  "problems": _file_problems(folder / f"{REPORT_STEM}.json"), **answer}
        return 400, answer
    return 201, answer


def _upload_name(filename: str | None) -> str:
    """A file name safe to show in reports: its last component, printable, bounded."""
    name = Path((filename or "").replace("\\", "/")).name
    name = "".join(ch for ch in name if ch.isprintable())[:120]
    return name or "upload.x12"


async def _spooled_body(request: Request, settings: ServeSettings) -> tuple[Spooled, str]:
    """The request's 837 on disk and the name to report it under; 413 past the limit."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > settings.max_body:
        await discard(request.stream())
        raise ApiError(413, "too_large", f"the body is larger than {settings.max_body} bytes",
                       headers={"Connection": "close"})
    try:
        body = await spool_body(request.stream(), settings.spool_dir, settings.max_body)
    except ClientDisconnect:
        raise ApiError(400, "incomplete_body", "the client went away before the body "
                       "was complete") from None
    except TooLarge as exc:
        raise ApiError(413, "too_large", str(exc), headers={"Connection": "close"}) from None
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/"):
        return body, "upload.x12"
    try:
        part, filename = await run_in_threadpool(multipart_file, body, content_type,
                                                  settings.spool_dir)
    except NoFile as exc:
        raise ApiError(400, "no_file", str(exc)) from None
    finally:
        body.remove()
    return part, _upload_name(filename)


def _key(value: str | None) -> str | None:
    if value is None:
        return None
    if not 1 <= len(value) <= 255 or not value.isprintable():
        raise ApiError(422, "bad_idempotency_key",
                       "an Idempotency-Key is 1 to 255 printable characters")
    return value


class AccessLog:
    """ASGI middleware: one line a request with the client, method, route template, status.

    The route template (``/v1/submissions/{submission_id}``), never the
    path as sent nor its query string, and never a body: nothing here can
    carry a member id, a name or a birth date. An exception nothing else
    handled ends here as a JSON 500 and one log line naming its class: a
    traceback or an exception's message could quote the claim file.
    """

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [0]

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as exc:
            route = getattr(scope.get("route"), "path", None) or "<no route>"
            log.error("internal error %s on %s", type(exc).__name__, route)
            if not status[0]:
                await ApiError(500, "internal", "the request could not be handled"
                               ).response()(scope, receive, sending)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "<no route>"
            access_log.info("%s %s %s %d %.1fms", scope.get("state", {}).get("client", "-"),
                            scope["method"], template, status[0] or 500,
                            (time.perf_counter() - start) * 1000)


_bearer = HTTPBearer(auto_error=False, description="a client's token from the token file")


async def _client(request: Request, credentials: Annotated[
        HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> str:
    """The client a request's bearer token names; 401 without a known one."""
    found = None
    if credentials is not None and credentials.scheme.lower() == "bearer":
        found = request.app.state.intake.settings.clients.client_for(credentials.credentials)
    if found is None:
        raise ApiError(401, "unauthorized", "give a known bearer token",
                       headers={"WWW-Authenticate": "Bearer"})
    request.scope.setdefault("state", {})["client"] = found
    return found


Client = Annotated[str, Depends(_client)]
SubmissionId = Annotated[str, PathParam(pattern=ID_PATTERN,
                                        description="the submission id (32 hex digits)")]


def create_app(settings: ServeSettings) -> FastAPI:
    """The service for ``settings``: every worker process builds its own."""
    from contextlib import asynccontextmanager

    intake = Intake(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(intake.warm)
        yield
        intake.leases.close()
        intake.store.close()
        if intake.ledgers is not None:
            intake.ledgers.close()

    app = FastAPI(title="scrubber intake", version=__version__, lifespan=lifespan,
                  description="Scrub X12 837 claims before they go to a payer: validate, "
                              "or submit (accepted claims are recorded in the claim ledger) "
                              "and fetch the reports and the 277CA, 999 and TA1.")
    app.state.intake = intake
    app.add_middleware(AccessLog)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:  # every method of the path, not only its first route's
            allowed = {method for route in app.router.routes
                       if route.matches(request.scope)[0] is not Match.NONE
                       for method in getattr(route, "methods", None) or ()}
            headers = {**(headers or {}), "Allow": ", ".join(sorted(allowed))}
        return ApiError(exc.status_code, "http_" + str(exc.status_code), str(exc.detail),
                        headers=headers).response()

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        where = "; ".join(".".join(str(p) for p in e.get("loc", ())) + ": " + e.get("msg", "")
                          for e in exc.errors())
        return ApiError(422, "bad_request", where).response()

    @app.exception_handler(StoreError)
    @app.exception_handler(LedgerError)
    async def unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.error("unavailable: %s", exc)  # names the path or address: the log, not the client
        what = "submission store" if isinstance(exc, StoreError) else "claim ledger"
        return ApiError(503, "unavailable", f"the {what} cannot be used just now; "
                        "try again later", headers={"Retry-After": "5"}).response()

    @app.exception_handler(OSError)
    async def out_of_room(request: Request, exc: OSError) -> JSONResponse:
        """A full data folder or no file descriptors left: 503, the client tries again later."""
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            log.error("the data folder is full (%s)", errno.errorcode[exc.errno])
            return ApiError(503, "storage_full", "the service has no room to keep this "
                            "submission just now; try again later",
                            headers={"Retry-After": "30"}).response()
        if exc.errno in (errno.EMFILE, errno.ENFILE):
            log.error("out of file descriptors (%s)", errno.errorcode[exc.errno])
            return ApiError(503, "busy", "the service is at its limit just now; try again "
                            "later", headers={"Retry-After": "5"}).response()
        raise exc  # a bug: AccessLog answers it as a JSON 500

    @app.get("/healthz", tags=["probes"])
    async def healthz() -> dict:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["probes"], response_model=ReadyAnswer,
             responses={503: {"description": "not ready", "model": ReadyAnswer}})
    async def readyz(request: Request) -> JSONResponse:
        """The ledger and the submission store answer and the guides are loaded.

        Anyone may ask (a load balancer has no token); what is wrong (paths,
        addresses) is listed only for a known client's bearer token. ``data`` says
        whether the installed reference data covers today (kinds and a date, no
        paths); it does not decide readiness: stale data still scrubs, with notices.
        """
        problems = await run_in_threadpool(intake.ready)
        data = await run_in_threadpool(intake.data_freshness)
        if not problems:
            return JSONResponse({"status": "ready", "data": data})
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        answer: dict[str, Any] = {"status": "not ready", "data": data}
        if scheme.lower() == "bearer" and intake.settings.clients.client_for(token.strip()):
            answer["problems"] = problems
        return JSONResponse(answer, status_code=503)

    @app.post("/v1/validate", tags=["claims"], openapi_extra=_BODY,
              responses={200: {"description": "the JSON report (as `scrub check --format "
                                              "json`), whatever the verdict",
                               "content": {"application/json": {}}},
                         **_errors(400, 401, 413, 503)})
    async def validate(request: Request, who: Client) -> Response:
        """Scrub an 837 (raw body or a multipart file) and answer its report; nothing is kept."""
        body, name = await _spooled_body(request, settings)
        try:
            readable, report = await run_in_threadpool(intake.validate, body, name)
        finally:
            body.remove()
        if not readable:
            try:
                problems = _file_problems(report)
            finally:
                os.unlink(report)
            said = problems[0]["message"] if problems else "the body is not an X12 837"
            raise ApiError(400, "not_an_837", said, extra={"problems": problems})
        return FileResponse(report, media_type="application/json",
                            background=BackgroundTask(os.unlink, report))

    @app.post("/v1/split", tags=["claims"], openapi_extra=_BODY,
              responses={200: {"description": "the accepted and the held claims as two "
                                              "837 batches, counts, and the JSON report",
                               "content": {"application/json": {}}},
                         **_errors(400, 401, 413, 422, 503)})
    async def split(request: Request, who: Client) -> Response:
        """Split an 837 into a batch ready to send and a batch to hold; nothing is kept."""
        from scrubber.split import SplitError

        body, name = await _spooled_body(request, settings)
        try:
            readable, answer = await run_in_threadpool(intake.split, body, name)
        except SplitError as exc:
            raise ApiError(422, "not_split", str(exc)) from None
        finally:
            body.remove()
        if not readable:
            try:
                said = json.loads(Path(answer).read_text(encoding="utf-8"))["report"]
                problems = [p for f in said.get("files", []) for p in f.get("problems", [])]
            finally:
                os.unlink(answer)
            raise ApiError(400, "not_an_837", problems[0]["message"] if problems else
                           "the body is not an X12 837", extra={"problems": problems})
        return FileResponse(answer, media_type="application/json",
                            background=BackgroundTask(os.unlink, answer))

    @app.post("/v1/submissions", tags=["claims"], status_code=201, openapi_extra=_BODY,
              responses={201: {"description": "the submission: id, verdict, counts, links",
                               "model": SubmissionAnswer},
                         **_errors(400, 401, 409, 413, 422, 503)})
    async def submit(request: Request, who: Client,
                     idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")]
                     = None) -> JSONResponse:
        """Scrub an 837, record its accepted claims and keep its reports and acknowledgements.

        With an ``Idempotency-Key``, a retry gets the first request's answer
        and nothing is scrubbed or recorded again.
        """
        key = _key(idempotency_key)
        body, name = await _spooled_body(request, settings)
        try:
            status, answer, replayed = await _intake(intake, who, key, body, name)
        finally:
            body.remove()
        if intake.purge_due():
            await run_in_threadpool(intake.purge)
        headers = {"Location": answer["links"]["self"]} if "links" in answer else {}
        if replayed:
            headers["Idempotent-Replayed"] = "true"
        return JSONResponse(answer, status_code=status, headers=headers)

    @app.get("/v1/submissions", tags=["claims"], response_model=SubmissionPage,
             responses=_errors(401, 404, 422))
    async def submissions(request: Request, who: Client,
                          limit: Annotated[int, Query(ge=1, le=PAGE_MAX)] = PAGE_SIZE,
                          before: Annotated[str | None, Query(pattern=ID_PATTERN)] = None
                          ) -> JSONResponse:
        """This client's submissions, newest first, ``limit`` a page (``next`` links the
        following page): id, when, state, verdict, counts and links; no patient data."""
        unknown = sorted(set(request.query_params) - {"limit", "before"})
        if unknown:  # a misspelt limit= must not quietly give the default page
            raise ApiError(422, "bad_request", f"unknown query parameter {unknown[0]!r} "
                           "(known: limit, before)")
        after = None
        if before is not None:
            after = await run_in_threadpool(intake.store.get, who, before)
            if after is None:
                raise ApiError(404, "not_found", "no such submission (before=)")
        rows = await run_in_threadpool(intake.store.page, who, limit + 1, after)
        more = len(rows) > limit
        rows = rows[:limit]
        page = {"submissions": [_listed(row) for row in rows],
                "next": f"/v1/submissions?limit={limit}&before={rows[-1].id}" if more
                else None}
        return JSONResponse(page)

    async def _owned(who: str, submission_id: str) -> Submission:
        found = await run_in_threadpool(intake.store.get, who, submission_id)
        if found is None or not found.folder:
            if found is not None and not found.done:
                raise ApiError(409, "in_progress", "this submission is still being scrubbed")
            raise ApiError(404, "not_found", "no such submission")
        return found

    @app.get("/v1/submissions/{submission_id}", tags=["claims"],
             responses={200: {"description": "the report", "content": {
                 "application/json": {}, "text/html": {}, "text/plain": {}}},
                 **_errors(401, 404, 409, 422)})
    async def report(submission_id: SubmissionId, who: Client,
                     format: Annotated[Literal["json", "html", "text"], Query()] = "json"
                     ) -> Response:
        """A submission's report: JSON (names included), HTML or text (names masked)."""
        found = await _owned(who, submission_id)
        suffix, media = {"json": ("json", "application/json"), "html": ("html", "text/html"),
                         "text": ("txt", "text/plain")}[format]
        path = Path(found.folder or "") / f"{REPORT_STEM}.{suffix}"
        if not path.is_file():
            raise ApiError(404, "not_found", "the report is no longer kept")
        return FileResponse(path, media_type=media)

    @app.get("/v1/submissions/{submission_id}/{kind}", tags=["claims"],
             responses={200: {"description": "the acknowledgement (X12)",
                              "content": {X12_MEDIA: {}}}, **_errors(401, 404, 409, 422)})
    async def acknowledgement(kind: AckKind, submission_id: SubmissionId,
                              who: Client) -> Response:
        """A submission's 277CA, 999 or TA1; 404 when it has none of that kind."""
        found = await _owned(who, submission_id)
        path = Path(found.folder or "") / f"{REPORT_STEM}.{kind.value}.x12"
        if not path.is_file():
            raise ApiError(404, "not_found", f"this submission has no {kind.value}")
        return FileResponse(path, media_type=X12_MEDIA)

    return app


async def _intake(intake: Intake, client: str, key: str | None, body: Spooled, name: str
                  ) -> tuple[int, dict, bool]:
    """Claim the key and scrub, or return the first answer: (status, answer, replayed)."""
    for _ in range(3):  # a holder that failed or went stale hands the key on
        claim = await run_in_threadpool(intake.claim, client, key, body.sha256)
        if claim.won:
            status, answer = await run_in_threadpool(intake.submit, claim.submission, body,
                                                     name)
            return status, answer, False
        first = await _first_answer(intake, claim.submission, body)
        if first is not None:
            return (*first, True)
    raise ApiError(409, "in_progress", "the first request with this Idempotency-Key keeps "
                   "failing; send it again later", headers={"Retry-After": "5"})


async def _first_answer(intake: Intake, holder: Submission, body: Spooled
                        ) -> tuple[int, dict] | None:
    """The answer the first request with this key got, waiting for it if need be.

    None when there is none to wait for: the first request failed (its claim
    was dropped), or its worker died (``Submission.orphaned``) and its claim
    is dropped here; the caller claims again.
    """
    if holder.body_sha256 != body.sha256:
        raise ApiError(422, "idempotency_key_reused",
                       "this Idempotency-Key was used with another body")
    store = intake.store
    deadline = time.monotonic() + intake.settings.idempotency_wait
    delay = 0.02
    found: Submission | None = holder
    while found is not None and not found.done:
        if await run_in_threadpool(intake.drop_orphan, found):
            return None
        if time.monotonic() >= deadline:
            break
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.5)
        found = await run_in_threadpool(store.get, holder.client, holder.id)
    if found is None:
        return None
    if not found.done or found.status is None or found.answer is None:
        raise ApiError(409, "in_progress", "the first request with this Idempotency-Key is "
                       "still being scrubbed; retry later", headers={"Retry-After": "5"})
    return found.status, found.answer
