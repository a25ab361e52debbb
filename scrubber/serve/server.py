"""Run the service under uvicorn: one process, or several workers sharing the stores."""

from __future__ import annotations

import copy
import os
from typing import Any

from scrubber.serve.settings import SETTINGS_ENV, ServeSettings

APP = "scrubber.serve.app:app_from_environment"


def log_config() -> dict[str, Any]:
    """uvicorn's logging with its own access log off and ours (no PHI) on, in every worker."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["scrubber"] = {"format": "%(asctime)s %(name)s %(message)s"}
    config["handlers"]["scrubber"] = {"class": "logging.StreamHandler",
                                      "formatter": "scrubber", "stream": "ext://sys.stderr"}
    config["loggers"]["scrubber.serve"] = {"handlers": ["scrubber"], "level": "INFO",
                                           "propagate": False}
    return config


def run_server(settings: ServeSettings) -> None:
    """Serve until SIGINT/SIGTERM; worker processes load the settings from an owner-only file."""
    import uvicorn

    os.environ[SETTINGS_ENV] = str(settings.save())
    uvicorn.run(APP, factory=True, host=settings.host, port=settings.port,
                workers=settings.workers, access_log=False, log_config=log_config(),
                server_header=False, proxy_headers=False, timeout_graceful_shutdown=30)
