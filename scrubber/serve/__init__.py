"""HTTP intake over the scrub core: ``scrub serve``.

A thin front end like the command line and the watcher: a request becomes a
spooled source and ``ScrubOptions``, the core scrubs it off the event loop,
and the answer is made of the core's sinks (the JSON report, the 277CA, 999
and TA1). What the service keeps of its own (submissions, idempotency keys)
lives in a small store shared by every worker process (``store``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scrubber.serve.settings import ServeSettings

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["ServeSettings", "create_app"]


def create_app(settings: ServeSettings) -> FastAPI:
    """The ASGI application for ``settings`` (imported lazily: the web stack is heavy)."""
    from scrubber.serve.app import create_app as make

    return make(settings)
