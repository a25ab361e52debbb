"""Which claims of a run go out today: the scrub's verdicts, spooled, and their conflicts.

``VerdictSink`` is fed the scrub's events like any report. It keeps one small
record per claim (where its CLM stands, whether the scrub rejected it, its
identity) in an unlinked temporary file, not in memory, so a split of a large
batch stays flat; only the claims a finding relates to another claim of the
run are remembered. ``VerdictSink.plan()`` then decides which accepted claims
stay with a rejected partner: a day conflict across claims of one batch
(96523 with a visit on another claim, a second 96523 the same day, an add-on
code whose primary is on another claim ...) is held whole, so that a split
never sends one half of a conflict out today as if it were clean.
"""

from __future__ import annotations

import hashlib
import struct
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from scrubber.emit.sinks import Sink
from scrubber.model import Problem
from scrubber.rules.context import claim_key, submission_id
from scrubber.rules.findings import ScrubbedClaim

_HEAD = struct.Struct("<IQBH")  # source index, CLM byte offset, flags, key length
_REJECTED = 1
_SEP = "\x1f"


def _identity(claim_id: str, submission: str) -> bytes:
    """How a Finding.related entry names a claim: CLM01 within its submission."""
    return hashlib.blake2b(f"{claim_id}{_SEP}{submission}".encode("utf-8", "replace"),
                           digest_size=8).digest()


def _referenced(reference: str) -> bytes | None:
    """The identity of a Finding.related entry, "CLM01 (submission SENDER:ISA13)"."""
    claim_id, marker, rest = reference.rpartition(" (submission ")
    if not marker or not rest.endswith(")"):
        return None
    return _identity(claim_id, rest[:-1])


@dataclass(frozen=True, slots=True)
class Verdict:
    """One claim of the run as the split sees it, in document order."""

    source: int  # index of its source in the run
    offset: int  # byte offset of its CLM in that source
    rejected: bool  # the scrub rejected it (or held its transaction set)
    key: tuple[str, str, str, str]  # billing NPI, payer id, CLM01, submission

    @property
    def claim_id(self) -> str:
        return self.key[2]


@dataclass(frozen=True, slots=True)
class Partner:
    """An accepted claim held because a claim it conflicts with was rejected."""

    claim_id: str  # CLM01 of the accepted claim
    key: tuple[str, str, str, str]  # as Verdict.key: what the ledger withdraws
    rejected_with: tuple[str, ...]  # CLM01 of the rejected claims of its conflict


class VerdictSink(Sink):
    """Spools each claim's verdict for the split; remembers in-run relations only."""

    def __init__(self) -> None:
        self._spool: IO[bytes] = tempfile.TemporaryFile(prefix="scrub-split-")
        self._source = -1
        self.claims = 0
        self.rejected = 0
        # (ordinal of a claim, identity of a claim a finding on it relates it to)
        self._edges: list[tuple[int, bytes]] = []
        self.outside: list[tuple[str, str]] = []  # (source, message): claims in no set

    def begin_file(self, name: str) -> None:
        self._source += 1
        self._name = name

    def event(self, event: Any) -> None:
        if event.__class__ is ScrubbedClaim:
            self._claim(event)
        elif event.__class__ is Problem and event.code == "env-claim-outside-transaction":
            self.outside.append((self._name, event.message))

    def _claim(self, scrubbed: ScrubbedClaim) -> None:
        record = scrubbed.record
        npi, payer, claim_id = claim_key(record)
        key = _SEP.join((npi, payer, claim_id, submission_id(record))).encode(
            "utf-8", "replace")
        rejected = scrubbed.rejected
        self._spool.write(_HEAD.pack(self._source, record.claim.location.offset,
                                     _REJECTED if rejected else 0, len(key)))
        self._spool.write(key)
        self.claims += 1
        self.rejected += rejected
        for finding in scrubbed.findings:
            for reference in finding.related:
                identity = _referenced(reference)
                if identity is not None:
                    self._edges.append((self.claims, identity))

    def verdicts(self) -> Iterator[Verdict]:
        """Every claim's verdict, in the order the scrub saw them (one read of the spool)."""
        spool = self._spool
        spool.flush()
        spool.seek(0)
        while True:
            head = spool.read(_HEAD.size)
            if not head:
                return
            source, offset, flags, size = _HEAD.unpack(head)
            parts = spool.read(size).decode("utf-8", "replace").split(_SEP)
            parts += [""] * (4 - len(parts))
            yield Verdict(source, offset, bool(flags & _REJECTED),
                          (parts[0], parts[1], parts[2], _SEP.join(parts[3:])))

    def plan(self) -> Plan:
        """The claims held with a rejected partner, from one more read of the spool."""
        wanted = {identity for _, identity in self._edges}
        named: dict[bytes, list[int]] = {}
        involved: dict[int, Verdict] = {}
        sources = {ordinal for ordinal, _ in self._edges}
        if wanted:
            for ordinal, verdict in enumerate(self.verdicts(), start=1):
                identity = _identity(verdict.key[2], verdict.key[3])
                if identity in wanted:
                    named.setdefault(identity, []).append(ordinal)
                    involved[ordinal] = verdict
                elif ordinal in sources:
                    involved[ordinal] = verdict
        parent: dict[int, int] = {}

        def root(node: int) -> int:
            parent.setdefault(node, node)
            while parent[node] != node:
                parent[node] = parent[parent[node]]
                node = parent[node]
            return node

        for ordinal, identity in self._edges:
            for other in named.get(identity, ()):
                if other != ordinal:
                    parent[root(ordinal)] = root(other)
        groups: dict[int, list[int]] = {}
        for node in list(parent):
            groups.setdefault(root(node), []).append(node)
        partners: dict[int, Partner] = {}
        for members in groups.values():
            rejected = tuple(dict.fromkeys(involved[m].claim_id for m in sorted(members)
                                           if involved[m].rejected))
            if not rejected:
                continue
            for member in members:
                verdict = involved[member]
                if not verdict.rejected:
                    partners[member] = Partner(verdict.claim_id, verdict.key, rejected)
        return Plan(partners)

    def close(self) -> None:
        """The run is over: the spool stays readable until ``discard``."""
        self._spool.flush()

    def discard(self) -> None:
        self._spool.close()


@dataclass(frozen=True, slots=True)
class Plan:
    """What the split does beyond the scrub's verdicts: the partners it holds, by ordinal."""

    partners: dict[int, Partner]

    def held(self, ordinal: int, verdict: Verdict) -> bool:
        """Whether claim ``ordinal`` (1-based in the run) goes to the hold file."""
        return verdict.rejected or ordinal in self.partners
