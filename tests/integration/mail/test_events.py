"""Catalog events with `notify`: REQUEST on create and on significant changes, CANCEL to removed
attendees and to everyone on deletion; replays and insignificant changes send nothing."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from icalendar import Calendar

from shared.messages import EventData, Person, make_envelope
from shared.testing_smtp import Received, SmtpServer
from tests.integration.mail.conftest import Worker


def event(account: uuid.UUID, event_id: uuid.UUID, sequence: int, attendees: list[str], **changes: Any) -> EventData:
    values: dict[str, Any] = {
        "event_id": event_id,
        "calendar_id": uuid.uuid4(),
        "account_id": account,
        "sequence": sequence,
        "changed_at": datetime.now(UTC),
        "created_at": datetime(2026, 11, 1, tzinfo=UTC),
        "title": "Launch party",
        "start": "2026-12-10T18:00:00",
        "end": "2026-12-10T20:00:00",
        "timezone": "Europe/Berlin",
        "organizer": Person(name="Mia Merchant", email="mia@merchant.test"),
        "attendees": [Person(email=e) for e in attendees],
        "notify": True,
        **changes,
    }
    return EventData(**values)


def calendar_of(item: Received) -> tuple[str, str, int, list[str]]:
    part = next(p for p in item.parsed().walk() if p.get_content_type() == "text/calendar")
    calendar = Calendar.from_ical(part.get_payload(decode=True))
    component = calendar.walk("VEVENT")[0]
    attendees = component.get("attendee")
    attendees = attendees if isinstance(attendees, list) else [attendees]
    return str(calendar["method"]), str(component["uid"]), int(component["sequence"]), [str(a) for a in attendees]


async def settle(smtp: SmtpServer, count: int) -> list[tuple[str, str, int, str]]:
    """(method, uid, sequence, recipient) of every message once `count` have come and no more follow."""
    await smtp.wait_for(count)
    await asyncio.sleep(0.8)
    return sorted((*calendar_of(r)[:3], r.recipients[0]) for r in smtp.received)


async def test_an_event_with_notify_invites_updates_and_cancels_its_attendees_once_each(
    worker: Worker, smtp: SmtpServer, publish: Callable[..., Any]
) -> None:
    await worker.start()
    account, event_id = uuid.uuid4(), uuid.uuid4()
    uid = str(event_id)  # the feed's UID for the event
    created = make_envelope("event.created", event(account, event_id, 0, ["ann@example.com", "bob@example.com"]))
    await publish(created)
    assert await settle(smtp, 2) == [("REQUEST", uid, 0, "ann@example.com"), ("REQUEST", uid, 0, "bob@example.com")]
    (first, *_) = smtp.received
    assert calendar_of(first)[3] == ["mailto:ann@example.com", "mailto:bob@example.com"]

    await publish(created)  # the same message again: nothing
    moved = event(account, event_id, 1, ["ann@example.com", "cat@example.com"], start="2026-12-11T18:00:00")
    moved = moved.model_copy(update={"end": "2026-12-11T20:00:00"})
    await publish(make_envelope("event.updated", moved))
    methods = sorted((m, s, r) for m, _, s, r in await settle(smtp, 5))
    assert methods == [
        ("CANCEL", 1, "bob@example.com"),
        ("REQUEST", 0, "ann@example.com"),
        ("REQUEST", 0, "bob@example.com"),
        ("REQUEST", 1, "ann@example.com"),
        ("REQUEST", 1, "cat@example.com"),
    ]

    # An answer recorded on the event (a new sequence, nothing significant): nobody is asked again.
    answered = moved.model_copy(
        update={"sequence": 2, "attendees": [Person(email="ann@example.com", partstat="ACCEPTED"), moved.attendees[1]]}
    )
    await publish(make_envelope("event.updated", answered))
    await asyncio.sleep(1.0)
    assert len(smtp.received) == 5

    gone = answered.model_copy(update={"sequence": 3, "deleted": True})
    await publish(make_envelope("event.deleted", gone))
    final = sorted((m, s, r) for m, _, s, r in await settle(smtp, 7))
    assert final[:2] == [("CANCEL", 1, "bob@example.com"), ("CANCEL", 3, "ann@example.com")]
    assert ("CANCEL", 3, "cat@example.com") in final and len(final) == 7


async def test_an_event_without_notify_sends_nothing(
    worker: Worker, smtp: SmtpServer, publish: Callable[..., Any]
) -> None:
    await worker.start()
    quiet = event(uuid.uuid4(), uuid.uuid4(), 0, ["ann@example.com"], notify=False)
    await publish(make_envelope("event.created", quiet))
    loud = event(uuid.uuid4(), uuid.uuid4(), 0, ["bob@example.com"])
    await publish(make_envelope("event.created", loud))
    await smtp.wait_for(1)
    await asyncio.sleep(0.8)
    assert [r.recipients for r in smtp.received] == [["bob@example.com"]]
