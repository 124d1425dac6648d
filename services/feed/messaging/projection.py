"""Applies ingest's messages to the feed projection, rendering each event's VEVENT block once.

Versions order everything: a message older than (or as old as) what is stored changes nothing, so
messages may arrive out of order or twice. Each change bumps and announces the versions of the
feeds it touches, in the same transaction (see adapters/repository.py).
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from services.feed.adapters import repository as repo
from shared.api_keys import save_api_key
from shared.ical import event_input, render_event
from shared.logging import get_logger
from shared.messages import (
    ApiKeyCreated,
    ApiKeyRevoked,
    CalendarData,
    CalendarDeleted,
    Envelope,
    EventData,
    SubscriptionData,
    SubscriptionEventAccepted,
    TagData,
    TagDeleted,
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
            "account_code": data.account_code,
            "code": data.code,
            "name": data.name,
            "description": data.description,
            "image": data.image,
            "color": data.color,
            "timezone": timezone,
            "protected": data.protected,
            "refresh_interval": data.refresh_interval,
            "version": data.version,
            "changed_at": data.changed_at,
            "deleted": False,
        },
    )
    await repo.bump_calendar(conn, data.calendar_id)


async def apply_calendar_deleted(conn: asyncpg.Connection, data: CalendarDeleted) -> None:
    stored = await repo.calendar_version_of(conn, data.calendar_id)
    if stored is not None and stored > data.version:
        return
    await repo.mark_calendar_deleted(conn, data.calendar_id, data.version, data.changed_at)
    await repo.bump_calendar(conn, data.calendar_id)


async def apply_event(
    conn: asyncpg.Connection,
    event: EventData,
    *,
    subscription_ids: list[uuid.UUID] | None = None,
    origin: str | None = None,
) -> bool:
    """Store the event's newest version with its rendered block; True when it changed anything."""
    members = sorted(set(subscription_ids if subscription_ids is not None else event.subscription_ids))
    stored = await repo.lock_event(conn, event.event_id)
    if stored is not None and stored.sequence >= event.sequence:
        return False
    rendered = render_event(event_input(event))
    if rendered.skipped:
        log.warning("event.recurrence_skipped", event_id=str(event.event_id), reasons=list(rendered.skipped))
    await repo.upsert_event(
        conn,
        {
            "event_id": event.event_id,
            "calendar_id": event.calendar_id,
            "external_id": event.external_id,
            "sequence": event.sequence,
            "changed_at": event.changed_at,
            "created_at": event.created_at,
            "start_utc": rendered.start_utc,
            "tag_ids": sorted(event.tag_ids),
            "time_zone_tag": event.time_zone_tag,
            "tzids": list(rendered.tzids),
            "block": rendered.block,
            "deleted": event.deleted,
            "subscription_ids": members,
            "origin": origin or ("subscription_event" if members else "calendar"),
        },
    )
    was_shared = stored is not None and not stored.subscription_ids
    if not members or was_shared:
        await repo.bump_calendar(conn, event.calendar_id)
        if stored is not None and stored.calendar_id != event.calendar_id:
            await repo.bump_calendar(conn, stored.calendar_id)
    await repo.bump_subscriptions(conn, set(members) | set(stored.subscription_ids if stored else ()))
    return True


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
            "active": data.active,
            "created_at": data.created_at,
            "deactivated_at": selection.cutoff,
            "tag_ids": sorted(selection.tag_ids),
            "time_zone_tag": selection.time_zone_tag,
            "include_ids": sorted(selection.include_ids),
            "include_external": sorted(selection.include_external),
            "exclude_ids": sorted(selection.exclude_ids),
            "exclude_external": sorted(selection.exclude_external),
            "signature": selection.signature,
            "feed_username": data.feed_username,
            "feed_password_hash": data.feed_password_hash,
            "version": data.version,
        },
    )
    legacy = (data.model_extra or {}).get("events")
    if legacy is not None:
        # A message from before manual events travelled on their own: it carries all of them.
        manual = [EventData.model_validate(e) for e in legacy]
        for event in manual:
            await apply_event(conn, event, subscription_ids=[data.subscription_id], origin="manual")
        await repo.delete_stale_manual_events(conn, data.subscription_id, [e.event_id for e in manual])
    await repo.bump_subscriptions(conn, [data.subscription_id])


async def apply_tag(conn: asyncpg.Connection, data: TagData | TagDeleted) -> None:
    if isinstance(data, TagDeleted):
        await repo.upsert_tag(
            conn,
            tag_id=data.tag_id,
            calendar_id=data.calendar_id,
            name="",
            external_id=None,
            version=data.version,
            deleted=True,
        )
        return
    await repo.upsert_tag(
        conn,
        tag_id=data.tag_id,
        calendar_id=data.calendar_id,
        name=data.name,
        external_id=data.external_id,
        version=data.version,
        deleted=False,
    )


async def handle(conn: asyncpg.Connection, envelope: Envelope) -> None:
    """The `feed.projection` consumer's handler (runs inside the consumer's transaction)."""
    kind = envelope.type
    data: Any = envelope.parsed()
    if isinstance(data, ApiKeyCreated | ApiKeyRevoked):
        await save_api_key(conn, repo.SCHEMA, data)
    elif kind in {"calendar.created", "calendar.updated"}:
        await apply_calendar(conn, data)
    elif kind == "calendar.deleted":
        await apply_calendar_deleted(conn, data)
    elif kind.startswith("tag."):
        await apply_tag(conn, data)
    elif kind.startswith("event."):
        # An event with subscriptions of its own on an event.* message is a subscriber's manual event.
        await apply_event(conn, data, origin="manual" if data.subscription_ids else None)
    elif kind.startswith("subscription."):
        await apply_subscription(conn, data)
    elif kind == "subscription_event.accepted":
        accepted: SubscriptionEventAccepted = data
        await apply_event(
            conn, accepted.event, subscription_ids=list(accepted.subscription_ids), origin="subscription_event"
        )
    else:
        log.info("projection.ignored", message_type=kind)
