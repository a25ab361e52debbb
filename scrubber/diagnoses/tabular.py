"""The ICD-10-CM Tabular List as CMS publishes it (XML), indexed for the coding conventions.

CMS ships each fiscal year's tabular (and each April or January update) as
``icd10cm-tabular-2026.xml`` (or ``icd10cm_tabular_2026.xml``) inside the "Code
Tables, Tabular and Index" zip; simple-icd-10-cm bundles one
(``icd10c-tabular-April-1-2026.xml``), used when the user adds none. Chapters
hold sections, sections hold ``diag`` elements nested by code; any of them may
carry ``excludes1``, ``codeFirst`` and ``useAdditionalCode`` notes, which apply
to every code beneath. Only the conventions are kept: each node's parent, whether
its title says "in diseases classified elsewhere" (a manifestation), and its
Excludes1 and Code-first notes with the codes they name. The XML is read once
into a SQLite index in the cache folder, named after its sha256.
"""

from __future__ import annotations

import os
import re
import sqlite3
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path

from scrubber.cache import connect_read_only, keyed_index, write_meta
from scrubber.codesets.files import LIBRARY, Release, release_named

VERSION = 2  # of the index layout: a Code-first note is one row, its lines joined
MEMBER = r"icd10cm[-_ ]?tabular.*\.xml$"
_CODE = r"[A-Z][0-9][0-9A-Z](?:\.[0-9A-Z]{1,4})?"
# a code reference inside a note's parentheses: A54.81, E08.-, A81.0-, G35-, O10-O11,
# E00-E03.-, C00-D49, and "E08-E13 with .42"
_REF = re.compile(rf"({_CODE})\.?-?(?:\s*-\s*({_CODE})\.?-?)?(?:\s+with\s+\.?([0-9A-Z]+))?")


class TabularError(Exception):
    """A tabular file that cannot be used: the message names the file."""


@dataclass(frozen=True, slots=True)
class Ref:
    """Codes a note names: a code and those under it, or a range; "with .42" narrows it."""

    low: str  # without the dot
    high: str
    suffix: str = ""  # the characters after the category: "42" of "E08-E13 with .42"

    def matches(self, code: str) -> bool:
        """True for a dotless ``code`` the reference names."""
        if code[:len(self.low)] < self.low or code[:len(self.high)] > self.high:
            return False
        return not self.suffix or code[3:].startswith(self.suffix)

    def text(self) -> str:
        return f"{self.low}-{self.high}|{self.suffix}"

    @classmethod
    def parse(cls, text: str) -> Ref:
        span, _, suffix = text.partition("|")
        low, _, high = span.partition("-")
        return cls(low, high, suffix)


def refs_in(note: str) -> tuple[Ref, ...]:
    """The code references of a note: codes in its parentheses."""
    out = []
    for group in re.findall(r"\(([^()]*)\)", note):
        for piece in group.split(","):
            found = _REF.fullmatch(piece.strip())
            if found is None:
                continue
            low = found.group(1).replace(".", "")
            high = (found.group(2) or found.group(1)).replace(".", "")
            out.append(Ref(low, high, found.group(3) or ""))
    return tuple(out)


def dotless(code: str) -> str:
    return code.replace(".", "").upper()


def dotted(code: str) -> str:
    code = dotless(code)
    return code if len(code) <= 3 else f"{code[:3]}.{code[3:]}"


@dataclass(frozen=True, slots=True)
class Conventions:
    """What the tabular says of one code, its own notes and those of every level above it."""

    code: str  # dotted, the node found (a 7-character code's parent subcategory)
    title: str
    manifestation: bool  # its title or a parent's says "in diseases classified elsewhere"
    excludes1: tuple[tuple[str, tuple[Ref, ...]], ...]  # (note, references)
    code_first: tuple[tuple[str, tuple[Ref, ...]], ...]

    def excluded(self, other: str) -> str | None:
        """The Excludes1 note of this code that names the dotless ``other``, or None."""
        for note, refs in self.excludes1:
            if any(ref.matches(other) for ref in refs) and \
                    not any(ref.matches(dotless(self.code)) for ref in refs):
                return note
        return None


