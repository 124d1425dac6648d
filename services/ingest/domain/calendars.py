"""Calendar settings: the refresh interval as an ISO 8601 duration within sane bounds."""

from __future__ import annotations

from datetime import timedelta

from pydantic import TypeAdapter, ValidationError

from shared.errors import InvalidRequest

_DURATION = TypeAdapter(timedelta)
MIN_REFRESH = timedelta(minutes=1)
MAX_REFRESH = timedelta(days=31)


def refresh_interval(value: str) -> str:
    """The interval as sent (upper-cased) once it parses as PnDTnHnMnS between 1 minute and 31 days."""
    text = value.strip().upper()
    if not text.startswith("P"):
        raise InvalidRequest("refreshInterval: use an ISO 8601 duration such as PT1H or P1D")
    try:
        duration = _DURATION.validate_python(text)
    except ValidationError:
        raise InvalidRequest(f"refreshInterval: {text[:32]!r} is not an ISO 8601 duration") from None
    if not MIN_REFRESH <= duration <= MAX_REFRESH:
        raise InvalidRequest("refreshInterval: must be between PT1M and P31D")
    return text
