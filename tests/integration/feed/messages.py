"""Builders of the messages ingest publishes, for feeding the projection in tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.messages import CalendarData, EventData, SubscriptionData, SubscriptionTag, TagData

BASE = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def calendar(account_id: uuid.UUID, **overrides: Any) -> CalendarData:
    values: dict[str, Any] = {
        "calendar_id": uuid.uuid4(),
        "account_id": account_id,
        "account_code": "acme",
        "code": f"cal{uuid.uuid4().hex[:6]}",
        "name": "Acme, Games; 2026",
        "description": "All the games",
        "color": "#1e90ff",
        "timezone": "America/New_York",
        "refresh_interval": "PT30M",
        "version": 1,
        "changed_at": BASE,
    }
    values.update(overrides)
    return CalendarData(**values)


def tag(cal: CalendarData, name: str) -> TagData:
    return TagData(tag_id=uuid.uuid4(), calendar_id=cal.calendar_id, name=name, version=1, changed_at=BASE)


def event(cal: CalendarData, title: str, day: int = 1, **overrides: Any) -> EventData:
    values: dict[str, Any] = {
        "event_id": uuid.uuid4(),
        "calendar_id": cal.calendar_id,
        "account_id": cal.account_id,
        "sequence": 1,
        "changed_at": BASE + timedelta(minutes=day),
        "created_at": BASE,
        "title": title,
        "start": f"2026-03-{day:02d}T19:00:00",
        "end": f"2026-03-{day:02d}T21:30:00",
        "timezone": "America/New_York",
    }
    values.update(overrides)
    return EventData(**values)


def subscription(cal: CalendarData, **overrides: Any) -> SubscriptionData:
    values: dict[str, Any] = {
        "subscription_id": uuid.uuid4(),
        "account_id": cal.account_id,
        "account_code": cal.account_code,
        "merchant_name": "Acme",
        "calendar_id": cal.calendar_id,
        "calendar_code": cal.code,
        "calendar_title": cal.name,
        "subscription_type": "webcal",
        "created_at": BASE,
        "version": 1,
    }
    values.update(overrides)
    return SubscriptionData(**values)


def tags_of(*tags: TagData) -> list[SubscriptionTag]:
    return [SubscriptionTag(tag_id=t.tag_id, tag_text=t.name) for t in tags]
