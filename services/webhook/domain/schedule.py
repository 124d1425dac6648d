"""Webhook timers: the delay queues a retry schedule needs (the schedule itself is shared/retry.py)."""

from __future__ import annotations

from collections.abc import Sequence

from shared.retry import NextAttempt, next_attempt, window_closes_at

__all__ = ["NextAttempt", "delay_queue_ttls", "next_attempt", "step_delay_ms", "window_closes_at"]


def step_delay_ms(schedule: Sequence[float], step: int) -> int:
    """The timer for `step`: the gap since the step before it, in milliseconds (a delay queue's TTL)."""
    if step < 1 or step >= len(schedule):
        raise ValueError(f"step {step} has no timer in a schedule of {len(schedule)} steps")
    return round((schedule[step] - schedule[step - 1]) * 1000)


def delay_queue_ttls(schedule: Sequence[float]) -> list[int]:
    """Every distinct timer the schedule needs: one delay queue each."""
    return sorted({step_delay_ms(schedule, step) for step in range(1, len(schedule))})
