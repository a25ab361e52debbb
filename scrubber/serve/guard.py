"""Below the application: a connection cap, deadlines for slow clients, JSON for bad HTTP.

uvicorn reads requests with h11 and hands each to the app, but by itself it
sets no deadline on a request head or body (a client sending a header line
every few seconds, or a body a byte at a time, keeps its connection for
ever), accepts every connection the kernel has queued (up to the listen
backlog in one go: far past a file-descriptor limit of 1,024, which then
fails every ``accept`` and every file the app opens), and answers what h11
cannot parse with plain text. ``scrub serve`` runs it with three parts of
its own, one ``Guard`` per worker process:

- ``Listener``: the listening socket; its ``accept`` keeps the number of
  open connections under the cap, so the process never runs out of file
  descriptors. At the cap it closes the connection that has waited longest
  without sending a whole request head (a slow or idle client) to let the
  new one in, or, when every connection is busy with a request, answers the
  new one 503.
- ``GuardedProtocol``: uvicorn's ``H11Protocol`` with the deadlines of
  ``ClientLimits`` (checked twice a second by ``Guard.sweep``), and a JSON
  ``{"error", "message"}`` for whatever it refuses before the app runs
  (malformed request, bad Content-Length or chunking, a head over
  ``head_limit``, a timeout).
- ``quiet_loop``: an event loop whose unexpected errors are one log line,
  never a traceback.

Why not uvicorn's own settings: ``limit_concurrency`` answers 503 only
*after* a request head arrived and counts slow connections as live ones
(a slow-loris attack then shuts out every real client), and
``timeout_keep_alive`` starts only after a first answer.
"""

from __future__ import annotations

import asyncio
import errno
import http
import json
import logging
import re
import resource
import socket
import time
from collections import Counter
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from scrubber.serve.settings import ClientLimits

log = logging.getLogger("scrubber.serve")

#: file descriptors kept for what a worker opens besides connections (stores, spool, reports)
FD_RESERVE = 256
#: connections that may be closing (their descriptor not yet freed) above the cap
SLACK = 32
#: connections refused in one ``accept`` call before the event loop gets a turn
REFUSE_BATCH = 64
#: seconds a connection answered with an error is still read (and dropped) before it is
#: closed, so that its client, perhaps still sending, hears the answer instead of a reset
LINGER = 2.0
SUMMARY_EVERY = 10.0  # seconds between log lines that count closed and refused connections
_ECHO = re.compile(r":?\s*(bytearray\()?b['\"].*$", re.S)


