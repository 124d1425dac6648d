"""The catalog through HTTP: every validation error names its field, other accounts see nothing,
oversized bodies are refused."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import Merchant

pytestmark = pytest.mark.e2e


async def make_calendar(m: Merchant, code: str, **extra: Any) -> dict[str, Any]:
    status, body = await m.call(
        "POST", f"/v1/calendars/{m.code}", {"code": code, "name": code.title(), "timezone": "Europe/London", **extra}
    )
    assert status == 201, body
    return dict(body)


async def test_calendar_create_read_update_delete(acme: Merchant) -> None:
    created = await make_calendar(
        acme,
        "league",
        description="All games",
        color="#112233",
        refreshInterval="PT30M",
        singleSubscriptionPerSubscriber=True,
    )
    assert created["timezone"] == "Europe/London" and created["refreshInterval"] == "PT30M"
    assert created["singleSubscriptionPerSubscriber"] is True and created["protected"] is False
    status, body = await acme.call("POST", f"/v1/calendars/{acme.code}", {"code": "LEAGUE", "name": "Again"})
    assert status == 409 and body["errors"][0]["reason"].startswith("code:")
    status, listed = await acme.call("GET", f"/v1/calendars/{acme.code}")
    assert status == 200 and "league" in [c["code"] for c in listed]
    status, updated = await acme.call(
        "PUT", f"/v1/calendars/{acme.code}/league", {"name": "The League", "timezone": "Pacific Standard Time"}
    )
    assert status == 200 and updated["name"] == "The League" and updated["timezone"] == "America/Los_Angeles"
    assert updated["description"] == "All games" and updated["version"] == 2
    status, _ = await acme.call("DELETE", f"/v1/calendars/{acme.code}/league")
    assert status == 204
    status, body = await acme.call("GET", f"/v1/calendars/{acme.code}/league")
    assert status == 404 and body["errors"][0]["code"] == "CalendarNotFound"


async def test_events_are_created_read_replaced_patched_and_cancelled_by_id_or_external_id(acme: Merchant) -> None:
    await make_calendar(acme, "shows")
    status, tag = await acme.call("POST", f"/v1/calendars/{acme.code}/shows/tags", {"name": "Drama"})
    assert status == 201
    event = {
        "externalId": "show-1",
        "title": "Hamlet",
        "start": "2026-07-01T19:30:00",
        "end": "2026-07-01T22:00:00",
        "tags": [tag["id"]],
        "status": "Tentative",
        "transparency": "transparent",
        "class": "private",
        "categories": ["Theatre"],
        "organizer": {"name": "Box Office", "email": "box@example.com"},
        "attendees": [{"name": "A", "email": "a@example.com", "role": "req-participant", "rsvp": True}],
        "conference": "https://meet.example.com/hamlet",
        "url": "https://example.com/hamlet",
        "image": "https://example.com/hamlet.png",
        "color": "crimson",
        "recurrence": ["RRULE:FREQ=DAILY;COUNT=3", "EXDATE:20260702T193000"],
        "notifyBefore": 30,
    }
    status, created = await acme.call("POST", f"/v1/calendars/{acme.code}/shows/events", event)
    assert status == 201, created
    assert created["sequence"] == 0 and created["timezone"] == "Europe/London" and created["status"] == "tentative"
    assert created["tags"] == [tag["id"]] and created["attendees"][0]["role"] == "REQ-PARTICIPANT"
    for key in (created["id"], "show-1"):
        status, read = await acme.call("GET", f"/v1/calendars/{acme.code}/shows/events/{key}")
        assert status == 200 and read["id"] == created["id"]
    status, patched = await acme.call("PATCH", f"/v1/calendars/{acme.code}/shows/events/show-1", {"Title": "Macbeth"})
    assert status == 200 and patched["title"] == "Macbeth" and patched["sequence"] == 1
    assert patched["recurrence"] == created["recurrence"] and patched["organizer"] == created["organizer"]
    status, replaced = await acme.call(
        "PUT", f"/v1/calendars/{acme.code}/shows/events/{created['id']}", {"title": "Lear", "start": "2026-08-01"}
    )
    assert status == 200 and replaced["sequence"] == 2 and replaced["recurrence"] == []
    status, listed = await acme.call("GET", f"/v1/calendars/{acme.code}/shows/events?limit=10")
    assert status == 200 and [e["title"] for e in listed] == ["Lear"]
    status, cancelled = await acme.call("DELETE", f"/v1/calendars/{acme.code}/shows/events/show-1")
    assert status == 200 and cancelled["status"] == "cancelled" and cancelled["sequence"] == 3
    status, listed = await acme.call("GET", f"/v1/calendars/{acme.code}/shows/events")
    assert status == 200 and listed == []


VALID_EVENT = {"eventId": "v1", "title": "Valid", "start": "2026-09-01T10:00:00", "end": "2026-09-01T11:00:00"}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"recurrence": ["RRULE:FREQ=DAILY", "RRULE:FREQ=NEVER"]}, "recurrence[1]"),
        ({"recurrence": ["EXDATE:yesterday"]}, "recurrence[0]"),
        ({"end": "2026-09-01T09:00:00"}, "end"),
        ({"timezone": "Atlantis Standard Time"}, "timezone"),
        ({"timeZoneTag": "Europe/Paris"}, "timeZoneTag"),
        ({"tags": [{"externalId": "no-such-tag"}]}, "tags[0]"),
        ({"tags": ["3f2504e0-4f89-11d3-9a0c-0305e82c3301"]}, "tags[0]"),
        ({"title": "x" * 501}, "title"),
        ({"description": "x" * 20_001}, "description"),
        ({"location": "x" * 1001}, "location"),
        ({"start": "next tuesday"}, "start"),
        ({"notifyBefore": -5}, "notifyBefore"),
        ({"status": "maybe"}, "status"),
        ({"url": "javascript:alert(1)"}, "url"),
        ({"organizer": {"name": "No mail"}}, "organizer.email"),
        ({"attendees": [{"email": "not-an-email"}]}, "attendees.0.email"),
        ({"title": ""}, "title"),
    ],
)
async def test_invalid_event_fields_are_a_400_whose_reason_names_the_field(
    acme: Merchant, change: dict[str, Any], field: str
) -> None:
    status, _ = await acme.call("GET", f"/v1/calendars/{acme.code}/checks")
    if status == 404:
        await make_calendar(acme, "checks")
    status, body = await acme.call("POST", f"/v1/calendars/{acme.code}/checks/events", {**VALID_EVENT, **change})
    assert status == 400, body
    assert body["success"] is False and body["statusCode"] == 400
    assert body["errors"][0]["code"] == "InvalidRequestParameter"
    assert body["errors"][0]["reason"].startswith(f"{field}:"), body


async def test_invalid_subscription_fields_are_a_400_whose_reason_names_the_field(acme: Merchant) -> None:
    await make_calendar(acme, "subchecks")
    path = f"/v1/subscribe/{acme.code}/subchecks"
    for body, field in [
        ({"timeZoneId": "Mars Standard Time"}, "timeZoneId"),
        ({"calendarTags": [{"externalId": "nope"}]}, "calendarTags[0]"),
        ({"subscriptionMethod": "carrier-pigeon"}, "subscriptionMethod"),
        ({"subscriptionMethod": "google"}, "redirectTo"),
        ({"emailAddress": "nobody"}, "emailAddress"),
        ({"events": [{"title": "no id", "start": "2026-01-01"}]}, "events[0].eventId"),
        ({"events": [{"eventId": "e", "title": "t", "start": "2026-01-02", "end": "2026-01-01"}]}, "events[0].end"),
        ({"subscriberId": "x" * 300}, "subscriberId"),
    ]:
        status, answer = await acme.call("POST", path, {"userAgent": "Mozilla/5.0 (Windows NT 10.0)", **body})
        assert status == 400, (body, answer)
        assert answer["errors"][0]["reason"].startswith(f"{field}:"), (body, answer)
    status, answer = await acme.call("POST", path, raw='{"subscriberId": "a",}')
    assert status == 400 and answer["errors"][0]["code"] == "MalformedJson"
    assert "line 1 column" in answer["errors"][0]["reason"]


async def test_another_accounts_token_is_a_403_and_its_ids_are_404s(acme: Merchant, rival: Merchant) -> None:
    await make_calendar(acme, "private-league")
    status, event = await acme.call(
        "POST",
        f"/v1/calendars/{acme.code}/private-league/events",
        {"eventId": "p1", "title": "P", "start": "2026-01-01"},
    )
    status, sub = await acme.call(
        "POST", f"/v1/subscribe/{acme.code}/private-league", {"subscriberId": "s", "subscriptionMethod": "webcal"}
    )
    assert status == 200
    # The rival's token on the acme's paths: 403.
    for method, path in [
        ("GET", f"/v1/calendars/{acme.code}"),
        ("GET", f"/v1/calendars/{acme.code}/private-league/events/p1"),
        ("POST", f"/v1/subscribe/{acme.code}/private-league"),
        ("POST", f"/v1/webcal/{acme.code}/private-league"),
        ("POST", f"/v1/subscriptionevent/{acme.code}"),
        ("DELETE", f"/v1/subscription/{acme.code}/private-league"),
    ]:
        status, body = await rival.call(method, path, {})
        assert status == 403, (method, path, body)
        assert "private-league" not in str(body) and sub["subscriptionId"] not in str(body)
    # The acme's ids through the rival's own paths: 404, never the data.
    await make_calendar(rival, "private-league")
    for method, path, body in [
        ("GET", f"/v1/subscription/{sub['subscriptionId']}", None),
        ("GET", f"/v1/calendars/{rival.code}/private-league/events/{event['id']}", None),
        ("PUT", f"/v1/subscription/{rival.code}/private-league/{sub['subscriptionId']}", {"marketingAllowed": True}),
        ("DELETE", f"/v1/subscription/{rival.code}/private-league", {"id": sub["subscriptionId"]}),
        ("PATCH", f"/v1/calendars/{rival.code}/private-league/events/{event['id']}", {"title": "mine"}),
    ]:
        status, answer = await rival.call(method, path, body)
        assert status == 404, (method, path, answer)
        assert "subscriberId" not in str(answer) and "Valid" not in str(answer) and "P" != answer.get("title")
    status, answer = await rival.call(
        "POST", f"/v1/calendars/{rival.code}/private-league/events", {"title": "T", "start": "2026-01-01", "tags": []}
    )
    assert status == 201
    # A subscription event naming the acme's subscription is accepted but reaches nothing of theirs.
    status, _ = await rival.call(
        "POST",
        f"/v1/subscriptionevent/{rival.code}",
        {"event": {"eventId": "x", "title": "x", "start": "2026-01-01"}, "subscriptionIds": [sub["subscriptionId"]]},
    )
    assert status == 202
    status, details = await acme.call("GET", f"/v1/subscription/{sub['subscriptionId']}")
    assert status == 200 and details["isActive"] is True and "manualEvents" not in details
    status, body = await acme.call("GET", f"/v1/calendars/{acme.code}", token="not.a.jwt")
    assert status == 401


async def test_bodies_over_the_size_limit_are_refused_with_413(acme: Merchant) -> None:
    await make_calendar(acme, "big")
    huge = '{"eventId": "big", "title": "t", "start": "2026-01-01", "description": "' + "x" * (2 * 1024 * 1024) + '"}'
    status, body = await acme.call("POST", f"/v1/calendars/{acme.code}/big/events", raw=huge)
    assert status == 413, body
    assert body["statusCode"] == 413 and body["errors"][0]["code"] == "PayloadTooLarge"
