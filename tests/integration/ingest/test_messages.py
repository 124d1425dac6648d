"""Each kind of write commits its state and publishes exactly the expected messages, once."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import asyncpg

from shared.amqp import Publisher
from shared.lifecycle import AMQP, NAMES
from shared.messages import AccountCreated, make_envelope, parse_envelope
from tests.integration.ingest.conftest import Harness, Merchant


async def _post(h: Harness, m: Merchant, path: str, body: Any, status: int = 201) -> Any:
    response = await h.client.post(path, json=body, headers=m.headers)
    payload = await response.json() if response.content_type == "application/json" else await response.text()
    assert response.status == status, payload
    return payload


async def _calendar(h: Harness, m: Merchant, **extra: Any) -> dict[str, Any]:
    body = {"code": "season", "name": "Season 2026", "timezone": "Eastern Standard Time", **extra}
    return await _post(h, m, f"/v1/calendars/{m.code}", body)


def _types(messages: list[dict[str, Any]]) -> list[str]:
    return [m["type"] for m in messages]


async def test_catalog_writes_publish_one_message_each_with_the_state_after_the_change(harness: Harness) -> None:
    h, m = harness, harness.merchant()
    calendar = await _calendar(h, m)
    tag = await _post(h, m, f"/v1/calendars/{m.code}/season/tags", {"name": "Team A", "externalId": "TeamA"})
    event = await _post(
        h,
        m,
        f"/v1/calendars/{m.code}/season/events",
        {
            "eventId": "game-1",
            "title": "A vs B",
            "start": "2026-06-04T19:00:00+10",
            "end": "2026-06-04T21:00:00",
            "tags": [{"externalId": "TeamA"}],
            "timeZoneTag": "eastern standard time",
        },
    )
    received = await h.messages.wait_for(3)
    assert _types(received) == ["calendar.created", "tag.created", "event.created"]
    for message in received:
        assert parse_envelope(json.dumps(message).encode()).account_id == m.account_id
    assert received[0]["data"]["calendarId"] == calendar["id"]
    assert received[0]["data"]["timezone"] == "America/New_York"
    assert received[1]["data"]["tagId"] == tag["id"]
    data = received[2]["data"]
    assert data["eventId"] == event["id"] and data["externalId"] == "game-1"
    # The offset in the string is ignored: wall-clock time in the calendar's zone.
    assert (data["start"], data["end"], data["timezone"]) == (
        "2026-06-04T19:00:00",
        "2026-06-04T21:00:00",
        "America/New_York",
    )
    assert data["tagIds"] == [tag["id"]]
    assert data["timeZoneTag"] == "Eastern Standard Time"
    assert data["sequence"] == 0 and data["subscriptionIds"] == []


async def test_posting_an_event_id_again_updates_it_and_an_identical_post_publishes_nothing(harness: Harness) -> None:
    h, m = harness, harness.merchant()
    await _calendar(h, m)
    body = {"eventId": "e1", "title": "First", "start": "2026-01-01", "allDayEvent": True}
    first = await _post(h, m, f"/v1/calendars/{m.code}/season/events", body)
    second = await _post(h, m, f"/v1/calendars/{m.code}/season/events", {**body, "title": "Second"}, status=200)
    third = await _post(h, m, f"/v1/calendars/{m.code}/season/events", {**body, "title": "Second"}, status=200)
    assert first["id"] == second["id"] == third["id"]
    assert (first["sequence"], second["sequence"], third["sequence"]) == (0, 1, 1)
    received = await h.messages.wait_for(3)
    assert _types(received) == ["calendar.created", "event.created", "event.updated"]
    assert received[2]["data"]["title"] == "Second" and received[2]["data"]["sequence"] == 1
    assert (received[2]["data"]["start"], received[2]["data"]["end"]) == ("2026-01-01", "2026-01-01")


async def test_deleting_an_event_cancels_it_with_a_higher_sequence(harness: Harness) -> None:
    h, m = harness, harness.merchant()
    await _calendar(h, m)
    await _post(h, m, f"/v1/calendars/{m.code}/season/events", {"eventId": "e1", "title": "T", "start": "2026-02-01"})
    response = await h.client.delete(f"/v1/calendars/{m.code}/season/events/e1", headers=m.headers)
    assert response.status == 200
    received = await h.messages.wait_for(3)
    assert _types(received) == ["calendar.created", "event.created", "event.deleted"]
    deleted = received[2]["data"]
    assert deleted["status"] == "cancelled" and deleted["deleted"] is True and deleted["sequence"] == 1
    gone = await h.client.get(f"/v1/calendars/{m.code}/season/events/e1", headers=m.headers)
    assert gone.status == 404


async def test_subscription_lifecycle_publishes_created_updated_and_deactivated_with_webhook_fields(
    harness: Harness,
) -> None:
    h, m = harness, harness.merchant()
    await _calendar(h, m)
    tag = await _post(h, m, f"/v1/calendars/{m.code}/season/tags", {"name": "Team A", "externalId": "TeamA"})
    game = {"eventId": "90712", "title": "G", "start": "2026-03-01"}
    await _post(h, m, f"/v1/calendars/{m.code}/season/events", game)
    body = {
        "calendarTags": [{"externalId": "TeamA"}],
        "timeZoneId": "Eastern Standard Time",
        "emailAddress": "jsmith@example.com",
        "additionalOptIn": False,
        "marketingAllowed": True,
        "urlReferrer": "http://m.facebook.com/",
        "ipAddress": "64.64.64.64",
        "userAgent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15",
        "utmSource": "Facebook",
        "utmMedium": "Display",
        "utmCampaign": "2016",
        "utmContent": "Mobile_320x50",
        "requestEventIds": [str(uuid.uuid4())],
        "externalEventIds": ["90712", "37818"],
        "subscriberId": "jsmith",
    }
    created = await _post(h, m, f"/v1/subscribe/{m.code}/season", body, status=200)
    assert created["subscriptionType"] == "webcal" and created["isNewSubscription"] is True
    assert created["subscriptionUrl"] == f"webcal://feeds.example.test:8443/v1/webcal/{created['subscriptionId']}"
    again = await _post(h, m, f"/v2/subscribe/{m.code}/season", {**body, "utmSource": "Email"}, status=200)
    assert again["subscriptionId"] == created["subscriptionId"] and again["isNewSubscription"] is False
    response = await h.client.delete(
        f"/v1/subscription/{m.code}/season", json={"id": created["subscriptionId"]}, headers=m.headers
    )
    assert response.status == 200, await response.text()
    received = await h.messages.wait_for(6)
    assert _types(received)[3:] == ["subscription.created", "subscription.updated", "subscription.deactivated"]
    sub = received[3]["data"]
    assert sub["subscriptionId"] == created["subscriptionId"]
    assert sub["merchantName"] == m.code  # no account.created seen yet: the code stands in
    assert sub["calendarTitle"] == "Season 2026" and sub["calendarCode"] == "season"
    assert sub["calendarTags"] == [{"tagId": tag["id"], "tagText": "Team A", "externalId": "TeamA"}]
    assert sub["timeZoneTag"] == "Eastern Standard Time"
    assert sub["externalEventIds"] == ["90712"] and sub["requestEventIds"] == []  # unmatched ids ignored
    assert sub["deviceName"] == "iPhone" and sub["source"] == "m.facebook.com"
    assert (sub["utmSource"], sub["ipAddress"], sub["marketingAllowed"]) == ("Facebook", "64.64.64.64", True)
    assert sub["actionType"] == "SubscriptionViaWebApi" and sub["active"] is True
    assert received[4]["data"]["utmSource"] == "Email" and received[4]["data"]["version"] == 2
    gone = received[5]["data"]
    assert gone["active"] is False and gone["actionType"] == "DeactivatedById" and gone["deactivatedAt"]


async def test_subscription_event_is_published_once_for_the_accounts_active_subscriptions_only(
    harness: Harness,
) -> None:
    h, m, other = harness, harness.merchant(), harness.merchant()
    await _calendar(h, m)
    await _calendar(h, other)
    mine = await _post(
        h, m, f"/v1/subscribe/{m.code}/season", {"subscriberId": "a", "subscriptionMethod": "webcal"}, status=200
    )
    theirs = await _post(
        h,
        other,
        f"/v1/subscribe/{other.code}/season",
        {"subscriberId": "b", "subscriptionMethod": "webcal"},
        status=200,
    )
    await h.messages.wait_for(4)
    h.messages.clear()
    body = {
        "event": {
            "eventId": "my event",
            "title": "Title of my event",
            "start": "2018-10-24T16:33:00",
            "end": "2018-10-24T17:33:00",
            "timezone": "AUS Eastern Standard Time",
            "notifyBefore": "15",
        },
        "subscriptionIds": [mine["subscriptionId"], theirs["subscriptionId"], str(uuid.uuid4())],
    }
    response = await h.client.post(f"/v1/subscriptionevent/{m.code}", json=body, headers=m.headers)
    assert response.status == 202
    received = await h.messages.wait_for(1)
    assert _types(received) == ["subscription_event.accepted"]
    data = received[0]["data"]
    assert data["subscriptionIds"] == [mine["subscriptionId"]]
    assert data["event"]["timezone"] == "Australia/Sydney" and data["event"]["notifyBefore"] == 15
    assert data["event"]["subscriptionIds"] == [mine["subscriptionId"]]


async def test_account_created_from_auth_gives_subscription_messages_the_merchant_name(harness: Harness) -> None:
    h, m = harness, harness.merchant()
    envelope = make_envelope(
        "account.created", AccountCreated(account_id=m.account_id, account_code=m.code, name="Acme Sports")
    )
    # Published as auth's relay would, to the real exchange; the ingest consumer stores it.
    app = h.client.server.app
    publisher = Publisher(app[AMQP], app[NAMES])
    await publisher.publish(envelope.to_bytes(), envelope.type, str(envelope.id))
    await publisher.close()
    conn = await asyncpg.connect(h.database_url)
    try:
        for _ in range(200):
            if await conn.fetchval("SELECT name FROM ingest.accounts WHERE account_id = $1", m.account_id):
                break
            await asyncio.sleep(0.02)
    finally:
        await conn.close()
    await _calendar(h, m)
    await _post(
        h, m, f"/v1/subscribe/{m.code}/season", {"subscriberId": "x", "subscriptionMethod": "webcal"}, status=200
    )
    received = await h.messages.wait_for(3)
    assert h.messages.of("subscription.created")[0]["data"]["merchantName"] == "Acme Sports"
    assert len(received) == 3


async def test_calendar_update_and_delete_and_tag_rename_publish_once_each(harness: Harness) -> None:
    h, m = harness, harness.merchant()
    await _calendar(h, m)
    await _post(h, m, f"/v1/calendars/{m.code}/season/tags", {"name": "Team A", "externalId": "TeamA"})
    await _post(h, m, f"/v1/calendars/{m.code}/season/tags", {"name": "Team A!", "externalId": "TeamA"}, status=200)
    await _post(h, m, f"/v1/calendars/{m.code}/season/tags", {"name": "Team A!", "externalId": "TeamA"}, status=200)
    response = await h.client.put(f"/v1/calendars/{m.code}/season", json={"protected": True}, headers=m.headers)
    assert response.status == 200
    response = await h.client.put(f"/v1/calendars/{m.code}/season", json={"protected": True}, headers=m.headers)
    assert response.status == 200  # no change: no message
    response = await h.client.delete(f"/v1/calendars/{m.code}/season", headers=m.headers)
    assert response.status == 204
    received = await h.messages.wait_for(5)
    assert _types(received) == [
        "calendar.created",
        "tag.created",
        "tag.updated",
        "calendar.updated",
        "calendar.deleted",
    ]
    assert received[2]["data"]["name"] == "Team A!" and received[2]["data"]["version"] == 2
    assert received[3]["data"]["protected"] is True and received[3]["data"]["version"] == 2
    assert received[4]["data"]["version"] == 3 and received[4]["data"]["code"] == "season"


async def test_a_subscription_event_posted_again_is_updated_and_reaches_the_union_of_subscriptions(
    harness: Harness,
) -> None:
    h, m = harness, harness.merchant()
    await _calendar(h, m)
    first = await _post(
        h, m, f"/v1/subscribe/{m.code}/season", {"subscriberId": "a", "subscriptionMethod": "webcal"}, status=200
    )
    second = await _post(
        h, m, f"/v1/subscribe/{m.code}/season", {"subscriberId": "b", "subscriptionMethod": "webcal"}, status=200
    )
    await h.messages.wait_for(3)
    h.messages.clear()
    event = {"eventId": "promo", "title": "Promo", "start": "2026-05-01T09:00:00"}
    for body in (
        {"event": event, "subscriptionIds": [first["subscriptionId"]]},
        {"event": {**event, "title": "Promo (moved)"}, "subscriptionIds": [second["subscriptionId"]]},
        {"event": {**event, "title": "Promo (moved)"}, "subscriptionIds": [second["subscriptionId"]]},
    ):
        response = await h.client.post(f"/v1/subscriptionevent/{m.code}", json=body, headers=m.headers)
        assert response.status == 202
    received = await h.messages.wait_for(2)
    assert _types(received) == ["subscription_event.accepted", "subscription_event.accepted"]
    one, two = (r["data"] for r in received)
    assert one["event"]["eventId"] == two["event"]["eventId"]
    assert (one["event"]["sequence"], two["event"]["sequence"]) == (0, 1)
    assert two["event"]["title"] == "Promo (moved)"
    assert two["subscriptionIds"] == [first["subscriptionId"], second["subscriptionId"]]


async def test_update_and_the_unsubscribe_page_publish_updated_then_deactivated_with_the_reason(
    harness: Harness,
) -> None:
    h, m = harness, harness.merchant()
    await _calendar(h, m)
    created = await _post(
        h, m, f"/v1/subscribe/{m.code}/season", {"subscriberId": "a", "subscriptionMethod": "webcal"}, status=200
    )
    sid = created["subscriptionId"]
    response = await h.client.put(
        f"/v1/subscription/{m.code}/season/{sid}", json={"marketingAllowed": True}, headers=m.headers
    )
    assert response.status == 200
    page = await h.client.get(f"/v1/unsubscribe/{sid}")
    assert page.status == 200 and "Unsubscribe from Season 2026?" in await page.text()
    assert "script-src" not in page.headers["Content-Security-Policy"]  # default-src 'none' forbids script
    done = await h.client.post(f"/v1/unsubscribe/{sid}", data={"reason": "Another reason", "comment": "bye"})
    assert done.status == 200 and "You have been unsubscribed" in await done.text()
    again = await h.client.post(f"/v1/unsubscribe/{sid}", data={"reason": "Another reason"})
    assert "already unsubscribed" in await again.text()
    received = await h.messages.wait_for(4)
    assert _types(received) == [
        "calendar.created",
        "subscription.created",
        "subscription.updated",
        "subscription.deactivated",
    ]
    assert received[2]["data"]["marketingAllowed"] is True
    gone = received[3]["data"]
    assert gone["actionType"] == "UnsubscribeUserAction" and gone["unsubscribeReason"] == "Another reason - bye"
    assert gone["active"] is False and gone["merchantName"] == m.code


async def test_a_tag_is_renamed_by_id_or_external_id_and_deleted_only_when_nothing_names_it(harness: Harness) -> None:
    h, m = harness, harness.merchant()
    await _calendar(h, m)
    tags = f"/v1/calendars/{m.code}/season/tags"
    used = await _post(h, m, tags, {"name": "Team A", "externalId": "TeamA"})
    spare = await _post(h, m, tags, {"name": "Team B"})
    await _post(
        h,
        m,
        f"/v1/calendars/{m.code}/season/events",
        {"eventId": "g1", "title": "A", "start": "2026-06-04", "tags": [{"id": used["id"]}]},
    )
    await _post(
        h,
        m,
        f"/v1/subscribe/{m.code}/season",
        {"subscriberId": "fan", "subscriptionMethod": "webcal", "calendarTags": [{"id": used["id"]}]},
        status=200,
    )
    await h.messages.wait_for(5)  # calendar, two tags, the event, the subscription
    h.messages.clear()

    response = await h.client.put(f"{tags}/TeamA", json={"name": "Lions"}, headers=m.headers)
    assert response.status == 200 and (await response.json())["name"] == "Lions"
    response = await h.client.put(f"{tags}/{spare['id']}", json={"name": "Tigers"}, headers=m.headers)
    assert response.status == 200 and (await response.json())["version"] == 2
    response = await h.client.put(f"{tags}/{spare['id']}", json={"name": ""}, headers=m.headers)
    assert response.status == 400
    response = await h.client.put(f"{tags}/nope", json={"name": "X"}, headers=m.headers)
    assert response.status == 404 and (await response.json())["errors"][0]["code"] == "TagNotFound"

    response = await h.client.delete(f"{tags}/{used['id']}", headers=m.headers)
    problem = await response.json()
    assert response.status == 409 and problem["errors"][0]["code"] == "TagInUse", problem
    assert "is on 1 event(s) and in the filter of 1 active subscription(s)" in problem["errors"][0]["reason"]
    response = await h.client.delete(f"{tags}/{spare['id']}", headers=m.headers)
    assert response.status == 204
    response = await h.client.delete(f"{tags}/{spare['id']}", headers=m.headers)
    assert response.status == 404

    received = await h.messages.wait_for(3)
    assert _types(received) == ["tag.updated", "tag.updated", "tag.deleted"]
    assert received[0]["data"]["name"] == "Lions" and received[0]["data"]["tagId"] == used["id"]
    assert received[2]["data"] == {**received[2]["data"], "tagId": spare["id"], "version": 3}
    listed = await (await h.client.get(tags, headers=m.headers)).json()
    assert [t["name"] for t in listed] == ["Lions"]
