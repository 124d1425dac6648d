"""Ingest accepts only what every consumer can use, and says what it ignored.

Recurrence rules are checked for meaning (a 400 naming the line and the rule), time zones and
recurrence lines the feed cannot render are refused, and a catalog body's unknown names are still
ignored but listed in the answer's `warnings`.
"""

from __future__ import annotations

from tests.integration.ingest.conftest import Harness, Merchant


async def calendar(harness: Harness) -> tuple[Merchant, str]:
    m = harness.merchant()
    response = await harness.client.post(f"/v1/calendars/{m.code}", json={"code": "c", "name": "C"}, headers=m.headers)
    assert response.status == 201
    return m, f"/v1/calendars/{m.code}/c"


REFUSED = [
    ("RRULE:FREQ=WEEKLY;INTERVAL=0", "INTERVAL must be at least 1, not 0"),
    ("RRULE:FREQ=WEEKLY;COUNT=-5", "COUNT must be at least 1, not -5"),
    ("RRULE:FREQ=WEEKLY;COUNT=5;UNTIL=20270101T000000Z", "COUNT and UNTIL together"),
    ("RRULE:FREQ=YEARLY;BYMONTH=13", "BYMONTH values are 1 to 12, not 13"),
    ("RRULE:FREQ=MINUTELY;COUNT=5000", "at most 1000 occurrences, not COUNT=5000"),
    ("RRULE:FREQ=HOURLY", "FREQ=HOURLY needs COUNT or UNTIL"),
    ("RDATE;VALUE=PERIOD:20260404T190000Z/20260404T200000Z", "VALUE=PERIOD is not accepted"),
    ("EXDATE;TZID=right/UTC:20260404T190000", "unknown time zone 'right/UTC'"),
]


async def test_a_recurrence_line_without_a_meaning_every_consumer_shares_is_a_400_naming_the_line_and_why(
    harness: Harness,
) -> None:
    m, cal = await calendar(harness)
    for line, says in REFUSED:
        event = {"title": "t", "start": "2026-04-01T19:00:00", "timezone": "Europe/Berlin", "recurrence": [line]}
        response = await harness.client.post(f"{cal}/events", json=event, headers=m.headers)
        body = await response.json()
        assert response.status == 400, body
        reason = body["errors"][0]["reason"]
        assert reason.startswith("recurrence[0]: ") and says in reason and reason.endswith(f"(in {line!r})"), reason
    listed = await harness.client.get(f"{cal}/events", headers=m.headers)
    assert await listed.json() == []


async def test_zoneinfo_files_that_are_not_places_are_refused_as_event_and_calendar_time_zones(
    harness: Harness,
) -> None:
    m, cal = await calendar(harness)
    for zone in ("posixrules", "right/UTC", "Factory", "localtime"):
        event = {"title": "t", "start": "2026-04-01T19:00:00", "timezone": zone}
        response = await harness.client.post(f"{cal}/events", json=event, headers=m.headers)
        assert response.status == 400
        assert (await response.json())["errors"][0]["reason"].startswith("timezone: unknown time zone")
        response = await harness.client.put(cal, json={"timezone": zone}, headers=m.headers)
        assert response.status == 400


async def test_an_exdate_in_a_retired_windows_zone_is_accepted_as_the_feed_can_render_it(harness: Harness) -> None:
    m, cal = await calendar(harness)
    lines = ["RRULE:FREQ=WEEKLY;COUNT=4", "EXDATE;TZID=Mid-Atlantic Standard Time:20260408T150000"]
    event = {"title": "t", "start": "2026-04-01T19:00:00", "timezone": "Europe/Berlin", "recurrence": lines}
    response = await harness.client.post(f"{cal}/events", json=event, headers=m.headers)
    assert response.status == 201, await response.text()
    assert (await response.json())["recurrence"] == lines


async def test_unknown_catalog_fields_are_ignored_and_named_in_warnings(harness: Harness) -> None:
    m = harness.merchant()
    response = await harness.client.post(
        f"/v1/calendars/{m.code}", json={"Code": "c", "NAME": "C", "colour": "red"}, headers=m.headers
    )
    body = await response.json()
    assert response.status == 201 and body["name"] == "C" and body["color"] is None
    assert body["warnings"] == ["unknown field 'colour' ignored"]
    cal = f"/v1/calendars/{m.code}/c"
    response = await harness.client.put(cal, json={"Description": "d"}, headers=m.headers)
    assert (await response.json())["warnings"] == []
    tag = {"name": "n", "ExternalID": "x", "kind": 1}
    response = await harness.client.post(f"{cal}/tags", json=tag, headers=m.headers)
    assert (await response.json())["warnings"] == ["unknown field 'kind' ignored"]
    event = {
        "title": "t",
        "Start": "2026-04-01T19:00:00",
        "externalId": "e1",
        "body": "the description, as Unipile and Outlook name it",
        "summary": "misnamed",
        "organizer": {"email": "o@example.com", "phone": "123"},
    }
    response = await harness.client.post(f"{cal}/events", json=event, headers=m.headers)
    body = await response.json()
    assert response.status == 201 and body["description"] == "the description, as Unipile and Outlook name it"
    assert body["warnings"] == ["unknown field 'summary' ignored", "unknown field 'organizer.phone' ignored"]
    response = await harness.client.patch(f"{cal}/events/e1", json={"Descripton": "typo"}, headers=m.headers)
    assert (await response.json())["warnings"] == ["unknown field 'descripton' ignored"]
    response = await harness.client.put(f"{cal}/events/e1", json={**event, "description": "d"}, headers=m.headers)
    assert len((await response.json())["warnings"]) == 2


async def test_the_openapi_document_describes_the_catalogs_answers_with_their_warnings(harness: Harness) -> None:
    document = await (await harness.client.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]
    path = "/v1/calendars/{accountCode}/{calendarCode}/events"
    created = document["paths"][path]["post"]["responses"]["201"]["content"]["application/json"]["schema"]
    assert created == {"$ref": "#/components/schemas/EventAnswer"}
    for name in ("CalendarAnswer", "TagAnswer", "EventAnswer"):
        assert schemas[name]["properties"]["warnings"]["type"] == "array"
