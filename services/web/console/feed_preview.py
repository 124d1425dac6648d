"""What a subscription's feed holds, computed from the public APIs' answers with the feed's own rule
(shared.selection): for protected calendars, whose feed the console cannot open without the
subscriber's credentials."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from shared.selection import EventFilter


def _moment(text: str | None) -> datetime | None:
    """ingest's timestamps: UTC without a zone suffix (seed 002)."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _uuids(values: Sequence[Any]) -> frozenset[uuid.UUID]:
    found = set()
    for value in values:
        try:
            found.add(uuid.UUID(str(value)))
        except ValueError:
            continue
    return frozenset(found)


def subscription_filter(subscription: Mapping[str, Any]) -> EventFilter:
    """The filter of a subscription as ingest's GET /v1/subscription/{id} shows it."""
    listed = subscription.get("events") or []
    return EventFilter(
        tag_ids=_uuids([t["id"] for t in subscription.get("tags") or []]),
        time_zone_tag=subscription.get("timezoneId") or None,
        include_ids=_uuids([e["id"] for e in listed if not e.get("isExcluded")]),
        exclude_ids=_uuids([e["id"] for e in listed if e.get("isExcluded")]),
        cutoff=None if subscription.get("isActive", True) else _moment(subscription.get("deactivatedDate")),
    )


def selected_events(subscription: Mapping[str, Any], events: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The calendar's live events (as ingest lists them) that the subscription's feed carries."""
    rule = subscription_filter(subscription)
    chosen = []
    for event in events:
        if event.get("status") == "cancelled":
            continue
        created = _moment(event.get("createdAt")) or datetime.now(UTC)
        if rule.matches(
            event_id=uuid.UUID(str(event["id"])),
            external_id=event.get("externalId"),
            tag_ids=_uuids(event.get("tags") or []),
            time_zone_tag=event.get("timeZoneTag"),
            created_at=created,
        ):
            chosen.append(event)
    return chosen
