"""Recurrence lines at the API edge: shared.recurrence's parser, its refusals as 400s naming the line.

The feed renders with the same parser, so a line stored here is a line every feed can write.
"""

from __future__ import annotations

from shared.errors import InvalidRequest
from shared.recurrence import InvalidRecurrence, dtstart_of, parse_recurrence


def validate_recurrence(lines: list[str], *, start: str, all_day: bool, timezone: str) -> list[str]:
    """The lines as stored (names upper-cased); a 400 `recurrence[i]: why` for the first bad one."""
    try:
        return [line.text for line in parse_recurrence(lines, dtstart_of(start, all_day, timezone))]
    except InvalidRecurrence as exc:
        raise InvalidRequest(str(exc)) from None
