"""Retry schedules shared by the outbound channels (webhooks, mail): parsing and the next attempt.

After svix-webhooks (`server/svix-server/src/worker.rs`): attempts are rows, the schedule is data,
and the decision "try again at T, or give up" is computed here and nowhere else. The schedule is
anchored at the first attempt: attempt k (0-based) is due `schedule[k]` seconds after it, and the
last entry closes the window. A step whose time has already passed when an attempt fails (a worker
was down, an attempt was late) is skipped rather than fired at once, so the receiver is never
hammered to catch up; an overdue attempt is still made once.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.settings import SettingsError


def parse_retry_schedule(raw: str, name: str) -> tuple[float, ...]:
    """`0,60,180`: seconds after the first attempt at which each attempt is due.

    The first entry must be 0 (the first attempt is due at once), entries strictly increase, and
    the last one closes the retry window.
    """
    try:
        steps = tuple(float(part) for part in raw.replace(" ", "").split(",") if part != "")
    except ValueError:
        raise SettingsError(f"{name} must be comma-separated seconds like 0,60,180, got {raw!r}") from None
    if not steps:
        raise SettingsError(f"{name} must list at least one step, got {raw!r}")
    if steps[0] != 0:
        raise SettingsError(f"{name} must start with 0 (the first attempt is due at once), got {raw!r}")
    if any(b <= a for a, b in itertools.pairwise(steps)):
        raise SettingsError(f"{name} must strictly increase, got {raw!r}")
    return steps


@dataclass(frozen=True)
class NextAttempt:
    step: int  # index into the schedule
    due_at: datetime


def next_attempt(schedule: Sequence[float], anchor: datetime, attempts_made: int, now: datetime) -> NextAttempt | None:
    """After `attempts_made` attempts (the last of which just failed, at `now`), the next one; None
    when the retry window has closed and the delivery has failed."""
    for step in range(max(attempts_made, 1), len(schedule)):
        due = anchor + timedelta(seconds=schedule[step])
        if due > now:
            return NextAttempt(step, due)
    return None


def window_closes_at(schedule: Sequence[float], anchor: datetime) -> datetime:
    return anchor + timedelta(seconds=schedule[-1])
