"""End to end: a merchant writes through ingest, RabbitMQ carries it, feed serves it over HTTP to
calendar parsers (ical.js, libical, vobject, recurring-ical-events, all agreeing)."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo

import aiohttp
import icalendar

from tests.e2e.feed.conftest import Merchant
from tests.tools.feed_parsers import parse_everywhere


def titles(body: bytes) -> list[str]:
    return sorted(str(e["SUMMARY"]) for e in icalendar.Calendar.from_ical(body).walk("VEVENT"))


def has(*wanted: str, without: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    return lambda status, body: (
        status == 200 and all(w.encode() in body for w in wanted) and not any(w.encode() in body for w in without)
    )


async def new_calendar(merchant: Merchant, **fields: Any) -> str:
    code = f"cal{uuid.uuid4().hex[:8]}"
    body = {"code": code, "name": "Hockey, 2026", "timezone": "America/New_York", "refreshInterval": "PT15M"}
    await merchant.call("POST", f"/v1/calendars/{merchant.code}", {**body, **fields}, want=201)
    return code


async def add_event(merchant: Merchant, cal: str, **fields: Any) -> dict[str, Any]:
    body = {"start": "2026-04-10T19:00:00", "end": "2026-04-10T21:30:00", **fields}
    created: dict[str, Any] = await merchant.call("POST", f"/v1/calendars/{merchant.code}/{cal}/events", body, want=201)
    return created


async def subscribe(merchant: Merchant, cal: str, **fields: Any) -> dict[str, Any]:
    body = {"subscriberId": f"fan-{uuid.uuid4().hex[:6]}", "subscriptionMethod": "webcal", **fields}
    answer: dict[str, Any] = await merchant.call("POST", f"/v1/subscribe/{merchant.code}/{cal}", body)
    return answer


async def test_every_filter_rule_and_the_subscribers_own_events(merchant: Merchant) -> None:
    cal = await new_calendar(merchant)
    base = f"/v1/calendars/{merchant.code}/{cal}"
    home = await merchant.call("POST", base + "/tags", {"name": "Home"}, want=201)
    away = await merchant.call("POST", base + "/tags", {"name": "Away", "externalId": "away"}, want=201)
    await add_event(merchant, cal, title="Home opener", externalId="g1", tags=[home["id"]])
    await add_event(merchant, cal, title="Road trip", externalId="g2", tags=[{"externalId": "away"}])
    east = await add_event(merchant, cal, title="East broadcast", externalId="g3", timeZoneTag="Eastern Standard Time")
    await add_event(merchant, cal, title="West broadcast", externalId="g4", timeZoneTag="Pacific Standard Time")
    assert away["id"]

    by_tag = await subscribe(merchant, cal, calendarTags=[{"internalId": home["id"]}])
    by_zone = await subscribe(merchant, cal, timeZoneId="Eastern Standard Time")
    included = await subscribe(merchant, cal, requestEventIds=[east["id"]], externalEventIds=["g2"])
    everyone = await subscribe(
        merchant,
        cal,
        events=[
            {
                "title": "My watch party",
                "eventId": "mine-1",
                "start": "2026-04-11T18:00:00",
                "end": "2026-04-11T20:00:00",
            }
        ],
    )
    expectations = {
        by_tag["subscriptionId"]: ["Home opener"],
        by_zone["subscriptionId"]: ["East broadcast", "Home opener", "Road trip"],
        included["subscriptionId"]: ["East broadcast", "Road trip"],
        everyone["subscriptionId"]: ["East broadcast", "Home opener", "My watch party", "Road trip", "West broadcast"],
    }
    for subscription_id, expected in expectations.items():
        _, body = await merchant.feed(f"/v1/webcal/{subscription_id}", has(*expected))
        assert titles(body) == expected

    # Exclusions arrive through an update of the subscription.
    await merchant.call(
        "PUT",
        f"/v1/subscription/{merchant.code}/{cal}/{everyone['subscriptionId']}",
        {"excludeExternalEventIds": ["g4"], "excludeRequestEventIds": [east["id"]]},
    )
    _, body = await merchant.feed(f"/v1/webcal/{everyone['subscriptionId']}", has(without=("West broadcast",)))
    assert titles(body) == ["Home opener", "My watch party", "Road trip"]

    # A subscription event reaches only the subscriptions it names.
    await merchant.call(
        "POST",
        f"/v1/subscriptionevent/{merchant.code}",
        {
            "event": {
                "title": "Meet the players",
                "eventId": "meet-1",
                "start": "2026-04-12T10:00:00",
                "end": "2026-04-12T11:00:00",
            },
            "subscriptionIds": [by_tag["subscriptionId"]],
        },
        want=202,
    )
    _, body = await merchant.feed(f"/v1/webcal/{by_tag['subscriptionId']}", has("Meet the players"))
    assert titles(body) == ["Home opener", "Meet the players"]
    _, body = await merchant.feed(f"/v1/webcal/{by_zone['subscriptionId']}", has("Home opener"))
    assert "Meet the players" not in titles(body)

    # The whole calendar, for an unprotected calendar, has no subscriber's own events.
    status, body = await merchant.feed(f"/v1/calendars/{merchant.code}/{cal}.ics", has("West broadcast"))
    assert status == 200
    assert titles(body) == ["East broadcast", "Home opener", "Road trip", "West broadcast"]
    assert (await merchant.feed(f"/v1/webcal/{uuid.uuid4()}", lambda s, b: s == 404))[0] == 404


async def test_updates_cancellations_and_recurrence_across_dst_in_several_zones(merchant: Merchant) -> None:
    cal = await new_calendar(merchant)
    first = datetime(2026, 1, 7, 18, 0)
    zones = {
        "W. Europe Standard Time": "Europe/Berlin",
        "America/New_York": "America/New_York",
        "AUS Eastern Standard Time": "Australia/Sydney",
    }
    created = {}
    for given in zones:
        created[given] = await add_event(
            merchant,
            cal,
            title=f"Practice {given}",
            start=first.isoformat(),
            end=(first + timedelta(hours=1)).isoformat(),
            timezone=given,
            notifyBefore=15,
            recurrence=["RRULE:FREQ=WEEKLY;COUNT=40"],
        )
    gala = await add_event(merchant, cal, title="Gala", externalId="gala")
    sub = await subscribe(merchant, cal)
    path = f"/v1/webcal/{sub['subscriptionId']}"
    _, body = await merchant.feed(path, has("Gala", *(f"Practice {z}" for z in zones)))
    seen = parse_everywhere(body)
    for given, iana in zones.items():
        instants = [
            (first + timedelta(weeks=w)).replace(tzinfo=ZoneInfo(iana)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            for w in range(40)
        ]
        assert seen[created[given]["id"]]["occurrences"] == instants
    assert b"TRIGGER:-PT15M" in body

    response_etag = await etag_of(merchant, path)
    await merchant.call("PATCH", f"/v1/calendars/{merchant.code}/{cal}/events/gala", {"title": "Gala (moved)"})
    _, body = await merchant.feed(path, has("Gala (moved)"))
    gala_event = next(e for e in icalendar.Calendar.from_ical(body).walk("VEVENT") if e["UID"] == gala["id"])
    assert gala_event["SEQUENCE"] >= 1
    assert await etag_of(merchant, path) != response_etag

    await merchant.call("DELETE", f"/v1/calendars/{merchant.code}/{cal}/events/gala")
    _, body = await merchant.feed(path, lambda s, b: b"STATUS:CANCELLED" in b)
    gala_event = next(e for e in icalendar.Calendar.from_ical(body).walk("VEVENT") if e["UID"] == gala["id"])
    assert gala_event["STATUS"] == "CANCELLED"


async def etag_of(merchant: Merchant, path: str) -> str:
    async with merchant.session.get(merchant.stack.url("feed") + path) as response:
        assert response.status == 200
        etag = response.headers["ETag"]
    async with merchant.session.get(merchant.stack.url("feed") + path, headers={"If-None-Match": etag}) as again:
        assert again.status == 304
    return etag


async def test_protected_calendars_and_deactivated_subscriptions(merchant: Merchant) -> None:
    cal = await new_calendar(merchant, protected=True)
    await add_event(merchant, cal, title="Members only")
    sub = await subscribe(merchant, cal)
    url = urlsplit(sub["subscriptionUrl"])
    assert url.scheme == "webcal" and url.username and url.password
    path = f"/v1/webcal/{sub['subscriptionId']}"
    status, _ = await merchant.feed(path, lambda s, b: s == 401)
    assert status == 401
    credentials = {"Authorization": aiohttp.encode_basic_auth(unquote(url.username), unquote(url.password))}
    _, body = await merchant.feed(path, has("Members only"), headers=credentials)
    assert titles(body) == ["Members only"]
    wrong = {"Authorization": aiohttp.encode_basic_auth(unquote(url.username), "not-the-password")}
    assert (await merchant.feed(path, lambda s, b: True, headers=wrong))[0] == 401
    assert (await merchant.feed(f"/v1/calendars/{merchant.code}/{cal}.ics", lambda s, b: s == 403))[0] == 403

    open_cal = await new_calendar(merchant)
    await add_event(merchant, open_cal, title="Before the end")
    leaving = await subscribe(merchant, open_cal)
    staying = await subscribe(merchant, open_cal)
    leaving_path = f"/v1/webcal/{leaving['subscriptionId']}"
    await merchant.feed(leaving_path, has("Before the end"))
    await merchant.call("DELETE", f"/v1/subscription/{merchant.code}/{open_cal}", {"id": leaving["subscriptionId"]})
    await merchant.feed(leaving_path, lambda s, b: s == 200)
    await add_event(merchant, open_cal, title="After the end", start="2026-05-01T10:00:00", end="2026-05-01T11:00:00")
    await merchant.feed(f"/v1/webcal/{staying['subscriptionId']}", has("After the end"))
    _, body = await merchant.feed(leaving_path, has("Before the end"))
    assert titles(body) == ["Before the end"]


async def test_the_ics_route_accepts_an_api_key_made_by_the_admin_cli(merchant: Merchant) -> None:
    key = (await merchant.stack.admin("create-api-key", merchant.code))["apiKey"]
    request = {
        "action": "createcalendar",
        "event-title": "Launch",
        "event-description": "Doors at 7",
        "event-location": "Main hall",
        "event-start-datetime": "2026-06-01T19:00:00",
        "event-end-datetime": "2026-06-01T22:00:00",
        "event-timezone": "Europe/Paris",
    }
    import asyncio
    import time

    deadline = time.monotonic() + 15
    while True:
        async with merchant.session.post(
            merchant.stack.url("feed") + "/v1/ics", json=request, headers={"x-api-key": key}
        ) as response:
            status, body = response.status, await response.read()
        if status == 200 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    assert status == 200, body
    assert next(iter(parse_everywhere(body).values()))["occurrences"] == ["2026-06-01T17:00:00Z"]
    assert hashlib.sha256(body).hexdigest()
