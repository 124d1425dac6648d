"""Applies ingest's messages to sync's mirror and queues the subscriptions whose pushed calendars
they change (`push_queue`, in the consumer's transaction; the engine does the pushing).

Versions order everything, as in feed: a message older than what is stored changes nothing, so
messages may arrive out of order or twice. Queuing is always safe: the engine reconciles states,
so an extra mark costs a comparison, never a second push.

Manual events of a subscription arrive in either shape: inside `SubscriptionData.events` (the
subscription message carries all of them) or as `event.*` messages whose `subscription_ids` name
their subscriptions.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from services.sync.adapters import repository as repo
from shared.logging import get_logger
from shared.messages import (
    CalendarData,
    CalendarDeleted,
    Envelope,
    EventData,
    SubscriptionData,
    SubscriptionEventAccepted,
)
from shared.selection import subscription_filter
from shared.timezones import UnknownTimezone, resolve

log = get_logger(__name__)


async def apply_calendar(conn: asyncpg.Connection, data: CalendarData) -> None:
    stored = await repo.calendar_version_of(conn, data.calendar_id)
    if stored is not None and stored >= data.version:
        return
    try:
        timezone = resolve(data.timezone)
    except UnknownTimezone:
        timezone = "UTC"
    await repo.upsert_calendar(
        conn,
        {
            "calendar_id": data.calendar_id,
            "account_id": data.account_id,
            "name": data.name,
            "description": data.description,
            "color": data.color,
            "timezone": timezone,
            "version": data.version,
            "deleted": False,
        },
    )
    # Subscriptions that waited for their calendar may go on now.
    await repo.mark_calendar(conn, data.calendar_id)


async def apply_calendar_deleted(conn: asyncpg.Connection, data: CalendarDeleted) -> None:
    stored = await repo.calendar_version_of(conn, data.calendar_id)
    if stored is not None and stored > data.version:
        return
    if stored is None:
        await repo.upsert_calendar(
            conn,
            {"calendar_id": data.calendar_id, "account_id": data.account_id, "name": data.code, "version": 0},
        )
    await repo.mark_calendar_deleted(conn, data.calendar_id, data.version)


async def apply_event(
    conn: asyncpg.Connection,
    event: EventData,
    *,
    subscription_ids: list[uuid.UUID] | None = None,
    origin: str | None = None,
) -> bool:
    """Store the event's newest version; queue every subscription it may show in. True when applied."""
    members = sorted(set(subscription_ids if subscription_ids is not None else event.subscription_ids))
    stored = await repo.lock_event(conn, event.event_id)
    if stored is not None and stored.sequence >= event.sequence:
        return False
    await repo.upsert_event(
        conn,
        {
            "event_id": event.event_id,
            "calendar_id": event.calendar_id,
            "external_id": event.external_id,
            "sequence": event.sequence,
            "created_at": event.created_at,
            "tag_ids": sorted(set(event.tag_ids)),
            "time_zone_tag": event.time_zone_tag,
            "deleted": event.deleted,
            "subscription_ids": members,
            "origin": origin or ("subscription_event" if members else "calendar"),
            "data": event.model_dump(mode="json", by_alias=True),
        },
    )
    if not members or (stored is not None and not stored.subscription_ids):
        await repo.mark_calendar(conn, event.calendar_id)
        if stored is not None and stored.calendar_id != event.calendar_id:
            await repo.mark_calendar(conn, stored.calendar_id)
    await repo.mark(conn, set(members) | set(stored.subscription_ids if stored else ()))
    return True


def manual_events_of(data: SubscriptionData) -> list[EventData] | None:
    """The manual events a subscription message of the older shape lists (all of them), or None
    for the newer shape, whose manual events travel as event.* messages. Once `events` is no longer
    a field of SubscriptionData, an older message keeps it as a raw extra: parsed here."""
    listed: list[EventData | dict[str, Any]] | None = getattr(data, "events", None)
    if listed is None or "events" not in data.model_fields_set:
        return None
    return [e if isinstance(e, EventData) else EventData.model_validate(e) for e in listed]


async def apply_subscription(conn: asyncpg.Connection, data: SubscriptionData) -> None:
    stored = await repo.subscription_version_of(conn, data.subscription_id)
    # An equal version is applied too: the consumer already drops exact redeliveries by message id.
    if stored is not None and stored > data.version:
        return
    selection = subscription_filter(data)
    await repo.upsert_subscription(
        conn,
        {
            "subscription_id": data.subscription_id,
            "calendar_id": data.calendar_id,
            "account_id": data.account_id,
            "subscription_type": data.subscription_type,
            "active": data.active,
            "created_at": data.created_at,
            "deactivated_at": selection.cutoff,
            "tag_ids": sorted(selection.tag_ids),
            "time_zone_tag": selection.time_zone_tag,
            "include_ids": sorted(selection.include_ids),
            "include_external": sorted(selection.include_external),
            "exclude_ids": sorted(selection.exclude_ids),
            "exclude_external": sorted(selection.exclude_external),
            "connection_id": data.sync_connection_id,
            "version": data.version,
        },
    )
    if data.sync_connection_id is not None:
        await repo.ensure_target(conn, data.subscription_id, data.sync_connection_id)
    # The older shape: the subscription message lists every manual event. (The newer one sends them
    # as event.* messages naming the subscription, and has no `events` here.)
    manual = manual_events_of(data)
    if manual is not None:
        for event in manual:
            await apply_event(conn, event, subscription_ids=[data.subscription_id], origin="manual")
        await repo.delete_stale_manual_events(conn, data.subscription_id, [e.event_id for e in manual])
    await repo.mark(conn, [data.subscription_id])


async def handle(conn: asyncpg.Connection, envelope: Envelope) -> None:
    """The `sync.projection` consumer's handler (runs inside the consumer's transaction)."""
    kind = envelope.type
    data: Any = envelope.parsed()
    if kind in {"calendar.created", "calendar.updated"}:
        await apply_calendar(conn, data)
    elif kind == "calendar.deleted":
        await apply_calendar_deleted(conn, data)
    elif kind.startswith("event."):
        await apply_event(conn, data)
    elif kind.startswith("subscription."):
        await apply_subscription(conn, data)
    elif kind == "subscription_event.accepted":
        accepted: SubscriptionEventAccepted = data
        await apply_event(
            conn, accepted.event, subscription_ids=list(accepted.subscription_ids), origin="subscription_event"
        )
    else:
        log.info("projection.ignored", message_type=kind)
