"""POST /v1/ics (seed 001) with API keys announced by auth over the broker."""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from datetime import UTC, datetime

import icalendar

from shared.messages import ApiKeyCreated, ApiKeyRevoked
from tests.integration.feed.conftest import FeedHarness
from tests.tools.feed_parsers import parse_everywhere

SEED_EXAMPLE = {
    "action": "createcalendar",
    "event-title": "Dunder Mifflin Christmas Party",
    "event-description": "Ugly sweaters encouraged! Also bring a gift for Yankee Swap!",
    "event-location": "Fake Address",
    "event-start-datetime": "2021-12-17T11:30:00Z",
    "event-end-datetime": "2021-12-17T13:30:00Z",
    "event-timezone": "America/New_York",
    "all-day-event": False,
}


async def announce_key(feed: FeedHarness) -> tuple[str, ApiKeyCreated]:
    key = secrets.token_urlsafe(32)
    created = ApiKeyCreated(
        key_id=uuid.uuid4(),
        account_id=uuid.uuid4(),
        account_code="acme",
        key_hash=hashlib.sha256(key.encode()).hexdigest(),
        created_at=datetime.now(UTC),
    )
    await feed.publish("api_key.created", created)
    return key, created


async def post_until(feed: FeedHarness, key: str, body: object, want: int) -> tuple[int, bytes, dict[str, str]]:
    import asyncio
    import time

    deadline = time.monotonic() + 10
    while True:
        response = await feed.client.post("/v1/ics", data=json.dumps(body), headers={"x-api-key": key})
        raw = await response.read()
        if response.status == want or time.monotonic() > deadline:
            return response.status, raw, dict(response.headers)
        await asyncio.sleep(0.05)


async def test_the_seed_example_gives_an_ics_file_with_a_vtimezone(feed: FeedHarness) -> None:
    key, _ = await announce_key(feed)
    status, body, headers = await post_until(feed, key, SEED_EXAMPLE, 200)
    assert status == 200, body
    assert headers["Content-Type"] == "text/calendar; charset=utf-8"
    assert headers["Content-Disposition"] == "inline; filename=calendar.ics"
    event = icalendar.Calendar.from_ical(body).walk("VEVENT")[0]
    assert str(event["SUMMARY"]) == "Dunder Mifflin Christmas Party"
    assert event["DTSTART"].params["TZID"] == "America/New_York"
    parsed = parse_everywhere(body)
    assert next(iter(parsed.values()))["occurrences"] == ["2021-12-17T16:30:00Z"]


async def test_an_all_day_event_is_written_with_date_values(feed: FeedHarness) -> None:
    key, _ = await announce_key(feed)
    request = {
        **SEED_EXAMPLE,
        "all-day-event": True,
        "event-end-datetime": "2021-12-18",
        "event-timezone": "Eastern Standard Time",
    }
    status, body, _ = await post_until(feed, key, request, 200)
    assert status == 200
    assert b"DTSTART;VALUE=DATE:20211217\r\n" in body and b"DTEND;VALUE=DATE:20211219\r\n" in body
    assert next(iter(parse_everywhere(body).values()))["occurrences"] == ["2021-12-17"]


async def test_failures_answer_in_the_seed_format_with_their_codes(feed: FeedHarness) -> None:
    key, created = await announce_key(feed)
    await post_until(feed, key, SEED_EXAMPLE, 200)
    status, body, _ = await post_until(feed, key, {**SEED_EXAMPLE, "event-title": ""}, 400)
    assert status == 400
    assert json.loads(body) == {
        "status": "failure",
        "error-code": "E1703",
        "error-info": "Title cannot be empty for iCalendar.",
    }
    status, body, _ = await post_until(feed, key, {**SEED_EXAMPLE, "event-timezone": "Nowhere/Land"}, 400)
    assert json.loads(body)["error-code"] == "E1708"
    status, body, _ = await post_until(feed, "wrong-key", SEED_EXAMPLE, 401)
    assert status == 401 and json.loads(body)["error-code"] == "E1701"
    response = await feed.client.post("/v1/ics", data=json.dumps(SEED_EXAMPLE))
    assert response.status == 401 and (await response.json())["error-code"] == "E1701"
    await feed.publish(
        "api_key.revoked",
        ApiKeyRevoked(
            key_id=created.key_id,
            account_id=created.account_id,
            account_code="acme",
            key_hash=created.key_hash,
            revoked_at=datetime.now(UTC),
        ),
    )
    status, _, _ = await post_until(feed, key, SEED_EXAMPLE, 401)
    assert status == 401
