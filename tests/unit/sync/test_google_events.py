"""Kalends events in Calendar v3's shape, checked by the double's discovery validator."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from services.sync.domain.google_events import (
    calendar_colors,
    google_calendar,
    google_event,
    nearest_color_id,
)
from shared.messages import CalendarData, EventData
from tests.doubles.google_calendar import event_data_problem
from tests.doubles.google_discovery import request_problems

NOW = datetime(2026, 11, 30, tzinfo=UTC)


def event(**fields: Any) -> EventData:
    base: dict[str, Any] = {
        "event_id": uuid.uuid4(),
        "calendar_id": uuid.uuid4(),
        "account_id": uuid.uuid4(),
        "sequence": 3,
        "changed_at": NOW,
        "created_at": NOW,
        "title": "The Lion King",
        "start": "2026-06-04T19:00:00",
        "end": "2026-06-04T23:00:00",
        "timezone": "Australia/Sydney",
    }
    return EventData(**{**base, **fields})


def accepted(body: dict[str, Any], method: str = "calendar.events.import") -> list[str]:
    found = request_problems(method, path_params={"calendarId": "c"}, query={}, body=body)
    problem = event_data_problem(body) if method.startswith("calendar.events") else None
    return found + ([problem] if problem else [])


def test_a_timed_event_keeps_its_zone_uid_reminder_and_place() -> None:
    e = event(notify_before=60, location="13 Campbell St", description="2 tickets")
    body = google_event(e)
    assert accepted(body) == []
    assert body["iCalUID"] == str(e.event_id)
    assert body["start"] == {"dateTime": "2026-06-04T19:00:00", "timeZone": "Australia/Sydney"}
    assert body["reminders"] == {"useDefault": False, "overrides": [{"method": "popup", "minutes": 60}]}
    assert (body["location"], body["description"], body["summary"]) == ("13 Campbell St", "2 tickets", "The Lion King")


def test_an_all_day_event_ends_on_googles_exclusive_day() -> None:
    body = google_event(event(all_day=True, start="2026-06-04", end="2026-06-05"))
    assert accepted(body) == []
    assert (body["start"], body["end"]) == ({"date": "2026-06-04"}, {"date": "2026-06-06"})


def test_recurrence_lines_go_as_they_are() -> None:
    lines = ["RRULE:FREQ=WEEKLY;COUNT=4", "EXDATE;TZID=Australia/Sydney:20260611T190000"]
    body = google_event(event(recurrence=lines))
    assert accepted(body) == [] and body["recurrence"] == lines


def test_a_color_becomes_the_nearest_google_color_id() -> None:
    assert google_event(event(color="#dc2127"))["colorId"] == "11"
    assert nearest_color_id("red") == "11"
    assert nearest_color_id("green") == "10"
    assert "colorId" not in google_event(event())
    assert accepted(google_event(event(color="navy"))) == []


def test_an_event_without_reminder_has_none_and_a_long_one_is_capped() -> None:
    assert google_event(event())["reminders"] == {"useDefault": False}
    assert google_event(event(notify_before=99999))["reminders"]["overrides"][0]["minutes"] == 40320


def test_the_calendar_takes_the_merchants_name_zone_description_and_color() -> None:
    calendar = CalendarData(
        calendar_id=uuid.uuid4(),
        account_id=uuid.uuid4(),
        account_code="acme",
        code="fixtures",
        name="Acme Fixtures",
        description="Every match",
        color="navy",
        changed_at=NOW,
    )
    body = google_calendar(calendar, "Europe/London")
    assert request_problems("calendar.calendars.insert", path_params={}, query={}, body=body) == []
    assert body == {"summary": "Acme Fixtures", "description": "Every match", "timeZone": "Europe/London"}
    assert calendar_colors(calendar) == {"backgroundColor": "#000080", "foregroundColor": "#ffffff"}