def answer(status: int, code: str, message: str, headers: dict[str, str] | None = None
           ) -> bytes:
    """A whole HTTP/1.1 answer with a JSON error body that closes the connection."""
    body = json.dumps({"error": code, "message": message}).encode()
    lines = [f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}",
             "content-type: application/json", f"content-length: {len(body)}",
             "connection: close", *(f"{name}: {value}" for name, value in
                                    (headers or {}).items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + body


AT_CAPACITY = answer(503, "busy", "the service is at its connection limit; try again",
                     {"retry-after": "1"})


def connection_cap(limits: ClientLimits) -> int:
    """``limits.max_connections``, lowered so that connections leave FD_RESERVE descriptors."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return max(16, min(limits.max_connections, max(soft // 4, soft - FD_RESERVE - SLACK)))


def raise_fd_limit() -> int:
    """Raise this process's soft file-descriptor limit to its hard limit; the new soft limit.

    Many systems start services with a soft limit of 1,024 and a hard limit
    far above it; a server that needs descriptors may take them (the Go
    runtime does the same at start).
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if wanted > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            return wanted
        except (ValueError, OSError):
            pass
    return soft


class Guard:
    """One worker's connections: how many, which wait for a request head, their deadlines."""

    def __init__(self, limits: ClientLimits):
        self.limits = limits
        self.cap = connection_cap(limits)
        self.connections: set[GuardedProtocol] = set()
        self.waiting: dict[GuardedProtocol, None] = {}  # no request in hand: oldest first
        self.lingering: dict[GuardedProtocol, None] = {}  # answered, closing softly
        self.closing: set[GuardedProtocol] = set()  # closed by us, descriptor not yet freed
        self.accepted = 0  # accepted sockets whose protocol is not connected yet
        self.last_accept = 0.0
        self.closed: Counter[str] = Counter()  # why connections were closed, for the log
        self._said = -SUMMARY_EVERY  # the first closures are logged at once
        self._timer: asyncio.TimerHandle | None = None
        self.tick = max(0.1, min(0.5, limits.header_timeout / 4))

    # -- accepting -------------------------------------------------------------------------------
    def crowded(self) -> bool:
        """Are descriptors of closed connections still to be freed before the next accept?"""
        return bool(self.closing) and len(self.connections) + self.accepted >= self.cap + SLACK

    def admit(self) -> bool:
        """Make room for a new connection, closing one at the cap: is there room?

        At the cap, the first to go is a connection that was answered and is
        closing softly, then the one that has waited longest without a request;
        without either, every connection is busy with a request: no room.
        """
        live = len(self.connections) + self.accepted - len(self.closing)
        while live >= self.cap and (self.lingering or self.waiting):
            if self.lingering:  # said what it had to: the first to go
                next(iter(self.lingering)).hang_up()
                live -= 1
            else:  # the one that has waited longest without a request (drop unlists it)
                oldest = next(iter(self.waiting))
                if oldest.drop("evicted at the cap", AT_CAPACITY if oldest.partial() else None,
                               linger=False):
                    live -= 1
        if live >= self.cap:
            return False
        self.accepted += 1
        self.last_accept = time.monotonic()
        return True

    # -- a connection's life ---------------------------------------------------------------------
    def connected(self, conn: GuardedProtocol) -> None:
        self.accepted = max(0, self.accepted - 1)
        self.connections.add(conn)
        self.waiting[conn] = None
        if self._timer is None:
            self._timer = conn.loop.call_later(self.tick, self.sweep, conn.loop)

    def lost(self, conn: GuardedProtocol) -> None:
        self.connections.discard(conn)
        self.waiting.pop(conn, None)
        self.lingering.pop(conn, None)
        self.closing.discard(conn)

    def busy(self, conn: GuardedProtocol) -> None:
        self.waiting.pop(conn, None)

    def idle(self, conn: GuardedProtocol) -> None:
        self.waiting.pop(conn, None)
        self.waiting[conn] = None  # the newest waiter

    # -- deadlines -------------------------------------------------------------------------------
    def sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        """Close every connection past its deadline; count what was closed in the log."""
        now = time.monotonic()
        for conn in list(self.connections):
            if conn not in self.closing and conn not in self.lingering:
                conn.check(now, self.tick)
        if now - self.last_accept > 1.0:
            self.accepted = 0  # a socket that failed before its protocol connected
        if self.closed and now - self._said >= SUMMARY_EVERY:
            log.warning("connections closed or refused: %s (%d open, cap %d)",
                        ", ".join(f"{count} {why}" for why, count in sorted(self.closed.items())),
                        len(self.connections), self.cap)
            self.closed.clear()
            self._said = now
        self._timer = loop.call_later(self.tick, self.sweep, loop)


class Listener(socket.socket):
    """The listening socket of one worker: ``accept`` asks the guard first (see ``Guard.admit``)."""

    guard: Guard

    def __init__(self, guard: Guard, fileno: int):
        super().__init__(fileno=fileno)
        self.guard = guard

    def accept(self) -> tuple[socket.socket, Any]:
        for _ in range(REFUSE_BATCH):
            if self.guard.crowded():  # what was closed is freed when the loop next turns
                raise BlockingIOError(errno.EAGAIN, "closing connections to make room")
            conn, address = super().accept()  # BlockingIOError when none is waiting
            if self.guard.admit():
                return conn, address
            with conn:  # refuse: every connection is busy with a request
                conn.setblocking(False)
                try:
                    conn.send(AT_CAPACITY)
                except OSError:
                    pass
            self.guard.closed["refused at the cap"] += 1
        raise BlockingIOError(errno.EAGAIN, "refused a batch; the loop takes a turn")


class _Connection(h11.Connection):
    """h11's connection, refusing a request head over the limit and keeping what it refused.

    h11's own limit holds only for a head still incomplete when it is read:
    one that arrives whole in a single read (up to 256 KiB) passes, so the
    size of every parsed head is checked here too.
    """

    refused: h11.RemoteProtocolError | None = None

    def __init__(self, head_limit: int):
        super().__init__(h11.SERVER, max_incomplete_event_size=head_limit)
        self.head_limit = head_limit

    def next_event(self) -> Any:
        try:
            event = super().next_event()
            if isinstance(event, h11.Request) and _head_size(event) > self.head_limit:
                raise h11.RemoteProtocolError("request head too large", error_status_hint=431)
        except h11.RemoteProtocolError as exc:
            self.refused = exc
            raise
        return event


def _head_size(request: h11.Request) -> int:
    return len(request.method) + len(request.target) + sum(
        len(name) + len(value) + 4 for name, value in request.headers.raw_items())


class GuardedProtocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol under a ``Guard``: deadlines, and JSON for what it refuses.

    Phases and their deadlines (``ClientLimits``): no request in hand (a new
    connection, or after an answer) -> a whole request head within
    ``header_timeout``; reading a body -> ``body_min_rate`` bytes a second
    after a ``body_timeout`` allowance, counting only time the service was
    ready to read; the app working -> none; answering -> ``send_timeout`` of
    a client that reads nothing.
    """

    def __init__(self, config: Any, server_state: Any, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None, *, guard: Guard):
        super().__init__(config, server_state, app_state, _loop)
        self.guard = guard
        self.conn = self._h11 = _Connection(guard.limits.head_limit)
        self.phase_since = time.monotonic()
        self.body_bytes = 0
        self.body_seconds = 0.0  # time the body was awaited with reading not paused
        self.stalled = 0.0  # time the answer could not be written
        self._linger: asyncio.TimerHandle | None = None

    # -- the protocol's events -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.guard.connected(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.guard.lost(self)
        if self._linger is not None:
            self._linger.cancel()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self in self.guard.lingering:
            return  # answered and closing: read on, keep nothing
        if self._reading_body():
            self.body_bytes += len(data)
        try:
            super().data_received(data)
        except Exception as exc:  # uvicorn choked on what h11 let through
            log.warning("bad request refused (%s)", type(exc).__name__)
            self.drop("malformed", answer(400, "malformed_request",
                                          "the request is not valid HTTP/1.1"))

    def handle_events(self) -> None:
        before = self.cycle
        super().handle_events()
        if self.cycle is not before and self.cycle is not None:  # a request head arrived
            self.guard.busy(self)
            self.phase_since = time.monotonic()
            self.body_bytes = 0
            self.body_seconds = self.stalled = 0.0

    def on_response_complete(self) -> None:
        self.guard.idle(self)  # before uvicorn may start a pipelined request
        self.phase_since = time.monotonic()
        super().on_response_complete()

    def send_400_response(self, msg: str) -> None:
        """What h11 refused, as JSON: 400, 431 for a head over the limit, 501 for a coding."""
        refused = self._h11.refused
        status = refused.error_status_hint if refused is not None else 400
        said = _ECHO.sub("", str(refused or msg))[:200]  # h11 quotes the bytes it refused
        if status == 431:
            body = answer(431, "head_too_large",
                          f"the request head is larger than {self.guard.limits.head_limit} bytes")
        elif status == 501:
            body = answer(501, "not_implemented", said)
        else:
            body = answer(400, "malformed_request", f"the request is not valid HTTP/1.1: {said}")
        self.drop("malformed", None if self._answering() else body)

    # -- deadlines -------------------------------------------------------------------------------
    def _answering(self) -> bool:
        return self.cycle is not None and self.cycle.response_started \
            and not self.cycle.response_complete

    def _reading_body(self) -> bool:
        cycle = self.cycle
        return cycle is not None and cycle.more_body and not cycle.disconnected \
            and not cycle.response_complete

    def partial(self) -> bool:
        """Has part of a request head arrived (so the client is owed an answer)?"""
        return bool(self.conn.trailing_data[0])

    def check(self, now: float, tick: float) -> None:
        """Close this connection if it is past its phase's deadline (``Guard.sweep``)."""
        limits = self.guard.limits
        if self in self.guard.waiting:
            if now - self.phase_since > limits.header_timeout:
                self.drop("header timeout", answer(
                    408, "request_timeout", f"the request head did not arrive within "
                    f"{limits.header_timeout:g} s") if self.partial() else None)
        elif self._reading_body():
            if not self.flow.read_paused:
                self.body_seconds += tick
            if self.body_seconds > limits.body_timeout + self.body_bytes / limits.body_min_rate:
                self.drop("body too slow", None if self._answering() else answer(
                    408, "request_timeout", f"the body came slower than "
                    f"{limits.body_min_rate} bytes a second"))
        elif self._answering() or self.transport.is_closing():
            self.stalled = self.stalled + tick if self.flow.write_paused else 0.0
            if self.stalled > limits.send_timeout:
                self.drop("answer not read", None, linger=False)

    def drop(self, why: str, last_words: bytes | None, linger: bool = True) -> bool:
        """End this connection, saying ``last_words`` first (a whole JSON answer).

        The request in hand, if any, sees its client gone. With ``linger``,
        what the client still sends is read and dropped for up to LINGER
        seconds after the answer (closing at once with unread data sends a
        reset that can destroy the answer on its way); a lingering
        connection is the first closed when the cap needs room. False when
        it was on its way out already.
        """
        guard, transport = self.guard, self.transport
        guard.waiting.pop(self, None)
        if transport is None or self in guard.closing or self in guard.lingering:
            return False
        if transport.is_closing() and not transport.get_write_buffer_size():
            return False  # uvicorn closed it: it goes when the loop next turns
        guard.closed[why] += 1
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True  # the app's receive() says so, its send() is dropped
            cycle.message_event.set()
        if last_words and not transport.is_closing():
            transport.write(last_words)
            if linger and transport.can_write_eof():
                transport.write_eof()
                guard.lingering[self] = None
                self._linger = self.loop.call_later(LINGER, self.hang_up)
                return True
        self.hang_up()
        return True

    def hang_up(self) -> None:
        """Close now: at once if the client has not read what we sent (it gets no more of
        our memory), else after the buffer is written."""
        self.guard.lingering.pop(self, None)
        self.guard.closing.add(self)
        if self.transport.get_write_buffer_size():
            self.transport.abort()
        else:
            self.transport.close()


def quiet_loop() -> asyncio.AbstractEventLoop:
    """A new event loop whose unexpected errors are logged in one line without a traceback.

    asyncio's default handler logs a traceback for each (and ``accept``
    failing for want of descriptors once a second); a traceback can quote a
    claim file and does not fit the log's one-line format.
    """
    loop = asyncio.new_event_loop()
    loop.set_exception_handler(_loop_error)
    return loop


def _loop_error(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    exc = context.get("exception")
    what = type(exc).__name__ if exc is not None else ""
    if isinstance(exc, OSError) and exc.errno is not None and exc.errno in errno.errorcode:
        what += f" {errno.errorcode[exc.errno]}"
    log.error("event loop: %s%s", context.get("message", "error"), f" ({what})" if what else "")
