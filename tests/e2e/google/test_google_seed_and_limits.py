"""Seed 002's Google examples against the Google double, Google's limits per user (rate limits, expired
tokens) and deactivation on our side (pushing stops, the grant is revoked with the last subscription)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.doubles.google import GoogleDouble
from tests.e2e.ingest.test_seed_api import SEED_CREATE_GOOGLE, SEED_CREATE_WITH_EVENTS

from .conftest import Shop, calendar_of, eventually, new_code, titles

pytestmark = pytest.mark.e2e


async def simple_calendar(shop: Shop, *tags: str) -> tuple[str, dict[str, str]]:
    code = new_code()
    await shop.call("POST", "ingest", f"/v1/calendars/{shop.code}", {"code": code, "name": "Fixtures"}, 201)
    ids = {}
    for name in tags:
        tag = await shop.call("POST", "ingest", f"/v1/calendars/{shop.code}/{code}/tags", {"name": name}, 201)
        ids[name] = tag["id"]
    event = {"eventId": "k1", "title": "Kick-off", "start": "2026-12-05T15:00:00", "end": "2026-12-05T17:00:00"}
    await shop.call("POST", "ingest", f"/v1/calendars/{shop.code}/{code}/events", event, 201)
    return code, ids


async def test_the_seeds_google_examples_create_then_find_the_existing_subscription(
    shop: Shop, google: GoogleDouble
) -> None:
    code, tags = await simple_calendar(shop, "All Teams", "Team B")
    seed = json.loads(SEED_CREATE_GOOGLE)
    seed["calendarTags"] = [{"internalId": tags["All Teams"]}, {"internalId": tags["Team B"]}]
    seed["redirectTo"] = shop.page
    created = await shop.call("POST", "ingest", f"/v2/subscribe/{shop.code}/{code}", seed)
    assert set(created) == {
        "success",
        "statusCode",
        "errors",
        "subscriptionType",
        "subscriptionId",
        "subscriberId",
        "redirectTo",
    }
    assert created["statusCode"] == 200 and created["errors"] == []
    assert created["subscriptionType"] == "google" and created["subscriberId"] == "jsmith"
    result = await shop.callback(await google.consent(created["redirectTo"], "jsmith.seed@gmail.test"))
    assert result["success"] == "true" and result["subscriptionId"] == created["subscriptionId"]
    path = f"/v1/subscription/{created['subscriptionId']}"
    details = await eventually(lambda: _active(shop, path))
    assert details["deviceName"] == "Android Phone"

    # The second example: same subscriber, Android user agent -> the existing Google subscription,
    # no second consent, and its manual event lands in the same Google calendar.
    again = await shop.call("POST", "ingest", f"/v1/subscribe/{shop.code}/{code}", json.loads(SEED_CREATE_WITH_EVENTS))
    assert again == {
        "success": True,
        "statusCode": 200,
        "errors": [],
        "subscriptionType": "google",
        "subscriptionId": created["subscriptionId"],
        "subscriberId": "jsmith",
        "isNewSubscription": False,
    }
    calendar = calendar_of(google, "jsmith.seed@gmail.test")
    await eventually(lambda: "The Lion King" in titles(calendar), timeout=20)
    lion = next(e for e in calendar.live_events() if e["summary"] == "The Lion King")
    assert lion["start"] == {"dateTime": "2016-06-04T19:00:00", "timeZone": "Australia/Sydney"}
    assert lion["location"] == "13 Campbell St, Haymarket NSW 2000"


async def test_a_rate_limited_user_is_retried_with_backoff_while_other_users_go_on(
    shop: Shop, google: GoogleDouble
) -> None:
    code, _ = await simple_calendar(shop)
    await shop.subscribe_google(code, "slow")
    await shop.subscribe_google(code, "fast")
    slow, fast = calendar_of(google, "slow@gmail.test"), calendar_of(google, "fast@gmail.test")
    google.fail_next("slow@gmail.test", 403, "rateLimitExceeded", times=2)
    google.fail_next("slow@gmail.test", 429)
    calls_before = google.calls["calendar.events.update"]
    changed = time.monotonic()
    await shop.call("PATCH", "ingest", f"/v1/calendars/{shop.code}/{code}/events/k1", {"title": "Kick-off 4pm"})
    await eventually(lambda: "Kick-off 4pm" in titles(fast), timeout=20)
    fast_at = time.monotonic() - changed
    await eventually(lambda: "Kick-off 4pm" in titles(slow), timeout=20)
    slow_at = time.monotonic() - changed
    assert fast_at < slow_at  # the limited user waited alone
    assert google.calls["calendar.events.update"] - calls_before == 5  # 3 refused + slow's + fast's


async def test_an_expired_access_token_is_refreshed_once_and_the_push_goes_through(
    shop: Shop, google: GoogleDouble
) -> None:
    code, _ = await simple_calendar(shop)
    await shop.subscribe_google(code, "tok")
    calendar = calendar_of(google, "tok@gmail.test")
    refreshes = google.calls["oauth.token"]
    google.expire_tokens("tok@gmail.test")
    await shop.call("PATCH", "ingest", f"/v1/calendars/{shop.code}/{code}/events/k1", {"title": "Refreshed"})
    await eventually(lambda: "Refreshed" in titles(calendar), timeout=20)
    assert google.calls["oauth.token"] - refreshes == 1


async def test_deactivating_on_our_side_stops_pushing_and_revokes_with_the_last_subscription(
    shop: Shop, google: GoogleDouble
) -> None:
    first, _ = await simple_calendar(shop)
    second, _ = await simple_calendar(shop)
    await shop.call(
        "POST", "ingest", f"/v1/subscribe/{shop.code}/{first}", {"subscriberId": "kim", "subscriptionMethod": "WebCal"}
    )
    await shop.subscribe_google(first, "kim")
    await shop.subscribe_google(second, "kim")
    cal_one, cal_two = google.calendars_of("kim@gmail.test")  # in the order they were made

    deactivated = await shop.call("DELETE", "ingest", f"/v1/subscription/{shop.code}/{first}", {"username": "kim"})
    assert len(deactivated["subscriptions"]) == 2  # webcal and Google of one username
    assert all(s["isActive"] is False for s in deactivated["subscriptions"])
    await shop.call("PATCH", "ingest", f"/v1/calendars/{shop.code}/{first}/events/k1", {"title": "After the end"})
    await shop.call("PATCH", "ingest", f"/v1/calendars/{shop.code}/{second}/events/k1", {"title": "Still here"})
    await eventually(lambda: "Still here" in titles(cal_two), timeout=20)
    assert "After the end" not in titles(cal_one) and titles(cal_one) == {"Kick-off"}  # left as it was
    assert "kim@gmail.test" not in google.revoked  # the second subscription still needs the grant

    await shop.call("DELETE", "ingest", f"/v1/subscription/{shop.code}/{second}", {"username": "kim"})
    await eventually(lambda: "kim@gmail.test" in google.revoked, timeout=20)
    assert len(google.calendars_of("kim@gmail.test")) == 2  # we never delete the user's calendars


async def _active(shop: Shop, path: str) -> dict[str, Any] | None:
    details: dict[str, Any] = await shop.call("GET", "ingest", path)
    return details if details["isActive"] else None
