"""What one tenant may hold: manual events per subscription and events per calendar, each a clear 400
that writes nothing; manual events travel one message each, only when they change."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from tests.integration.ingest.conftest import Harness, Merchant

MANUAL_LIMIT = 3
CALENDAR_LIMIT = 4


@pytest.fixture
def ingest_environ() -> dict[str, str]:
    return {
        "KALENDS_MAX_MANUAL_EVENTS_PER_SUBSCRIPTION": str(MANUAL_LIMIT),
        "KALENDS_MAX_EVENTS_PER_CALENDAR": str(CALENDAR_LIMIT),
    }


async def _call(h: Harness, m: Merchant, method: str, path: str, body: Any = None, status: int = 200) -> Any:
    response = await h.client.request(method, path, json=body, headers=m.headers)
    payload = await response.json() if response.content_type == "application/json" else await response.text()
    assert response.status == status, payload
    return payload


def _manual(n: int, title: str = "Reminder") -> dict[str, Any]:
    return {"eventId": f"mine-{n}", "title": f"{title} {n}", "start": f"2026-07-{n + 1:02d}T10:00:00"}


async def _row_counts(h: Harness) -> tuple[int, int, int]:
    conn = await asyncpg.connect(h.database_url)
    try:
        row = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM ingest.events) AS events,"
            " (SELECT coalesce(sum(version), 0) FROM ingest.subscriptions) AS versions,"
            " (SELECT count(*) FROM ingest.outbox) AS outbox"
        )
        assert row is not None
        return int(row["events"]), int(row["versions"]), int(row["outbox"])
    finally:
        await conn.close()


async def test_a_subscription_pushed_past_its_manual_event_limit_gets_400_and_nothing_is_written(
    harness: Harness,
) -> None:
    h, m = harness, harness.merchant()
    await _call(h, m, "POST", f"/v1/calendars/{m.code}", {"code": "season", "name": "Season"}, status=201)
    path = f"/v1/subscribe/{m.code}/season"
    body = {"subscriberId": "fan", "subscriptionMethod": "webcal", "events": [_manual(0), _manual(1)]}
    first = await _call(h, m, "POST", path, body)
    # Re-sending held events updates them: they do not count twice.
    await _call(h, m, "POST", path, {**body, "events": [_manual(0, "Moved"), _manual(1), _manual(2)]})
    before = await _row_counts(h)

    refused = await _call(h, m, "POST", path, {**body, "events": [_manual(3), _manual(4)]}, status=400)

    assert refused["errors"][0]["code"] == "InvalidRequestParameter"
    reason = refused["errors"][0]["reason"]
    assert f"at most {MANUAL_LIMIT} manual events" in reason and "has 3" in reason and "adds 2" in reason
    assert await _row_counts(h) == before  # no event, no subscription change, no message
    # A new subscription asking for more than the limit in one request is refused the same way.
    too_many = {
        "subscriberId": "other",
        "subscriptionMethod": "webcal",
        "events": [_manual(n) for n in range(MANUAL_LIMIT + 1)],
    }
    refused = await _call(h, m, "POST", path, too_many, status=400)
    assert (
        f"at most {MANUAL_LIMIT} manual events; this request has {MANUAL_LIMIT + 1}" in refused["errors"][0]["reason"]
    )
    assert await _row_counts(h) == before
    assert first["isNewSubscription"] is True


async def test_manual_events_travel_one_message_each_and_only_when_they_change(harness: Harness) -> None:
    h, m = harness, harness.merchant()
    await _call(h, m, "POST", f"/v1/calendars/{m.code}", {"code": "season", "name": "Season"}, status=201)
    path = f"/v1/subscribe/{m.code}/season"
    body = {"subscriberId": "fan", "subscriptionMethod": "webcal", "events": [_manual(0), _manual(1)]}
    created = await _call(h, m, "POST", path, body)
    received = await h.messages.wait_for(4)
    assert [r["type"] for r in received] == [
        "calendar.created",
        "subscription.created",
        "event.created",
        "event.created",
    ]
    assert "events" not in received[1]["data"]
    for message in received[2:]:
        assert message["data"]["subscriptionIds"] == [created["subscriptionId"]]
    assert {r["data"]["externalId"] for r in received[2:]} == {"mine-0", "mine-1"}
    h.messages.clear()

    await _call(h, m, "POST", path, {**body, "events": [_manual(0), _manual(1, "Changed")]})

    received = await h.messages.wait_for(2)
    assert [r["type"] for r in received] == ["subscription.updated", "event.updated"]
    assert received[1]["data"]["title"] == "Changed 1" and received[1]["data"]["sequence"] == 1
    assert "events" not in received[0]["data"]


async def test_a_calendar_at_its_event_cap_refuses_a_new_event_with_400_but_updates_and_room_after_a_delete_work(
    harness: Harness,
) -> None:
    h, m = harness, harness.merchant()
    await _call(h, m, "POST", f"/v1/calendars/{m.code}", {"code": "season", "name": "Season"}, status=201)
    events = f"/v1/calendars/{m.code}/season/events"
    for n in range(CALENDAR_LIMIT):
        await _call(h, m, "POST", events, {"eventId": f"g{n}", "title": f"Game {n}", "start": "2026-03-01"}, status=201)
    before = await _row_counts(h)

    refused = await _call(
        h, m, "POST", events, {"eventId": "one-more", "title": "X", "start": "2026-03-02"}, status=400
    )

    assert refused["errors"][0]["code"] == "InvalidRequestParameter"
    assert (
        f"holds {CALENDAR_LIMIT} events, the most one calendar may hold is {CALENDAR_LIMIT}"
        in (refused["errors"][0]["reason"])
    )
    assert await _row_counts(h) == before
    await _call(h, m, "POST", events, {"eventId": "g0", "title": "Game 0 (moved)", "start": "2026-03-03"})
    await _call(h, m, "DELETE", f"{events}/g1", status=200)
    await _call(h, m, "POST", events, {"eventId": "one-more", "title": "X", "start": "2026-03-02"}, status=201)


async def test_the_ingest_relay_reports_its_backlog_and_parked_rows_on_metrics(harness: Harness) -> None:
    h, m = harness, harness.merchant()
    await _call(h, m, "POST", f"/v1/calendars/{m.code}", {"code": "season", "name": "Season"}, status=201)
    await h.messages.wait_for(1)
    text = ""
    for _ in range(100):
        text = await (await h.client.get("/metrics")).text()
        if 'outbox_backlog{schema="ingest"} 0.0' in text:
            break
        await asyncio.sleep(0.05)
    assert 'outbox_backlog{schema="ingest"} 0.0' in text
    assert 'outbox_parked_rows{schema="ingest"} 0.0' in text
    assert "# TYPE outbox_parked_total counter" in text
