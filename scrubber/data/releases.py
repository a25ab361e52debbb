"""What a file is, and which dates the installed releases cover: generic over the options.

``recognize`` asks every registered option's recognizer (scrubber.rules.resources)
about a file; exactly one must claim it. ``coverage`` lays the releases of an
option (installed and bundled) on the calendar: the periods covered, the gaps
between them, and whether a date is covered. Nothing here knows a kind of data
by name: a pack that registers an option with a ``recognize`` is addable.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from scrubber.rules.resources import Release, ResourceError, ResourceOption, resource_options


class UnrecognizedFile(Exception):
    """No option (or more than one) claims a file; the message says what it looked like."""


def recognize(path: Path, options: Sequence[ResourceOption] | None = None) -> Release:
    """The release ``path`` is, told by the one option whose recognizer claims it.

    Raises ``ResourceError`` when an option claims the file but cannot use it, and
    ``UnrecognizedFile`` when none does (or several do).
    """
    if not path.is_file():
        raise UnrecognizedFile(f"{path}: no such file" if not path.exists() else
                               f"{path}: not a file; give the file or zip as downloaded")
    options = resource_options() if options is None else options
    claims: list[Release] = []
    for option in options:
        if option.recognize is None:
            continue
        try:
            found = option.recognize(path)
        except ResourceError:
            raise
        except (OSError, zipfile.BadZipFile) as exc:
            raise ResourceError(f"{path}: cannot be read: {exc}") from None
        if found is not None:
            claims.append(found)
    if len(claims) == 1:
        return claims[0]
    addable = ", ".join(o.name for o in options if o.recognize is not None)
    if claims:
        raise UnrecognizedFile(f"{path}: more than one kind of data claims it "
                               f"({', '.join(c.option for c in claims)}); {looks(path)}")
    raise UnrecognizedFile(f"{path}: not a file scrub data knows ({addable}); {looks(path)}")


def looks(path: Path) -> str:
    """What a file looked like, in words: a zip's members, or a text's first line."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                names = [n for n in archive.namelist() if not n.endswith("/")]
            shown = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8
                                            else "")
            return f"it is a zip holding {shown or 'nothing'}"
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except (OSError, zipfile.BadZipFile) as exc:
        return f"it cannot be read ({exc})"
    if not head:
        return "it is empty"
    if b"\0" in head:
        return "it is a binary file, not text or a zip"
    first = next((line for line in head.decode("latin-1").splitlines() if line.strip()), "")
    first = "".join(c if c.isprintable() else " " for c in first.strip())
    shown = first if len(first) <= 80 else first[:77] + "..."
    return f"its first line is {shown!r}"


@dataclass(frozen=True, slots=True)
class Coverage:
    """The dates the releases of one option cover."""

    option: str
    periods: tuple[tuple[date, date | None], ...]  # merged, in order; None: open-ended
    undated: int  # releases that do not say their dates (a CPT list, an NCCI file renamed)

    def covers(self, day: date) -> bool:
        return any(start <= day and (end is None or day <= end) for start, end in self.periods)

    def gaps(self) -> tuple[tuple[date, date], ...]:
        """The stretches between covered periods."""
        out = []
        for (_, end), (start, _) in zip(self.periods, self.periods[1:], strict=False):
            if end is not None and start > end + timedelta(days=1):
                out.append((end + timedelta(days=1), start - timedelta(days=1)))
        return tuple(out)

    @property
    def dated(self) -> bool:
        return bool(self.periods)


def coverage(option: str, releases: Iterable[Release]) -> Coverage:
    """Lay ``releases`` of ``option`` on the calendar, merging periods that touch."""
    releases = list(releases)
    spans = sorted((r.effective_from, r.effective_to) for r in releases
                   if r.option == option and r.effective_from is not None)
    undated = sum(1 for r in releases if r.option == option and r.effective_from is None)
    merged: list[list] = []
    for start, end in spans:
        if merged and (merged[-1][1] is None or start <= merged[-1][1] + timedelta(days=1)):
            last = merged[-1]
            last[1] = None if last[1] is None or end is None else max(last[1], end)
        else:
            merged.append([start, end])
    return Coverage(option, tuple((s, e) for s, e in merged), undated)
