"""An attendee's answer to a mail invitation (attendee.replied, published by mail) reaches the
endpoints that chose AttendeeReplied, and only those."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

from shared.messages import AttendeeReplied, make_envelope
from tests.integration.webhook.conftest import Worker
from tests.integration.webhook.receiver import Receiver
from tests.integration.webhook.test_delivery import add_endpoint


async def test_an_attendee_reply_reaches_the_endpoints_that_chose_attendee_replied(
    worker: Worker, receiver: Receiver, publish: Any
) -> None:
    account, event_id = uuid.uuid4(), uuid.uuid4()
    await add_endpoint(worker.pool, account, receiver.url("/replies"), ["AttendeeReplied"])
    await add_endpoint(worker.pool, account, receiver.url("/subscribes"), ["Subscribe"])
    replied = AttendeeReplied(
        account_id=account,
        event_id=event_id,
        uid=str(event_id),
        attendee_email="ann@example.com",
        partstat="ACCEPTED",
        comment="See you there",
        replied_at=datetime(2026, 12, 1, 9, 30, tzinfo=UTC),
    )
    envelope = make_envelope("attendee.replied", replied, account_id=account)
    await publish(envelope)
    (request,) = await receiver.wait_for("/replies", 1)
    assert request.json == {
        "eventId": str(envelope.id),
        "eventType": "AttendeeReplied",
        "eventDetails": {
            "merchantId": str(account),
            "eventId": str(event_id),
            "uid": str(event_id),
            "attendeeEmail": "ann@example.com",
            "partStat": "ACCEPTED",
            "method": "REPLY",
            "comment": "See you there",
            "repliedDateTimeUtc": "2026-12-01 09:30:00.000000",
        },
    }
    await asyncio.sleep(0.5)
    assert [r for r in receiver.received if r.path == "/subscribes"] == []
