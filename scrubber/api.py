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


@dataclass(frozen=True, slots=True)
class FileOutcome:
    """What scrubbing one file came to, for a front end that files it away."""

    path: str
    claims: int
    accepted: int
    rejected: int
    unreadable: bool  # nothing could be read: the file belongs in failed/
    envelope_errors: int  # broken envelopes (TA1/999 material)
    reports: tuple[str, ...]  # files written under the reports directory
    reason: str = ""  # why it was unreadable, in words

    @property
    def verdict(self) -> str:
        """"failed", "rejected" or "accepted": the folder the input belongs in."""
        if self.unreadable:
            return "failed"
        if self.rejected or self.envelope_errors:
            return "rejected"
        return "accepted"


def process_file(path: str, reports_dir: str, *, stem: str | None = None) -> FileOutcome:
    """Scrub one file and write its reports into ``reports_dir``; the watcher's unit of work.

    Reports carry PHI, so they are created owner-only (0600). ``stem`` names
    them (default: the input's file name).
    """
    import os
    from pathlib import Path

    from scrubber.model import ClaimRecord
    from scrubber.rules import ScrubbedClaim

    src = Path(path)
    stem = stem or src.name
    out_path = Path(reports_dir) / f"{stem}.json"
    claims = accepted = rejected = envelope_errors = 0
    unreadable = False
    reason = ""
    fd = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        writer = JsonWriter(out)
        writer.begin_file(str(src))
        for event in read(src):
            cls = event.__class__
            if cls is ClaimRecord or cls is ScrubbedClaim:
                claims += 1
                if cls is ScrubbedClaim and event.rejected:
                    rejected += 1
                else:
                    accepted += 1
            elif cls is Problem:
                if event.fatal:
                    unreadable, reason = True, event.message
                else:
                    envelope_errors += 1
            writer.event(event)
        writer.end_file()
        writer.close()
    return FileOutcome(str(src), claims, accepted, rejected, unreadable, envelope_errors,
                       (str(out_path),), reason)
