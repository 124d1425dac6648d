"""What an attendee's answer looks like downstream: the AttendeeReplied webhook's details and the
feed's ATTENDEE line."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from icalendar import Calendar

from services.webhook.domain import payloads
from shared.ical import render_single
from shared.messages import AttendeeReplied, EventData, Person


def test_the_attendee_replied_webhook_names_event_attendee_and_answer_in_the_seeds_style() -> None:
    account, event_id = uuid.uuid4(), uuid.uuid4()
    replied = AttendeeReplied(
        account_id=account,
        event_id=event_id,
        uid="u-1",
        attendee_email="ann@example.com",
        partstat="TENTATIVE",
        method="COUNTER",
        replied_at=datetime(2026, 12, 1, 9, 30, 5, 12, tzinfo=UTC),
    )
    assert payloads.attendee_replied_details(replied) == {
        "merchantId": str(account),
        "eventId": str(event_id),
        "uid": "u-1",
        "attendeeEmail": "ann@example.com",
        "partStat": "TENTATIVE",
        "method": "COUNTER",
        "repliedDateTimeUtc": "2026-12-01 09:30:05.000012",
    }
    assert "AttendeeReplied" in payloads.EVENT_TYPES
    assert payloads.MESSAGE_EVENT_TYPES["attendee.replied"] == "AttendeeReplied"


def test_the_feed_shows_an_attendees_answer_and_needs_action_for_the_others() -> None:
    now = datetime(2026, 11, 1, tzinfo=UTC)
    event = EventData(
        event_id=uuid.uuid4(),
        calendar_id=uuid.uuid4(),
        account_id=uuid.uuid4(),
        sequence=2,
        changed_at=now,
        created_at=now,
        title="Launch",
        start="2026-12-10T18:00:00",
        end="2026-12-10T20:00:00",
        attendees=[Person(email="ann@example.com", partstat="accepted"), Person(email="bob@example.com")],
    )
    component = Calendar.from_ical(render_single(event)).walk("VEVENT")[0]
    partstats = {str(a): a.params["PARTSTAT"] for a in component.get("attendee")}
    assert partstats == {"mailto:ann@example.com": "ACCEPTED", "mailto:bob@example.com": "NEEDS-ACTION"}
