"""Manual events in either message shape (pure): listed in the subscription message, or not."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from services.sync.messaging.projection import manual_events_of
from shared.messages import SubscriptionData

NOW = datetime(2026, 5, 1, tzinfo=UTC)


def message(**extra: Any) -> dict[str, Any]:
    return {
        "subscriptionId": str(uuid.uuid4()),
        "accountId": str(uuid.uuid4()),
        "accountCode": "acme",
        "merchantName": "Acme",
        "calendarId": str(uuid.uuid4()),
        "calendarCode": "games",
        "calendarTitle": "Games",
        "subscriptionType": "caldav",
        "createdAt": NOW.isoformat(),
        **extra,
    }


def manual(title: str) -> dict[str, Any]:
    return {
        "eventId": str(uuid.uuid4()),
        "calendarId": str(uuid.uuid4()),
        "accountId": str(uuid.uuid4()),
        "sequence": 1,
        "changedAt": NOW.isoformat(),
        "createdAt": NOW.isoformat(),
        "title": title,
        "start": "2026-05-02T10:00:00",
        "end": "2026-05-02T11:00:00",
    }


def test_the_older_shape_lists_every_manual_event_even_an_empty_list() -> None:
    listed = manual_events_of(SubscriptionData.model_validate(message(events=[manual("A"), manual("B")])))
    assert listed is not None and [e.title for e in listed] == ["A", "B"]
    assert manual_events_of(SubscriptionData.model_validate(message(events=[]))) == []


def test_the_newer_shape_says_nothing_about_manual_events() -> None:
    assert manual_events_of(SubscriptionData.model_validate(message())) is None
