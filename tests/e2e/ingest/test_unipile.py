"""Seed 003's create-event route on ingest: X-API-KEY or Bearer, an ordinary catalog event in the feed."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest
from icalendar import Calendar

from shared.testing import Stack
from shared.testing_smtp import SmtpServer

from .conftest import Merchant
from .test_with_feed import feed_text, http_url

pytestmark = pytest.mark.e2e


async def post_unipile(
    merchant: Merchant, calendar: str, body: Any, headers: dict[str, str], account_id: str | None = None
) -> tuple[int, Any]:
    url = f"{merchant.base}/api/v1/calendars/{calendar}/events"
    params = {"account_id": account_id or merchant.code}
    async with merchant.session.post(url, json=body, headers=headers, params=params) as response:
        return response.status, await response.json()


async def api_key(stack: Stack, merchant: Merchant) -> str:
    """An API key from auth's CLI, once ingest has learnt it (api_key.created travels by the outbox)."""
    key = str((await stack.admin("create-api-key", merchant.code))["apiKey"])
    deadline = time.monotonic() + 20
    while True:
        status, _ = await post_unipile(merchant, "no-such-calendar", {}, {"X-API-KEY": key})
        if status == 404 or time.monotonic() > deadline:
            assert status == 404
            return key
        await asyncio.sleep(0.2)


async def test_an_event_created_with_an_api_key_shows_in_the_calendar_feed_with_its_body_and_exact_color(
    acme: Merchant, stack: Stack, http: aiohttp.ClientSession
) -> None:
    await stack.start("feed")
    assert (await acme.call("POST", f"/v1/calendars/{acme.code}", {"code": "uni", "name": "Uni"}))[0] == 201
    key = await api_key(stack, acme)
    event = {
        "title": "Quarterly review",
        "body": "Bring the figures",
        "location": "Room 4",
        "visibility": "private",
        "transparency": "transparent",
        "conference": {"url": "https://meet.example.com/q4"},
        "attendees": [{"email": "ann@example.com", "display_name": "Ann"}],
        "start": {"date_time": "2026-12-07T10:00:00", "time_zone": "Europe/Paris"},
        "end": {"date_time": "2026-12-07T11:30:00", "time_zone": "Europe/Paris"},
        "color": "#7986CB",
        "notify": True,
    }
    status, created = await post_unipile(acme, "uni", event, {"X-API-KEY": key})
    assert status == 201, created
    assert created["object"] == "CalendarEventCreated"
    status, stored = await acme.call("GET", f"/v1/calendars/{acme.code}/uni/events/{created['event_id']}")
    assert status == 200 and stored["description"] == "Bring the figures"

    status, sub = await acme.call(
        "POST", f"/v1/subscribe/{acme.code}/uni", {"subscriberId": "u1", "subscriptionMethod": "WebCal"}
    )
    assert status == 200, sub
    url, _ = http_url(sub["subscriptionUrl"])
    text = await feed_text(http, url, lambda b: "Quarterly review" in b)
    unfolded = text.replace("\r\n ", "")
    for line in (
        "DESCRIPTION:Bring the figures",
        "CLASS:PRIVATE",
        "TRANSP:TRANSPARENT",
        "DTSTART;TZID=Europe/Paris:20261207T100000",
        "X-APPLE-CALENDAR-COLOR:#7986CB",
        "X-OUTLOOK-COLOR:#7986CB",
        "COLOR:",
        "mailto:ann@example.com",
        "https://meet.example.com/q4",
    ):
        assert line in unfolded, line


async def test_a_bearer_token_works_and_the_calendar_may_be_named_by_its_id(acme: Merchant) -> None:
    status, calendar = await acme.call("POST", f"/v1/calendars/{acme.code}", {"code": "uni-id", "name": "By id"})
    assert status == 201, calendar
    event = {"title": "All day", "start": "2026-12-24", "end": "2026-12-26"}
    status, created = await post_unipile(acme, calendar["id"], event, {"Authorization": f"Bearer {acme.token}"})
    assert status == 201, created
    status, stored = await acme.call("GET", f"/v1/calendars/{acme.code}/uni-id/events/{created['event_id']}")
    assert (stored["start"], stored["end"], stored["allDayEvent"]) == ("2026-12-24", "2026-12-25", True)


async def test_failures_are_answered_in_unipiles_error_shape(acme: Merchant, rival: Merchant) -> None:
    bearer = {"Authorization": f"Bearer {acme.token}"}
    status, body = await post_unipile(acme, "nowhere", {"title": "x", "start": "2026-01-01T10:00:00"}, bearer)
    assert status == 404 and body["type"] == "errors/resource_not_found" and "nowhere" in body["detail"]
    assert set(body) == {"status", "type", "title", "detail"} and body["status"] == 404
    status, body = await post_unipile(acme, "uni", {"title": "x"}, {})
    assert (status, body["type"]) == (401, "errors/missing_credentials")
    status, body = await post_unipile(acme, "uni", {"title": "x"}, {"X-API-KEY": "not-a-key"})
    assert (status, body["type"]) == (401, "errors/invalid_credentials")
    status, body = await post_unipile(acme, "uni", {"title": "x"}, bearer, account_id=rival.code)
    assert (status, body["type"]) == (403, "errors/account_mismatch")
    await acme.call("POST", f"/v1/calendars/{acme.code}", {"code": "uni-bad", "name": "Bad"})
    status, body = await post_unipile(acme, "uni-bad", {"title": "x", "start": "2026-02-30T10:00:00"}, bearer)
    assert (status, body["type"]) == (400, "errors/invalid_parameters") and "start" in body["detail"]
    status, events = await acme.call("GET", f"/v1/calendars/{acme.code}/uni-bad/events")
    assert events == []


async def test_notify_true_sends_each_attendee_an_invitation_through_the_mail_service(
    acme: Merchant, stack: Stack
) -> None:
    smtp = SmtpServer().start()
    try:
        await stack.start("mail", env={"KALENDS_SMTP_URL": smtp.url, "KALENDS_MAIL_FROM": "calendar@kalends.test"})
        await acme.call("POST", f"/v1/calendars/{acme.code}", {"code": "uni-notify", "name": "Notify"})
        event = {
            "title": "Kick-off",
            "start": "2026-12-08T09:00:00Z",
            "attendees": [{"email": "zoe@example.com", "display_name": "Zoe"}],
            "notify": True,
        }
        status, created = await post_unipile(acme, "uni-notify", event, {"Authorization": f"Bearer {acme.token}"})
        assert status == 201, created
        (received,) = await smtp.wait_for(1, timeout=30)
        assert received.recipients == ["zoe@example.com"]
        part = next(p for p in received.parsed().walk() if p.get_content_type() == "text/calendar")
        calendar = Calendar.from_ical(part.get_content())
        vevent = calendar.walk("VEVENT")[0]
        assert calendar["METHOD"] == "REQUEST" and str(vevent["SUMMARY"]) == "Kick-off"
        assert created["event_id"] in str(vevent["UID"])
    finally:
        smtp.stop()
