"""Seed 003's body mapped onto the catalog's: times, visibility, conference, attendees, flags."""

from __future__ import annotations

import pytest

from services.ingest.domain.unipile import error_body, to_catalog
from shared.errors import InvalidRequest


def test_an_instant_with_an_offset_and_no_zone_is_kept_as_utc() -> None:
    body = to_catalog({"title": "t", "start": "2026-03-01T10:00:00+02:00"}).catalog_body
    assert (body["start"], body["timezone"], body["allDayEvent"]) == ("2026-03-01T08:00:00", "UTC", False)


def test_an_all_day_end_date_is_exclusive_and_becomes_the_last_day() -> None:
    body = to_catalog({"title": "t", "start": "2026-03-01", "end": "2026-03-03"}).catalog_body
    assert (body["start"], body["end"], body["allDayEvent"]) == ("2026-03-01", "2026-03-02", True)


def test_an_end_in_another_zone_is_read_in_the_start_zone() -> None:
    body = to_catalog(
        {
            "title": "t",
            "start": {"date_time": "2026-03-01T10:00:00", "time_zone": "Europe/Paris"},
            "end": {"date_time": "2026-03-01T10:00:00", "time_zone": "Europe/London"},
        }
    ).catalog_body
    assert body["end"] == "2026-03-01T11:00:00" and body["timezone"] == "Europe/Paris"


def test_visibility_default_is_public_and_body_is_the_description() -> None:
    event = to_catalog(
        {
            "title": "t",
            "start": "2026-03-01T10:00:00",
            "body": "hello",
            "visibility": "default",
            "conference": "https://meet.example.com/x",
            "attendees": ["a@example.com", {"email": "b@example.com", "optional": True}],
            "notify": True,
            "is_attendees_list_hidden": True,
        }
    )
    assert event.catalog_body["class"] == "public" and event.catalog_body["description"] == "hello"
    assert event.catalog_body["conference"] == "https://meet.example.com/x"
    assert event.catalog_body["attendees"][1] == {"email": "b@example.com", "role": "OPT-PARTICIPANT"}
    assert event.notify and event.attendees_hidden


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"start": "2026-03-01T10:00:00"}, "title"),
        ({"title": "t"}, "start"),
        ({"title": "t", "start": "2026-03-01T10:00:00", "visibility": "secret"}, "visibility"),
        ({"title": "t", "start": "2026-03-01", "end": "2026-03-01T10:00:00"}, "end"),
        ({"title": "t", "start": "2026-03-01T10:00:00", "notify": "maybe"}, "notify"),
    ],
)
def test_unusable_fields_are_400s_naming_the_field(payload: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidRequest, match=field):
        to_catalog(payload)


def test_an_error_body_has_unipiles_four_fields() -> None:
    assert error_body(404, "gone") == {
        "status": 404,
        "type": "errors/resource_not_found",
        "title": "Not found",
        "detail": "gone",
    }
