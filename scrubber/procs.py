"""Processes as owners: who holds a piece of work, whether it still lives, ending with a parent.

A row that says "this process is working on it" must name the process so
that anyone can tell, after a crash, that nobody is: a pid alone is reused,
so an owner is the pid together with the process's start time, on a named
machine (host name, boot id and pid namespace: the same pid in another
container or after a reboot is another process). Another machine cannot look
into this one, so work shared across machines also needs a lease.

A leaf module: it imports nothing of scrubber, so any layer may use it.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
from dataclasses import dataclass
from functools import cache

_PR_SET_PDEATHSIG = 1


def _read(path: str) -> str:
    try:
        with open(path, encoding="ascii", errors="replace") as handle:
            return handle.read().strip()
    except OSError:
        return ""


def _started(pid: int) -> int | None:
    """The start time of ``pid`` in clock ticks since boot (/proc), None if it is gone.

    A zombie counts as gone: it has finished and holds nothing but its exit status.
    """
    stat = _read(f"/proc/{pid}/stat")
    if not stat:
        return None
    fields = stat[stat.rfind(")") + 2:].split()  # the name in (...) may hold spaces
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])  # field 22 of proc(5), counted after the name


@cache
def _machine() -> str:
    """This machine as an owner's host: name, boot id and pid namespace."""
    try:
        namespace = str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        namespace = "-"
    boot = _read("/proc/sys/kernel/random/boot_id") or "-"
    return f"{socket.gethostname()}/{boot}/{namespace}"


@dataclass(frozen=True, slots=True)
class Owner:
    """A process that holds work: where it runs, its pid, when it started."""

    machine: str
    pid: int
    started: int  # clock ticks since boot; 0 where /proc cannot tell

    @classmethod
    def current(cls) -> Owner:
        pid = os.getpid()
        return cls(_machine(), pid, _started(pid) or 0)

    @classmethod
    def parse(cls, text: str | None) -> Owner | None:
        """The owner written by ``str(owner)``; None for anything else."""
        machine, _, rest = (text or "").rpartition(" ")
        pid, _, started = rest.partition("@")
        if not machine or not pid.isdigit() or not started.isdigit():
            return None
        return cls(machine, int(pid), int(started))

    def __str__(self) -> str:
        return f"{self.machine} {self.pid}@{self.started}"

    def known_dead(self) -> bool:
        """True only when this machine can see that the process is gone.

        A process on another machine (or where /proc says nothing) is never
        known dead: only its lease can end its claim.
        """
        if self.machine != _machine() or not self.started:
            return False
        return _started(self.pid) != self.started


def end_with_parent(parent: int) -> None:
    """Ask the kernel for SIGKILL when ``parent`` dies (Linux PR_SET_PDEATHSIG).

    A parent killed with SIGKILL cannot stop its children, and a child that
    outlives it keeps what it holds (a listening port, files, locks). The
    request is checked afterwards: if the parent died before it, this process
    ends at once.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: the check below and the parent's own pipes still stop us
    if os.getppid() != parent:
        os._exit(1)
