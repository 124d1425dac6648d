"""Subscribe in two statements and the one-statement read keep what the transaction gave: the
message is the stored row, a subscriber racing itself gets one subscription, and the read by id
answers what the read by username (the general path) does."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg

from tests.integration.ingest.conftest import Harness, Merchant


async def _call(h: Harness, m: Merchant, method: str, path: str, body: Any = None, status: int = 200) -> Any:
    response = await h.client.request(method, path, json=body, headers=m.headers)
    payload = await response.json()
    assert response.status == status, payload
    return payload


async def _season(h: Harness, m: Merchant) -> None:
    await _call(h, m, "POST", f"/v1/calendars/{m.code}", {"code": "season", "name": "Season"}, status=201)
    for team in ("A", "B"):
        body = {"name": f"Team {team}", "externalId": f"team-{team}"}
        await _call(h, m, "POST", f"/v1/calendars/{m.code}/season/tags", body, status=201)


async def test_a_new_subscriptions_message_is_its_stored_row_and_its_only_outbox_row(harness: Harness) -> None:
    h, m = harness, harness.merchant()
    await _season(h, m)
    h.messages.clear()
    body = {"subscriberId": "fan", "userAgent": "iPhone", "calendarTags": [{"externalId": "team-B"}]}
    created = await _call(h, m, "POST", f"/v1/subscribe/{m.code}/season", body)
    assert created["isNewSubscription"] is True
    (message,) = [x for x in await h.messages.wait_for(1) if x["type"].startswith("subscription.")]
    assert message["type"] == "subscription.created"
    conn = await asyncpg.connect(h.database_url)
    try:
        row = await conn.fetchrow(
            "SELECT * FROM ingest.subscriptions WHERE subscription_id = $1", uuid.UUID(created["subscriptionId"])
        )
        outbox = await conn.fetch(
            "SELECT routing_key FROM ingest.outbox WHERE convert_from(body, 'UTF8') LIKE '%' || $1 || '%'",
            created["subscriptionId"],
        )
    finally:
        await conn.close()
    assert row is not None and row["active"] and row["version"] == 1
    data = message["data"]
    assert data["subscriptionId"] == created["subscriptionId"] and data["version"] == 1
    assert data["createdAt"].replace("Z", "+00:00") == row["created_at"].isoformat()
    assert [t["externalId"] for t in data["calendarTags"]] == ["team-B"]
    assert data["merchantName"] == m.code  # auth has not announced the account's name yet
    assert [r["routing_key"] for r in outbox] == ["subscription.created"]


async def test_a_subscriber_racing_itself_gets_one_subscription_created_once_and_updated_after(
    harness: Harness,
) -> None:
    h, m = harness, harness.merchant()
    await _season(h, m)
    h.messages.clear()
    body = {"subscriberId": "racer", "subscriptionMethod": "webcal"}
    answers = await asyncio.gather(*(_call(h, m, "POST", f"/v1/subscribe/{m.code}/season", body) for _ in range(8)))
    assert len({a["subscriptionId"] for a in answers}) == 1
    assert sorted(a["isNewSubscription"] for a in answers) == [False] * 7 + [True]
    received = [x["type"] for x in await h.messages.wait_for(8) if x["type"].startswith("subscription.")]
    assert sorted(received) == ["subscription.created"] + ["subscription.updated"] * 7
    listed = await _call(h, m, "GET", f"/v1/subscription/{m.code}/season/racer")
    assert [s["subscriptionId"] for s in listed] == [answers[0]["subscriptionId"]]


async def test_the_read_by_id_answers_what_the_read_by_username_does(harness: Harness) -> None:
    h, m = harness, harness.merchant()
    await _season(h, m)
    event = {"eventId": "final", "title": "Final", "start": "2026-07-01T19:00:00", "end": "2026-07-01T21:00:00"}
    await _call(h, m, "POST", f"/v1/calendars/{m.code}/season/events", event, status=201)
    body = {
        "subscriberId": "full",
        "userAgent": "iPhone",
        "emailAddress": "full@example.com",
        "calendarTags": [{"externalId": "team-A"}, {"externalId": "team-B"}],
        "externalEventIds": ["final", "no-such-event"],
        "events": [{"eventId": "mine", "title": "Mine", "start": "2026-07-02T10:00:00", "end": "2026-07-02T11:00:00"}],
    }
    created = await _call(h, m, "POST", f"/v1/subscribe/{m.code}/season", body)
    by_id = await _call(h, m, "GET", f"/v1/subscription/{created['subscriptionId']}")
    (by_username,) = await _call(h, m, "GET", f"/v1/subscription/{m.code}/season/full")
    assert by_id == by_username
    assert sorted(t["name"] for t in by_id["tags"]) == ["Team A", "Team B"]
    assert [(e["name"], e["isExcluded"]) for e in by_id["events"]] == [("Final", False)]
    assert [e["title"] for e in by_id["manualEvents"]] == ["Mine"]
    other = harness.merchant()
    await _call(h, other, "GET", f"/v1/subscription/{created['subscriptionId']}", status=404)