class Tabular:
    """A tabular release, indexed: the conventions of a code, cached for the run."""

    def __init__(self, path: Path, release: Release, built: bool = False):
        self.path = path
        self.release = release
        self.built = built
        self._db: sqlite3.Connection | None = connect_read_only(path)
        self._of = lru_cache(maxsize=1 << 14)(self._conventions)

    def __reduce__(self):
        return (Tabular, (self.path, self.release))

    def conventions(self, code: str) -> Conventions | None:
        """The conventions of a diagnosis (dotless or dotted); None when no node holds it."""
        return self._of(dotless(code))

    def _conventions(self, code: str) -> Conventions | None:
        if self._db is None:
            raise RuntimeError("the tabular index is closed")
        node = None
        for size in range(len(code), 2, -1):
            node = self._db.execute("SELECT name, title FROM node WHERE name = ?",
                                    (dotted(code[:size]),)).fetchone()
            if node is not None:
                break
        if node is None:
            return None
        name, title = node
        excludes: list[tuple[str, tuple[Ref, ...]]] = []
        first: list[tuple[str, tuple[Ref, ...]]] = []
        elsewhere = False
        current: str | None = name
        while current is not None:
            row = self._db.execute("SELECT parent, title FROM node WHERE name = ?",
                                   (current,)).fetchone()
            if row is None:
                break
            elsewhere = elsewhere or "classified elsewhere" in row[1].lower()
            for kind, text, refs in self._db.execute(
                    "SELECT kind, text, refs FROM note WHERE name = ? ORDER BY rowid",
                    (current,)):
                parsed = tuple(Ref.parse(r) for r in refs.split(" ") if r)
                (excludes if kind == "excludes1" else first).append((text, parsed))
            current = row[0]
        return Conventions(name, title, elsewhere, tuple(excludes), tuple(first))

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


class Tabulars:
    """The tabular releases of a run, each judging the dates it is in force for; a date no
    release covers is judged by the nearest (the conventions change little from year to
    year)."""

    def __init__(self, releases: Sequence[Tabular]):
        self.releases = tuple(sorted(releases, key=lambda t: t.release.start))

    def for_day(self, day: date | None) -> Tabular:
        if day is None:
            return self.releases[-1]
        covering = [t for t in self.releases if t.release.covers(day)]
        if covering:
            return covering[-1]
        return min(reversed(self.releases), key=lambda t: t.release.distance(day))

    def label(self) -> str:
        return ", ".join(f"{t.release.name} tabular" + (
            f" (bundled with {t.release.source})" if t.release.source.startswith(LIBRARY)
            else "") for t in self.releases)


def _parse(text_path: Path, data: bytes | None) -> Iterator[tuple]:
    """(name, parent, title) of each chapter, section and code, and ("", name, kind, text,
    refs) of each Excludes1 and Code-first note, parents first.

    The whole tree is read (some 10 MB, once, when the index is built): a section's
    notes and its codes' parents need the tree around them."""
    from lxml import etree

    try:
        root = etree.fromstring(data) if data is not None else \
            etree.parse(str(text_path)).getroot()
    except (etree.XMLSyntaxError, OSError) as exc:
        raise TabularError(f"{text_path}: not the tabular XML: {exc}") from None

    def walk(element, parent: str | None, chapter: int) -> Iterator[tuple]:
        name = _name_of(element, chapter)
        yield (name, parent, " ".join((element.findtext("desc") or "").split()))
        for holder in element.findall("excludes1"):
            for note in holder.findall("note"):
                text = " ".join((note.text or "").split())
                yield ("", name, "excludes1", text, " ".join(r.text() for r in refs_in(text)))
        for holder in element.findall("codeFirst"):
            # "underlying disease, such as:", then the conditions one a note: kept as one
            # note, its references together
            text = "; ".join(" ".join((note.text or "").split())
                             for note in holder.findall("note"))
            yield ("", name, "codefirst", text, " ".join(r.text() for r in refs_in(text)))
        for child in element:
            if child.tag in ("section", "diag"):
                yield from walk(child, name, chapter)

    for number, chapter in enumerate(root.iter("chapter"), 1):
        yield from walk(chapter, None, number)


