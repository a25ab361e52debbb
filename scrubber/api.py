"""The library entry points that every front end (CLI, intake code, watcher) calls."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TextIO

from scrubber.emit.json_report import JsonWriter
from scrubber.emit.text_report import TextWriter
from scrubber.model import Problem, read


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    """What a run over several files came to, for the exit code."""

    files: int
    unreadable: bool  # some input could not be read at all
    rejected: bool  # some envelope or claim would be rejected


def check_files(paths: list[str], out: TextIO, *, fmt: str = "text",
                show_phi: bool = False) -> CheckOutcome:
    """Read each path ("-" is standard input) and write one report to ``out``."""
    writer = JsonWriter(out) if fmt == "json" else TextWriter(out, show_phi=show_phi)
    unreadable = rejected = False
    for path in paths:
        source = sys.stdin.buffer if path == "-" else path
        writer.begin_file("<stdin>" if path == "-" else path)
        for event in read(source):
            if event.__class__ is Problem:
                if event.fatal:
                    unreadable = True
                else:
                    rejected = True
            writer.event(event)
        writer.end_file()
    writer.close()
    return CheckOutcome(len(paths), unreadable, rejected)
