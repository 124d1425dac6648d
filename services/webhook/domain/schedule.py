"""Retry arithmetic: when a delivery's next attempt is due, as a pure function of its schedule.

After svix-webhooks (`server/svix-server/src/worker.rs`): attempts are rows, the schedule is data,
and the decision "try again at T, or give up" is computed here and nowhere else. The schedule is
anchored at the first attempt: attempt k (0-based) is due `schedule[k]` seconds after it, and the
last entry closes the window. A step whose time has already passed when an attempt fails (a worker
was down, an attempt was late) is skipped rather than fired at once, so the endpoint is never
hammered to catch up; an overdue attempt is still made once, by the sweeper.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta


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


def step_delay_ms(schedule: Sequence[float], step: int) -> int:
    """The timer for `step`: the gap since the step before it, in milliseconds (a delay queue's TTL)."""
    if step < 1 or step >= len(schedule):
        raise ValueError(f"step {step} has no timer in a schedule of {len(schedule)} steps")
    return round((schedule[step] - schedule[step - 1]) * 1000)


def delay_queue_ttls(schedule: Sequence[float]) -> list[int]:
    """Every distinct timer the schedule needs: one delay queue each."""
    return sorted({step_delay_ms(schedule, step) for step in range(1, len(schedule))})
