"""Event times: wall-clock readings in the event's zone, and all-day dates with an inclusive end.

The rule of seed 001: a timed event's clock time is read in its time zone; an offset also present
in the string is ignored. All-day events keep dates only, and their end is the last day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from dateutil.parser import isoparse

from shared.errors import InvalidRequest
from shared.recurrence import MAX_YEAR, MIN_YEAR

DEFAULT_DURATION = timedelta(hours=1)


@dataclass(frozen=True)
class EventTimes:
    start: str  # YYYY-MM-DDTHH:MM:SS wall clock, or YYYY-MM-DD when all day
    end: str
    all_day: bool


def parse_wall_clock(value: str, field: str) -> datetime:
    """ISO 8601 date or date-time as a naive wall-clock reading (any offset dropped)."""
    text = value.strip()
    if not text or len(text) > 40:
        raise InvalidRequest(f"{field}: expected an ISO 8601 date or date-time, got {text[:40]!r}")
    try:
        parsed = isoparse(text)
    except (ValueError, OverflowError):
        raise InvalidRequest(f"{field}: {text[:40]!r} is not an ISO 8601 date or date-time") from None
    if not MIN_YEAR <= parsed.year <= MAX_YEAR:
        raise InvalidRequest(f"{field}: the year must be between {MIN_YEAR} and {MAX_YEAR}")
    return parsed.replace(tzinfo=None, microsecond=0)


def event_times(start: str, end: str | None, all_day: bool) -> EventTimes:
    """Validate and normalise start and end; an end before its start is a 400 naming `end`."""
    first = parse_wall_clock(start, "start")
    if all_day:
        first_day: date = first.date()
        last_day = parse_wall_clock(end, "end").date() if end else first_day
        if last_day < first_day:
            raise InvalidRequest("end: the last day of an all-day event is before its first day")
        return EventTimes(first_day.isoformat(), last_day.isoformat(), True)
    last = parse_wall_clock(end, "end") if end else first + DEFAULT_DURATION
    if last < first:
        raise InvalidRequest("end: the event ends before it starts")
    return EventTimes(first.isoformat(), last.isoformat(), False)