def _name_of(element, chapter: int) -> str:
    if element.tag == "chapter":
        return f"chapter {element.findtext('name') or chapter}"
    if element.tag == "section":
        return f"section {element.get('id') or element.findtext('desc')}"
    return (element.findtext("name") or "").strip()


def _read(path: Path) -> tuple[str, bytes | None]:
    """(member name, bytes) of the tabular XML in a zip, or (the file's name, None)."""
    if not zipfile.is_zipfile(path):
        return path.name, None
    with zipfile.ZipFile(path) as archive:
        names = [n for n in archive.namelist() if re.search(MEMBER, Path(n).name, re.I)]
        if not names:
            raise TabularError(f"{path}: the zip holds no tabular XML (icd10cm-tabular-"
                               "YYYY.xml)")
        return Path(names[0]).name, archive.read(names[0])


def release_of(path: Path) -> Release:
    """The release a tabular file (or zip) is, from CMS's names."""
    from scrubber.cmsfiles import zip_names

    members = [n for n in zip_names(path) if re.search(MEMBER, n, re.I)]
    name = members[0] if members else path.name
    release = release_named(name, str(path), path.name)
    if release is None:
        raise TabularError(f"{path}: the name does not say the year; keep CMS's name "
                           "(icd10cm-tabular-2026.xml, or the zip holding it)")
    return release


def looks_like(path: Path) -> bool:
    from scrubber.cmsfiles import looks_named

    return looks_named(path, MEMBER, r"icd10cm[-_ ]?tabular")


_SCHEMA = """
CREATE TABLE node (name TEXT PRIMARY KEY, parent TEXT, title TEXT);
CREATE TABLE note (name TEXT, kind TEXT, text TEXT, refs TEXT);
CREATE INDEX note_name ON note (name);
"""


def load_tabular(path: Path, release: Release, *,
                 cache_dir: str | os.PathLike | None = None) -> Tabular:
    """One tabular file (or zip), indexed once."""
    def build(db: sqlite3.Connection, key: str) -> dict:
        db.executescript(_SCHEMA)
        try:
            _, data = _read(path)
        except (OSError, zipfile.BadZipFile) as exc:
            raise TabularError(f"{path}: cannot read: {exc}") from None
        count = 0
        for row in _parse(path, data):
            if row[0]:
                db.execute("INSERT OR REPLACE INTO node VALUES (?, ?, ?)", row)
                count += 1
            else:
                db.execute("INSERT INTO note VALUES (?, ?, ?, ?)", row[1:])
        if not count:
            raise TabularError(f"{path}: holds no chapters or codes; is it the tabular XML?")
        return write_meta(db, key, VERSION, {"nodes": count})

    found, _, built = keyed_index("icd10cm-tabular", VERSION, {"tabular": [path]}, build,
                                  TabularError, "the ICD-10-CM tabular XML (or its zip)",
                                  cache_dir)
    return Tabular(found, release, built)


def bundled_tabular() -> tuple[Path, Release]:
    """The tabular XML simple-icd-10-cm ships, and its release (from its name)."""
    from scrubber.codesets.files import CodeSetError, bundled_file

    try:
        path, version = bundled_file(r"icd10cm?-tabular-.*\.xml", "tabular XML")
    except CodeSetError as exc:
        raise TabularError(str(exc)) from None
    release = release_named(path.name, f"{LIBRARY} {version}")
    if release is None:
        raise TabularError(f"{path}: cannot tell the release from the name")
    return path, release


def load_tabulars(paths: Sequence[str | os.PathLike] = ()) -> Tabulars:
    """The tabular files given (each judging its own dates), else the bundled one."""
    if not paths:
        path, release = bundled_tabular()
        return Tabulars([load_tabular(path, release)])
    return Tabulars([load_tabular(Path(p), release_of(Path(p))) for p in paths])
