"""Run the service: bind the port, then serve in this process or in supervised workers.

The port is bound (and listening) before anything is announced, so "serving
on" is never printed for a port another process holds. One worker serves in
this process; ``--workers N`` starts N worker processes that share the
listening socket (passed as a file descriptor) and the stores, restarts one
that dies, and stops them on SIGTERM or SIGINT. Every worker asks the kernel
to kill it when this process dies (``procs.end_with_parent``): a supervisor
killed with SIGKILL leaves no worker holding the port.

Each worker runs uvicorn's server over ``serve.guard`` (connection cap,
deadlines for slow clients, JSON for bad HTTP) and logs in one format, one
line a record, with no traceback: an exception is named by its class.
"""

from __future__ import annotations

import functools
import logging
import logging.config
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any

from scrubber.serve.settings import SETTINGS_ENV, ServeSettings, SettingsError

LISTEN_FD_ENV = "SCRUBBER_SERVE_FD"  # the listening socket a worker inherits
PARENT_ENV = "SCRUBBER_SERVE_PARENT"  # the supervisor's pid: a worker ends with it
STARTUP_FAILURE = 3  # a worker's exit status when it cannot start (uvicorn's too)
BACKLOG = 2048
GRACE = 30  # seconds a stopping worker gives requests in hand

log = logging.getLogger("scrubber.serve")


class ServeError(Exception):
    """The service cannot start: the port is taken, the data folder cannot be written."""


class OneLine(logging.Formatter):
    """A record on one line: an exception named by its class, never its traceback or text.

    A traceback or an exception's message can quote the claim file (PHI),
    and a multi-line record breaks whoever reads the log a line at a time.
    """

    def formatException(self, ei: Any) -> str:  # noqa: N802 (logging's name)
        return f"[{ei[0].__name__}]" if ei and ei[0] else ""

    def formatStack(self, stack_info: str) -> str:  # noqa: N802 (logging's name)
        return ""

    def format(self, record: logging.LogRecord) -> str:
        return " ".join(super().format(record).splitlines())


def log_config() -> dict[str, Any]:
    """One format for every logger a worker has: ours, uvicorn's, asyncio's, warnings.

    uvicorn's access log is off (ours has no PHI); python-multipart's
    messages (which quote bytes of the body) go nowhere: a body it cannot
    read is a 400 ``no_file``.
    """
    stderr = {"handlers": ["stderr"], "level": "INFO", "propagate": False}
    return {
        "version": 1, "disable_existing_loggers": False,
        "formatters": {"line": {"()": f"{__name__}.OneLine",
                                "fmt": "%(asctime)s %(name)s %(message)s"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "line",
                                "stream": "ext://sys.stderr"},
                     "nowhere": {"class": "logging.NullHandler"}},
        "loggers": {"scrubber.serve": stderr, "uvicorn": stderr, "asyncio": stderr,
                    "py.warnings": stderr,
                    "uvicorn.access": {"handlers": ["nowhere"], "propagate": False},
                    "python_multipart": {"handlers": ["nowhere"], "propagate": False}},
        "root": {"handlers": ["stderr"], "level": "WARNING"},
    }


def _configure_logging() -> None:
    logging.config.dictConfig(log_config())
    logging.captureWarnings(True)


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host``:``port`` and listening; ServeError if it cannot be."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def run_server(settings: ServeSettings) -> int:
    """Bind, say where on stderr, serve until SIGINT/SIGTERM; the exit status.

    Raises ServeError when the service cannot start.
    """
    _configure_logging()
    path = None
    if settings.workers > 1:  # worker processes load them from an owner-only file
        try:
            path = settings.save()
        except OSError as exc:
            raise ServeError(f"cannot write to {settings.data_dir}: {exc.strerror or exc}"
                             ) from None
        except SettingsError as exc:
            raise ServeError(str(exc)) from None
    listener = listen(settings.host, settings.port)
    host, port = listener.getsockname()[:2]
    workers = f"{settings.workers} worker{'s' if settings.workers != 1 else ''}"
    print(f"scrub: serving on http://{f'[{host}]' if ':' in host else host}:{port} ({workers}; "
          f"clients: {', '.join(settings.clients.names)})", file=sys.stderr, flush=True)
    if path is None:
        return serve(settings, listener)
    return _supervise(settings, listener, path)


def serve(settings: ServeSettings, listener: socket.socket) -> int:
    """Serve on ``listener`` in this process until told to stop; the exit status."""
    import uvicorn

    from scrubber.serve.app import create_app
    from scrubber.serve.guard import Guard, GuardedProtocol, Listener, raise_fd_limit
    from scrubber.serve.store import StoreError

    raise_fd_limit()
    guard = Guard(settings.limits)
    try:
        app = create_app(settings)
    except (StoreError, OSError) as exc:
        log.error("worker %d cannot start: %s", os.getpid(), exc)
        return STARTUP_FAILURE
    config = uvicorn.Config(
        app, http=functools.partial(GuardedProtocol, guard=guard),  # type: ignore[arg-type]
        loop="scrubber.serve.guard:quiet_loop", ws="none", lifespan="on", log_config=None,
        access_log=False, server_header=False, proxy_headers=False, backlog=BACKLOG,
        timeout_keep_alive=5, timeout_graceful_shutdown=GRACE,
        h11_max_incomplete_event_size=settings.limits.head_limit)
    server = uvicorn.Server(config)
    log.info("worker %d takes at most %d connections", os.getpid(), guard.cap)
    server.run(sockets=[Listener(guard, listener.detach())])
    return 0 if server.started else STARTUP_FAILURE


def worker_main() -> None:
    """A worker process of ``_supervise``: end with the supervisor, serve its socket."""
    from scrubber.procs import end_with_parent

    end_with_parent(int(os.environ[PARENT_ENV]))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # uvicorn takes it over once it runs
    _configure_logging()
    listener = socket.socket(fileno=int(os.environ[LISTEN_FD_ENV]))
    try:
        settings = ServeSettings.load(os.environ[SETTINGS_ENV])
    except SettingsError as exc:
        log.error("worker %d cannot start: %s", os.getpid(), exc)
        sys.exit(STARTUP_FAILURE)
    sys.exit(serve(settings, listener))


def _supervise(settings: ServeSettings, listener: socket.socket, path: os.PathLike) -> int:
    """Keep ``settings.workers`` worker processes serving ``listener`` until a signal."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, frame: stop.set())
    env = {**os.environ, SETTINGS_ENV: str(path), LISTEN_FD_ENV: str(listener.fileno()),
           PARENT_ENV: str(os.getpid())}
    command = [sys.executable, "-c", "from scrubber.serve.server import worker_main; "
               "worker_main()"]

    def start() -> subprocess.Popen:
        return subprocess.Popen(command, env=env, pass_fds=(listener.fileno(),),
                                stdin=subprocess.DEVNULL)

    workers = [start() for _ in range(settings.workers)]
    log.info("supervisor %d started workers %s", os.getpid(),
             ", ".join(str(worker.pid) for worker in workers))
    status = 0
    while not stop.wait(0.5):
        for index, worker in enumerate(workers):
            code = worker.poll()
            if code is None:
                continue
            if code == STARTUP_FAILURE:
                log.error("worker %d could not start; stopping", worker.pid)
                status = 1
                stop.set()
                break
            log.warning("worker %d ended (exit status %d); starting another", worker.pid, code)
            workers[index] = start()
    for worker in workers:
        if worker.poll() is None:
            worker.terminate()
    deadline = time.monotonic() + GRACE + 5
    for worker in workers:
        try:
            worker.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
    listener.close()
    return status
