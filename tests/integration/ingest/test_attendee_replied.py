"""An attendee's answer (attendee.replied from mail) lands on the catalog event's attendee:
the event's answer shows `partstat`, and event.updated carries it to the feed."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import aio_pika

from shared.amqp import Names, Publisher
from shared.messages import AttendeeReplied, make_envelope
from tests.integration.ingest.conftest import Harness


async def test_a_reply_sets_the_attendees_partstat_on_the_event_and_publishes_event_updated(
    harness: Harness, amqp_connection: aio_pika.abc.AbstractRobustConnection, amqp_names: Names
) -> None:
    merchant = harness.merchant()
    client = harness.client
    base = f"/v1/calendars/{merchant.code}"
    response = await client.post(base, json={"code": "launch", "name": "Launch"}, headers=merchant.headers)
    assert response.status == 201, await response.text()
    body = {
        "title": "Launch party",
        "start": "2026-12-10T18:00:00",
        "end": "2026-12-10T20:00:00",
        "attendees": [{"email": "ann@example.com"}, {"email": "bob@example.com"}],
        "notify": True,
    }
    response = await client.post(f"{base}/launch/events", json=body, headers=merchant.headers)
    assert response.status == 201, await response.text()
    created = await response.json()
    assert created["notify"] is True
    event_id = uuid.UUID(created["id"])

    publisher = Publisher(amqp_connection, amqp_names)
    replied = AttendeeReplied(
        account_id=merchant.account_id,
        event_id=event_id,
        uid=str(event_id),
        attendee_email="Ann@Example.com",
        partstat="DECLINED",
        replied_at=datetime.now(UTC),
    )
    envelope = make_envelope("attendee.replied", replied, account_id=merchant.account_id)
    await publisher.publish(envelope.to_bytes(), envelope.type, str(envelope.id))
    await publisher.close()

    for _ in range(100):
        updated = [m for m in harness.messages.of("event.updated") if m["data"]["eventId"] == str(event_id)]
        if updated:
            break
        await asyncio.sleep(0.05)
    assert len(updated) == 1
    people = {p["email"]: p.get("partstat") for p in updated[0]["data"]["attendees"]}
    assert people == {"ann@example.com": "DECLINED", "bob@example.com": None}
    response = await client.get(f"{base}/launch/events/{event_id}", headers=merchant.headers)
    shown = {p["email"]: p.get("partstat") for p in (await response.json())["attendees"]}
    assert shown["ann@example.com"] == "DECLINED"
