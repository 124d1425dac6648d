"""The Google double's validator: it refuses what Calendar v3's discovery document refuses."""

from __future__ import annotations

from tests.doubles.google_calendar import event_data_problem
from tests.doubles.google_discovery import request_problems

APP = frozenset({"https://www.googleapis.com/auth/calendar.app.created", "openid", "email"})
EVENT = {
    "iCalUID": "e1",
    "summary": "Kick-off",
    "start": {"dateTime": "2026-06-04T19:00:00", "timeZone": "Europe/Paris"},
    "end": {"dateTime": "2026-06-04T21:00:00", "timeZone": "Europe/Paris"},
}


def problems(method: str, body: object, query: dict[str, list[str]] | None = None) -> list[str]:
    return request_problems(method, path_params={"calendarId": "c1"}, query=query or {}, body=body, granted_scopes=APP)


def test_a_well_formed_import_passes() -> None:
    assert problems("calendar.events.import", EVENT) == []


def test_an_unknown_property_is_refused() -> None:
    found = problems("calendar.events.import", {**EVENT, "title": "Kick-off"})
    assert found == ["title: unknown property (not in the Event schema)"]


def test_an_unknown_nested_property_is_refused() -> None:
    body = {**EVENT, "start": {"dateTime": "2026-06-04T19:00:00", "tz": "Europe/Paris"}}
    assert any(p.startswith("start.tz: unknown property") for p in problems("calendar.events.import", body))


def test_a_wrong_type_is_refused() -> None:
    body = {**EVENT, "reminders": {"useDefault": "no"}}
    assert problems("calendar.events.import", body) == ["reminders.useDefault: expected a boolean, got str"]


def test_an_int32_outside_its_range_and_a_bad_date_are_refused() -> None:
    body = {**EVENT, "sequence": 2**40, "end": {"date": "2026-13-01"}}
    found = problems("calendar.events.import", body)
    assert "sequence: 1099511627776 does not fit int32" in found
    assert "end.date: '2026-13-01' is not a valid date" in found


def test_properties_the_method_requires_are_required() -> None:
    body = {k: v for k, v in EVENT.items() if k != "iCalUID"}
    assert problems("calendar.events.import", body) == ["iCalUID: required for calendar.events.import"]
    assert problems("calendar.events.insert", body) == []  # insert needs no iCalUID
    assert problems("calendar.calendars.insert", {"timeZone": "UTC"}) == [
        "summary: required for calendar.calendars.insert"
    ]


def test_path_and_query_parameters_are_checked() -> None:
    missing = request_problems("calendar.events.import", path_params={}, query={}, body=EVENT)
    assert missing == ["path calendarId: required"]
    assert problems("calendar.events.list", None, {"maxResults": ["0"]}) == ["query maxResults: 0 is below 1"]
    assert problems("calendar.events.list", None, {"colour": ["red"]}) == [
        "query colour: unknown parameter for calendar.events.list"
    ]
    assert problems("calendar.events.list", None, {"showDeleted": ["yes"]}) == [
        "query showDeleted: 'yes' is not true or false"
    ]


def test_a_method_the_granted_scopes_do_not_cover_is_refused() -> None:
    found = problems("calendar.calendarList.list", None)
    assert len(found) == 1 and "none of the granted scopes" in found[0]


def test_google_data_rules_beyond_the_schema() -> None:
    assert event_data_problem(EVENT) is None
    naive = {**EVENT, "start": {"dateTime": "2026-06-04T19:00:00"}}
    assert event_data_problem(naive) == "Missing time zone definition for start time."
    assert event_data_problem({**EVENT, "start": {**EVENT["start"], "timeZone": "Mars/Olympus"}}) == (
        "Invalid time zone definition for start time."
    )
    backwards = {**EVENT, "end": {"dateTime": "2026-06-04T18:00:00", "timeZone": "Europe/Paris"}}
    assert event_data_problem(backwards) == "The specified time range is empty."
    assert event_data_problem({**EVENT, "colorId": "12"}) == "Invalid value for: colorId"
    both = {**EVENT, "reminders": {"useDefault": True, "overrides": [{"method": "popup", "minutes": 5}]}}
    assert event_data_problem(both) == "Cannot specify both default reminders and overrides at the same time."
    assert event_data_problem({**EVENT, "recurrence": ["FREQ=WEEKLY"]}) == "Invalid recurrence rule."
