"""The retry arithmetic: when the next attempt is due, and when the window has closed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.webhook.domain.schedule import delay_queue_ttls, next_attempt, step_delay_ms, window_closes_at
from services.webhook.settings import DEFAULT_RETRY_SCHEDULE

ANCHOR = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
SCHEDULE = DEFAULT_RETRY_SCHEDULE


def at(seconds: float) -> datetime:
    return ANCHOR + timedelta(seconds=seconds)


def test_each_failed_attempt_is_followed_by_the_next_step_of_the_schedule() -> None:
    for made, expected in [(1, 60), (2, 180), (3, 420), (4, 900), (5, 1800)]:
        following = next_attempt(SCHEDULE, ANCHOR, made, at(SCHEDULE[made - 1] + 0.3))
        assert following is not None
        assert following.due_at == at(expected)
        assert following.step == made


def test_after_the_last_step_the_window_is_closed() -> None:
    assert next_attempt(SCHEDULE, ANCHOR, 6, at(1800.2)) is None


def test_steps_that_passed_while_nothing_was_attempted_are_skipped_not_fired_at_once() -> None:
    # One attempt made, then the worker was down for ten minutes.
    following = next_attempt(SCHEDULE, ANCHOR, 1, at(600))
    assert following is not None
    assert following.due_at == at(900)
    assert following.step == 4


def test_an_overdue_attempt_made_after_the_window_closed_ends_the_delivery() -> None:
    assert next_attempt(SCHEDULE, ANCHOR, 1, at(4000)) is None


def test_a_single_step_schedule_never_retries() -> None:
    assert next_attempt((0.0,), ANCHOR, 1, at(0.1)) is None


def test_the_window_closes_at_the_last_step() -> None:
    assert window_closes_at(SCHEDULE, ANCHOR) == at(1800)


def test_each_step_has_a_timer_of_the_gap_before_it_and_one_delay_queue_per_distinct_gap() -> None:
    assert [step_delay_ms(SCHEDULE, s) for s in range(1, 6)] == [60_000, 120_000, 240_000, 480_000, 900_000]
    assert delay_queue_ttls((0, 1, 2, 3)) == [1000]
    assert delay_queue_ttls((0, 0.5, 2)) == [500, 1500]
    with pytest.raises(ValueError):
        step_delay_ms(SCHEDULE, 0)
