"""Seed 001's one-shot calendar: validate the JSON with the seed's error codes, render one VCALENDAR."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.ical import (
    CalendarHeader,
    EventInput,
    InvalidEvent,
    assemble,
    render_event,
    render_header,
)
from shared.timezones import UnknownTimezone, resolve
from shared.zone_needs import vtimezone_block


@dataclass(frozen=True)
class IcsFailure(Exception):
    """A failure in seed 001's shape: `{"status": "failure", "error-code", "error-info"}`."""

    code: str
    info: str
    status: int = 400

    def body(self) -> dict[str, str]:
        return {"status": "failure", "error-code": self.code, "error-info": self.info}


# One code per failure, in the form of the seed's E1703.
E_MALFORMED = "E1700"
E_API_KEY = "E1701"
E_ACTION = "E1702"
E_TITLE = "E1703"
E_DESCRIPTION = "E1704"
E_LOCATION = "E1705"
E_START = "E1706"
E_END = "E1707"
E_TIMEZONE = "E1708"
E_RANGE = "E1709"
E_ALL_DAY = "E1710"


@dataclass(frozen=True)
class IcsEvent:
    title: str
    description: str
    location: str
    start: str
    end: str
    timezone: str
    all_day: bool


def _text(body: dict[str, Any], key: str, code: str, what: str, *, required_non_empty: bool = False) -> str:
    if key not in body or body[key] is None:
        raise IcsFailure(code, f"{what} ({key}) is required for iCalendar.")
    value = body[key]
    if not isinstance(value, str):
        raise IcsFailure(code, f"{what} ({key}) must be a string.")
    if required_non_empty and not value.strip():
        raise IcsFailure(code, f"{what} cannot be empty for iCalendar.")
    return value


def parse_request(raw: bytes) -> IcsEvent:
    try:
        parsed = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        where = f" at line {exc.lineno} column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
        raise IcsFailure(E_MALFORMED, f"The request body is not valid JSON{where}.") from None
    if not isinstance(parsed, dict):
        raise IcsFailure(E_MALFORMED, "The request body must be a JSON object.")
    body = {str(k).strip().lower(): v for k, v in parsed.items()}
    action = body.get("action")
    if not isinstance(action, str) or action.strip().lower() != "createcalendar":
        raise IcsFailure(E_ACTION, 'action is required and must be "createcalendar".')
    title = _text(body, "event-title", "E1703", "Title", required_non_empty=True)
    description = _text(body, "event-description", E_DESCRIPTION, "Description")
    location = _text(body, "event-location", E_LOCATION, "Location")
    start = _text(body, "event-start-datetime", E_START, "Start date and time", required_non_empty=True)
    end = _text(body, "event-end-datetime", E_END, "End date and time", required_non_empty=True)
    timezone_name = _text(body, "event-timezone", E_TIMEZONE, "Time zone", required_non_empty=True)
    all_day = body.get("all-day-event", False)
    if all_day is None:
        all_day = False
    if isinstance(all_day, str) and all_day.strip().lower() in {"true", "false"}:
        all_day = all_day.strip().lower() == "true"
    if not isinstance(all_day, bool):
        raise IcsFailure(E_ALL_DAY, "all-day-event must be true or false.")
    try:
        timezone = resolve(timezone_name)
    except UnknownTimezone:
        raise IcsFailure(E_TIMEZONE, f"Time zone {timezone_name!r} is not a tz database time zone name.") from None
    start_value = _moment(start, E_START, "event-start-datetime")
    end_value = _moment(end, E_END, "event-end-datetime")
    if all_day:
        if end_value.date() < start_value.date():
            raise IcsFailure(E_RANGE, "The end date cannot be before the start date.")
        return IcsEvent(
            title,
            description,
            location,
            start_value.date().isoformat(),
            end_value.date().isoformat(),
            timezone,
            True,
        )
    if end_value < start_value:
        raise IcsFailure(E_RANGE, "The end date and time cannot be before the start date and time.")
    return IcsEvent(title, description, location, start_value.isoformat(), end_value.isoformat(), timezone, False)


def _moment(value: str, code: str, key: str) -> datetime:
    """The wall-clock time written; any offset in it is ignored (the seed: event-timezone wins)."""
    text = value.strip()
    try:
        moment = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    except ValueError:
        raise IcsFailure(code, f"{key} must be an ISO 8601 date or date-time, got {value!r}.") from None
    return moment.replace(tzinfo=None, microsecond=0)


def render_ics(event: IcsEvent, *, account_id: uuid.UUID, now: datetime) -> bytes:
    """One VCALENDAR with one VEVENT and the VTIMEZONE its TZID needs."""
    identity = json.dumps([str(account_id), event.title, event.start, event.end, event.timezone, event.all_day])
    uid = str(uuid.UUID(bytes=hashlib.blake2b(identity.encode(), digest_size=16).digest()))
    try:
        rendered = render_event(
            EventInput(
                uid=uid,
                sequence=0,
                changed_at=now,
                created_at=now,
                title=event.title,
                description=event.description,
                location=event.location,
                start=event.start,
                end=event.end,
                timezone=event.timezone,
                all_day=event.all_day,
            )
        )
    except InvalidEvent as exc:  # pragma: no cover - parse_request already checked
        raise IcsFailure(E_RANGE, str(exc)) from None
    header = render_header(CalendarHeader(name=event.title, timezone=event.timezone))
    return assemble(header, rendered.tzids, [rendered.block], vtimezone_block)
