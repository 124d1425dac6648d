"""CPU time of a server under load, read from /proc: the figure that machine noise hardly moves.

Requests per second on a shared two-core machine swing with whatever else runs; the CPU seconds a
server spends per request do not (much). Every benchmark reports both: take a `CpuMeter` around a
measured run, passing the root pid of each server (a service started by shared.testing.Stack, nginx's
master); its tree (forked HTTP workers, nginx workers) is counted with it.

Written by hand because psutil would be a dependency for two numbers out of /proc/<pid>/stat.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

_TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, user + system seconds) of one process, or None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) is in parentheses and may hold spaces: split after its last ')'.
    fields = raw[raw.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICKS


def _tree(root: int) -> dict[int, float]:
    """CPU seconds of `root` and every live descendant, by pid."""
    parents: dict[int, int] = {}
    seconds: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat is not None:
                parents[int(entry)], seconds[int(entry)] = stat
    tree: dict[int, float] = {}
    for pid in seconds:
        walk = pid
        while walk not in (0, 1) and walk != root:
            walk = parents.get(walk, 0)
        if walk == root:
            tree[pid] = seconds[pid]
    return tree


def tree_cpu_seconds(root: int) -> float:
    """User + system CPU seconds of `root` and every live descendant."""
    return sum(_tree(root).values())


def tree_pids(root: int) -> list[int]:
    """`root` and every live descendant."""
    return list(_tree(root))


class CpuMeter:
    """CPU seconds the given process trees spent inside the `with` block.

    Descendants that exit inside the block take their time with them (it is not reaped into
    the parent's counters until waited for), so measure servers whose workers live throughout.
    """

    def __init__(self, roots: Iterable[int]) -> None:
        self.roots = list(roots)
        self.seconds = 0.0
        self._before = 0.0

    def _now(self) -> float:
        return sum(tree_cpu_seconds(root) for root in self.roots)

    def __enter__(self) -> CpuMeter:
        self._before = self._now()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.seconds = self._now() - self._before

    def per_request_ms(self, requests: int) -> float:
        """Milliseconds of server CPU per request (0 when nothing was served)."""
        return self.seconds * 1000 / requests if requests else 0.0


def database_backends(database: str) -> dict[int, float]:
    """CPU seconds of each PostgreSQL backend now serving `database`, by pid.

    A backend's process title is `postgres: <cluster>: <user> <database> <client> <state>`
    (update_process_title is on by default), so /proc tells which backends a benchmark's own
    database keeps busy without asking the server, and without counting other databases' work.
    """
    found: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            title = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        words = title.split()
        if len(words) >= 5 and words[0] == "postgres:" and words[3] == database:
            stat = _stat(int(entry))
            if stat is not None:
                found[int(entry)] = stat[1]
    return found


class BackendMeter:
    """CPU seconds PostgreSQL's backends of one database spent inside the `with` block: those alive
    at its start by their difference, those that connected during it in full (a backend that came and
    went within the block is missed; pools keep theirs). Shared server processes (WAL writer,
    checkpointer) are not counted."""

    def __init__(self, database: str) -> None:
        self.database = database
        self.seconds = 0.0
        self._before: dict[int, float] = {}

    def __enter__(self) -> BackendMeter:
        self._before = database_backends(self.database)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        after = database_backends(self.database)
        self.seconds = sum(now - self._before.get(pid, 0.0) for pid, now in after.items())

    def per_request_ms(self, requests: int) -> float:
        return self.seconds * 1000 / requests if requests else 0.0
