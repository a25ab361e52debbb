"""Scrub a source in a test the way every front end does: through the core's one route.

Test helper only: ``scrub_source`` is ``Scrubber(options).events(source)`` with the
keyword arguments tests use most turned into ``ScrubOptions``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from scrubber.core import Scrubber
from scrubber.options import ScrubOptions
from scrubber.rules.engine import Engine
from scrubber.rules.profile import Profile, load_profile
from scrubber.rules.resources import Resources


def scrub_source(source: Any, **options: Any) -> list:
    """Every scrubbed event of ``source`` (see ``scrub_stream``), kept in a list."""
    return list(scrub_stream(source, **options))


def scrub_stream(source: Any, *, profile: Profile | None = None, ledger: Any = None,
                 record: bool = False, ncci: Any = None, resources: Resources | None = None,
                 engine: Engine | None = None, conformance: bool = False) -> Iterator:
    """The scrubbed events of ``source`` one by one, in flat memory; with ``record``, the
    accepted claims are sent in ``ledger`` once the source has been read. ``engine``: one
    of the test's own rules."""
    data = (resources or Resources()).merged(Resources.of(ncci=ncci))
    options = ScrubOptions(profile=profile or (engine.profile if engine else load_profile()),
                           resources=data, record=record, conformance=conformance)
    with Scrubber(options, ledger=ledger, engine=engine) as scrubber:
        yield from scrubber.events(source)
