"""Unipile's create-event body (seed 003) mapped onto the catalog's event body, and its error shape.

Unipile speaks Google/Microsoft conventions: `body` is the description, `visibility` is the CLASS,
`start`/`end` are ISO strings or `{date_time, time_zone}` objects, and an all-day event's `end` date
is exclusive (the day after the last one) while the catalog keeps the last day itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from dateutil.parser import isoparse

from shared.errors import InvalidRequest
from shared.timezones import UnknownTimezone, zone

# status -> the seed's type of an error we raise with that status
ERROR_TYPES = {
    400: "errors/invalid_parameters",
    401: "errors/invalid_credentials",
    403: "errors/insufficient_permissions",
    404: "errors/resource_not_found",
    413: "errors/invalid_parameters",
    500: "errors/unexpected_error",
    503: "errors/service_unavailable",
    504: "errors/request_timeout",
}
TITLES = {
    400: "Invalid parameters",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    413: "Invalid parameters",
    500: "Unexpected error",
    503: "Service unavailable",
    504: "Request timeout",
}
VISIBILITY = {"default": "public", "public": "public", "private": "private", "confidential": "confidential"}
OPTIONAL_ROLE = "OPT-PARTICIPANT"


def error_body(status: int, detail: str, error_type: str | None = None) -> dict[str, Any]:
    """Unipile's error: `{"status", "type": "errors/...", "title", "detail"}`."""
    return {
        "status": status,
        "type": error_type or ERROR_TYPES.get(status, "errors/unexpected_error"),
        "title": TITLES.get(status, "Unexpected error"),
        "detail": detail,
    }


@dataclass(frozen=True)
class UnipileEvent:
    """The catalog body (EventBody's wire names) and the scheduling flags that travel beside it."""

    catalog_body: dict[str, Any]
    notify: bool
    attendees_hidden: bool


def _lowered(payload: dict[str, Any]) -> dict[str, Any]:
    return {str(k).lower(): v for k, v in payload.items()}


def _flag(value: Any, field: str) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise InvalidRequest(f"{field}: expected true or false")


@dataclass(frozen=True)
class _Moment:
    text: str  # wall clock or date, as the catalog reads it
    time_zone: str | None
    is_date: bool


def _moment(value: Any, field: str) -> _Moment:
    """An ISO string or `{date_time, time_zone}` (also `{date}`); an offset without a zone is UTC."""
    zone: str | None = None
    if isinstance(value, dict):
        fields = _lowered(value)
        zone = fields.get("time_zone") or fields.get("timezone") or fields.get("timezoneid")
        value = fields.get("date_time") or fields.get("datetime") or fields.get("date")
        if zone is not None and not isinstance(zone, str):
            raise InvalidRequest(f"{field}.time_zone: expected an IANA or Windows time zone name")
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(f"{field}: expected an ISO 8601 date or date-time, or {{date_time, time_zone}}")
    text = value.strip()
    try:
        parsed = isoparse(text)
    except (ValueError, OverflowError):
        raise InvalidRequest(f"{field}: {text[:40]!r} is not an ISO 8601 date or date-time") from None
    if len(text) <= 10 and "T" not in text:
        return _Moment(parsed.date().isoformat(), zone, True)
    if parsed.tzinfo is not None and zone is None:
        # "2025-03-01T10:00:00Z" names an instant: keep it exactly, as UTC wall clock.
        utc = parsed.astimezone(UTC)
        return _Moment(utc.replace(tzinfo=None).isoformat(), "UTC", False)
    return _Moment(parsed.replace(tzinfo=None).isoformat(), zone, False)


def _all_day_end(first: str, end: _Moment | None) -> str | None:
    """Unipile's exclusive end date to the catalog's last day (a same-day end means one day)."""
    if end is None:
        return None
    last = date.fromisoformat(end.text)
    if last > date.fromisoformat(first):
        last -= timedelta(days=1)
    return last.isoformat()


