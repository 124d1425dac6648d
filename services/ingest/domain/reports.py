"""Report arithmetic: the date range an analytics request means, and its day-by-day series."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta

DEFAULT_DAYS = 30
MAX_DAYS = 366


class BadRange(ValueError):
    """The range cannot be used; the message says why."""


def parse_day(value: str, name: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise BadRange(f"{name}: expected a date as YYYY-MM-DD, got {value[:40]!r}") from None


def date_range(first: str | None, last: str | None, today: date) -> tuple[date, date]:
    """`from`/`to` as given (inclusive); `to` defaults to today and `from` to 29 days before `to`."""
    end = parse_day(last, "to") if last else today
    start = parse_day(first, "from") if first else end - timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise BadRange(f"from ({start}) is after to ({end})")
    if (end - start).days + 1 > MAX_DAYS:
        raise BadRange(f"the range covers {(end - start).days + 1} days; at most {MAX_DAYS} are allowed")
    return start, end


def daily_series(
    start: date, end: date, created: Mapping[date, int], ended: Mapping[date, int]
) -> list[dict[str, int | str]]:
    """Every day from `start` to `end`, days without activity included as zeros."""
    days: list[dict[str, int | str]] = []
    day = start
    while day <= end:
        days.append(
            {"date": day.isoformat(), "subscriptions": created.get(day, 0), "unsubscriptions": ended.get(day, 0)}
        )
        day += timedelta(days=1)
    return days
