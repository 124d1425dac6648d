"""A subscription event for 1,000 subscriptions is one request, one transaction and one message."""

from __future__ import annotations

import time
import uuid

import asyncpg

from tests.integration.ingest.conftest import Harness


async def test_a_subscription_event_for_1000_subscriptions_on_two_calendars_is_one_message(harness: Harness) -> None:
    h, m = harness, harness.merchant()
    calendars = []
    for code in ("north", "south"):
        response = await h.client.post(f"/v1/calendars/{m.code}", json={"code": code, "name": code}, headers=m.headers)
        assert response.status == 201
        calendars.append(uuid.UUID((await response.json())["id"]))
    ids = [uuid.uuid4() for _ in range(1000)]
    conn = await asyncpg.connect(h.database_url)
    try:
        # Stored as the subscribe use-case stores them; 1,000 subscribe requests would only slow the test.
        await conn.executemany(
            "INSERT INTO ingest.subscriptions (subscription_id, account_id, calendar_id, subscription_type,"
            " subscriber_id) VALUES ($1, $2, $3, 'webcal', $4)",
            [(sid, m.account_id, calendars[n % 2], f"fan-{n}") for n, sid in enumerate(ids)],
        )
    finally:
        await conn.close()
    await h.messages.wait_for(2)
    h.messages.clear()
    body = {
        "event": {"eventId": "meet", "title": "Meet the team", "start": "2026-05-01T18:00:00"},
        "subscriptionIds": [str(sid) for sid in ids],
    }

    started = time.monotonic()
    response = await h.client.post(f"/v1/subscriptionevent/{m.code}", json=body, headers=m.headers)
    elapsed = time.monotonic() - started

    assert response.status == 202, await response.text()
    assert elapsed < 5.0
    received = await h.messages.wait_for(1, settle=1.0)
    assert [r["type"] for r in received] == ["subscription_event.accepted"]
    assert received[0]["data"]["subscriptionIds"] == [str(sid) for sid in ids]