def _attendee(value: Any, index: int) -> dict[str, Any]:
    field = f"attendees[{index}]"
    if isinstance(value, str):
        return {"email": value}
    if not isinstance(value, dict):
        raise InvalidRequest(f"{field}: expected an email address or {{email, display_name}}")
    fields = _lowered(value)
    email = fields.get("email") or fields.get("identifier") or fields.get("address")
    if not isinstance(email, str):
        raise InvalidRequest(f"{field}.email is required")
    person: dict[str, Any] = {"email": email}
    name = fields.get("display_name") or fields.get("displayname") or fields.get("name")
    if isinstance(name, str) and name.strip():
        person["name"] = name
    if _flag(fields.get("optional"), f"{field}.optional"):
        person["role"] = OPTIONAL_ROLE
    return person


def _conference(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value or None
    if isinstance(value, dict):
        url = _lowered(value).get("url")
        if isinstance(url, str) or url is None:
            return url or None
    raise InvalidRequest('conference: expected a URL or {"url": ...}')


def _times(fields: dict[str, Any]) -> dict[str, Any]:
    if fields.get("start") is None:
        raise InvalidRequest("start is required")
    start = _moment(fields["start"], "start")
    end = _moment(fields["end"], "end") if fields.get("end") is not None else None
    if end is not None and end.is_date != start.is_date:
        raise InvalidRequest("end: give dates for both start and end (all day) or date-times for both")
    if end is not None and end.time_zone and start.time_zone and end.time_zone != start.time_zone:
        # The catalog keeps one zone per event: read the end in the start's zone.
        instant = isoparse(end.text)
        end = _Moment(_rezone(instant, end.time_zone, start.time_zone), start.time_zone, False)
    times: dict[str, Any] = {"start": start.text, "allDayEvent": start.is_date}
    if start.is_date:
        times["end"] = _all_day_end(start.text, end)
    elif end is not None:
        times["end"] = end.text
    if start.time_zone:
        times["timezone"] = start.time_zone
    return times


def _rezone(wall: datetime, source: str, target: str) -> str:
    try:
        converted = wall.replace(tzinfo=zone(source)).astimezone(zone(target))
    except UnknownTimezone as exc:
        raise InvalidRequest(f"time_zone: {exc}") from None
    return converted.replace(tzinfo=None).isoformat()


def to_catalog(payload: Any) -> UnipileEvent:
    """Seed 003's body as the catalog's EventBody input; 400s name the field at fault."""
    if not isinstance(payload, dict):
        raise InvalidRequest(f"request body must be a JSON object, not {type(payload).__name__}")
    fields = _lowered(payload)
    if not isinstance(fields.get("title"), str) or not fields["title"].strip():
        raise InvalidRequest("title is required")
    body: dict[str, Any] = {"title": fields["title"], **_times(fields)}
    for source, target in (("body", "description"), ("location", "location"), ("color", "color")):
        if fields.get(source) is not None:
            body[target] = fields[source]
    if fields.get("transparency") is not None:
        body["transparency"] = fields["transparency"]
    if fields.get("visibility") is not None:
        visibility = str(fields["visibility"]).strip().lower()
        if visibility not in VISIBILITY:
            raise InvalidRequest("visibility: expected default, public, private or confidential")
        body["class"] = VISIBILITY[visibility]
    conference = _conference(fields.get("conference"))
    if conference:
        body["conference"] = conference
    attendees = fields.get("attendees") or []
    if not isinstance(attendees, list):
        raise InvalidRequest("attendees: expected a list")
    body["attendees"] = [_attendee(a, i) for i, a in enumerate(attendees)]
    recurrence = fields.get("recurrence") or []
    if isinstance(recurrence, str):
        recurrence = [recurrence]
    body["recurrence"] = recurrence
    notify = _flag(fields.get("notify"), "notify")
    body["notify"] = notify
    return UnipileEvent(
        catalog_body=body,
        notify=notify,
        attendees_hidden=_flag(fields.get("is_attendees_list_hidden"), "is_attendees_list_hidden"),
    )
