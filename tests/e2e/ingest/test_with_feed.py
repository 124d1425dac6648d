"""What ingest publishes is what the feed serves: the real feed service consumes ingest's messages."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote

import aiohttp
import pytest

from shared.testing import Stack, basic_auth

from .conftest import Merchant

pytestmark = pytest.mark.e2e


async def feed_text(
    http: aiohttp.ClientSession,
    url: str,
    ready: Callable[[str], bool],
    *,
    auth: Credentials | None = None,
    timeout: float = 20.0,
) -> str:
    """Poll the feed until `ready(body)` (the projection is eventually consistent)."""
    deadline = time.monotonic() + timeout
    body = ""
    while time.monotonic() < deadline:
        async with http.get(url, headers=authorization(auth)) as response:
            body = await response.text()
            if response.status == 200 and ready(body):
                return body
        await asyncio.sleep(0.2)
    raise AssertionError(f"feed at {url} never got ready; last body:\n{body[:2000]}")


@dataclass(frozen=True)
class Credentials:
    """The user and password a webcal URL carries (a calendar app sends them as HTTP Basic)."""

    login: str
    password: str


def authorization(auth: Credentials | None) -> dict[str, str]:
    return {"Authorization": basic_auth(auth.login, auth.password)} if auth else {}


def http_url(webcal: str) -> tuple[str, Credentials | None]:
    match = re.fullmatch(r"webcal://(?:([^:@/]+):([^@/]+)@)?(.+)", webcal)
    assert match, webcal
    user, password, rest = match.groups()
    auth = Credentials(unquote(user), unquote(password)) if user and password else None
    return f"http://{rest}", auth


async def test_a_tag_filtered_subscription_gets_its_events_manual_events_and_subscription_events(
    acme: Merchant, stack: Stack, http: aiohttp.ClientSession
) -> None:
    await stack.start("feed")
    calendar = {"code": "fed", "name": "Fed", "timezone": "AUS Eastern Standard Time"}
    assert (await acme.call("POST", f"/v1/calendars/{acme.code}", calendar))[0] == 201
    for external in ("TeamA", "TeamB"):
        status, _ = await acme.call(
            "POST", f"/v1/calendars/{acme.code}/fed/tags", {"name": external, "externalId": external}
        )
        assert status == 201
    for title, tag in (("Alpha game", "TeamA"), ("Beta game", "TeamB")):
        event = {"eventId": title, "title": title, "start": "2026-12-05T19:00:00", "tags": [{"externalId": tag}]}
        assert (await acme.call("POST", f"/v1/calendars/{acme.code}/fed/events", event))[0] == 201
    body = {
        "subscriberId": "fan",
        "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15",
        "calendarTags": [{"externalId": "TeamA"}],
        "events": [{"eventId": "booking-1", "title": "Your seats", "start": "2026-12-06T10:00:00"}],
    }
    status, created = await acme.call("POST", f"/v1/subscribe/{acme.code}/fed", body)
    assert status == 200, created
    url, _ = http_url(created["subscriptionUrl"])
    text = await feed_text(http, url, lambda b: "Alpha game" in b and "Your seats" in b)
    assert "Beta game" not in text
    assert "DTSTART;TZID=Australia/Sydney:20261205T190000" in text

    event = {"eventId": "note-1", "title": "Gates open early", "start": "2026-12-05T17:00:00"}
    status, _ = await acme.call(
        "POST", f"/v1/subscriptionevent/{acme.code}", {"event": event, "subscriptionIds": [created["subscriptionId"]]}
    )
    assert status == 202
    await feed_text(http, url, lambda b: "Gates open early" in b)

    status, _ = await acme.call("DELETE", f"/v1/calendars/{acme.code}/fed/events/Alpha game")
    assert status == 200
    await feed_text(http, url, lambda b: "STATUS:CANCELLED" in b or "Alpha game" not in b)


async def test_the_feed_accepts_the_protected_webcal_urls_credentials_and_refuses_others(
    acme: Merchant, stack: Stack, http: aiohttp.ClientSession
) -> None:
    if "feed" not in stack.processes:
        await stack.start("feed")
    status, _ = await acme.call(
        "POST", f"/v1/calendars/{acme.code}", {"code": "locked", "name": "L", "protected": True}
    )
    assert status == 201
    status, webcal = await acme.call("POST", f"/v1/webcal/{acme.code}/locked", {"UserName": "vip@example.com"})
    assert status == 200, webcal
    url, auth = http_url(webcal)
    assert auth is not None and auth.login == "vip@example.com"
    await feed_text(http, url, lambda b: "BEGIN:VCALENDAR" in b, auth=auth)
    async with http.get(url, headers=authorization(Credentials("vip@example.com", "guessed"))) as response:
        assert response.status == 401
    async with http.get(url) as response:
        assert response.status == 401


async def feed_status(http: aiohttp.ClientSession, url: str, auth: Credentials | None, want: int) -> int:
    """Poll until the feed answers `want` (or time runs out); returns the last status."""
    deadline = time.monotonic() + 20
    while True:
        async with http.get(url, headers=authorization(auth)) as response:
            if response.status == want or time.monotonic() > deadline:
                return response.status
        await asyncio.sleep(0.2)


async def test_rotated_credentials_end_the_old_ones_at_the_feed_and_resubscribing_keeps_the_new(
    acme: Merchant, stack: Stack, http: aiohttp.ClientSession
) -> None:
    if "feed" not in stack.processes:
        await stack.start("feed")
    calendar = {"code": "rotating", "name": "R", "protected": True}
    assert (await acme.call("POST", f"/v1/calendars/{acme.code}", calendar))[0] == 201
    subscribe = {"subscriberId": "rota", "userAgent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)"}
    status, first = await acme.call("POST", f"/v1/subscribe/{acme.code}/rotating", subscribe)
    assert status == 200, first
    url, old = http_url(first["subscriptionUrl"])
    assert await feed_status(http, url, old, 200) == 200
    status, again = await acme.call("POST", f"/v1/subscribe/{acme.code}/rotating", subscribe)
    assert again["subscriptionUrl"] == first["subscriptionUrl"]
    assert await feed_status(http, url, old, 200) == 200  # re-subscribing did not lock the subscriber out

    path = f"/v1/subscription/{acme.code}/rotating/{first['subscriptionId']}/rotate-credentials"
    status, rotated = await acme.call("POST", path)
    assert status == 200, rotated
    new_url, new = http_url(rotated["subscriptionUrl"])
    assert new_url == url and new is not None and old is not None and new.password != old.password
    assert await feed_status(http, url, old, 401) == 401
    assert await feed_status(http, url, new, 200) == 200
    status, later = await acme.call("POST", f"/v1/subscribe/{acme.code}/rotating", subscribe)
    assert later["subscriptionUrl"] == rotated["subscriptionUrl"]


async def test_a_subscription_from_before_protection_is_refused_by_the_feed_until_it_has_credentials(
    acme: Merchant, stack: Stack, http: aiohttp.ClientSession
) -> None:
    if "feed" not in stack.processes:
        await stack.start("feed")
    assert (await acme.call("POST", f"/v1/calendars/{acme.code}", {"code": "closing", "name": "C"}))[0] == 201
    event = {"eventId": "e1", "title": "Soon private", "start": "2026-12-05T19:00:00"}
    assert (await acme.call("POST", f"/v1/calendars/{acme.code}/closing/events", event))[0] == 201
    subscribe = {"subscriberId": "early", "subscriptionMethod": "webcal"}
    status, early = await acme.call("POST", f"/v1/subscribe/{acme.code}/closing", subscribe)
    url, auth = http_url(early["subscriptionUrl"])
    assert auth is None
    await feed_text(http, url, lambda b: "Soon private" in b)

    assert (await acme.call("PUT", f"/v1/calendars/{acme.code}/closing", {"protected": True}))[0] == 200
    assert await feed_status(http, url, None, 401) == 401
    assert await feed_status(http, url, Credentials("early", ""), 401) == 401
    status, again = await acme.call("POST", f"/v1/subscribe/{acme.code}/closing", subscribe)
    assert status == 200, again
    new_url, new = http_url(again["subscriptionUrl"])
    assert new_url == url and new is not None
    await feed_text(http, url, lambda b: "Soon private" in b, auth=new)
