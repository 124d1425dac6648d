"""Failed-authentication limits: fixed windows per (client id, address) pair and per address.

The counters live in PostgreSQL so every auth process sees the same ones; this module is the
arithmetic, kept pure so it can be tested exhaustively.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Window:
    """A bucket's failures counted since `start`."""

    start: datetime
    failures: int


def current(window: Window | None, now: datetime, length: int) -> Window:
    """The window in force at `now`: an expired one restarts empty."""
    if window is None or now >= window.start + timedelta(seconds=length):
        return Window(now, 0)
    return window


def after_failure(window: Window | None, now: datetime, length: int) -> Window:
    live = current(window, now, length)
    return Window(live.start, live.failures + 1)


def retry_after(window: Window | None, now: datetime, length: int, limit: int) -> int | None:
    """Seconds until another attempt is allowed, or None when one is allowed now."""
    live = current(window, now, length)
    if live.failures < limit:
        return None
    remaining = (live.start + timedelta(seconds=length) - now).total_seconds()
    return max(1, math.ceil(remaining))


def pair_bucket(client_id: str, address: str) -> str:
    """One client id tried from one address: what a guesser fills without touching anyone else."""
    return "pair:" + address[:100] + "|" + client_id[:200]


def address_bucket(address: str) -> str:
    return "addr:" + address[:100]
