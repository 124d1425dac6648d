"""The feed projection in PostgreSQL (schema `feed`): writes from the consumer, reads for the API.

Every function takes a connection; the caller owns the transaction. A change to what a feed shows
bumps a version (per calendar for shared sections, per subscription for its own part) and
announces it with NOTIFY `feed_changed` in the same transaction, so it is heard only once committed.
A payload is `c:<calendar id>:<version>`, or `s:<subscription id>:<version>` entries joined by ';'.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import asyncpg

from shared import mirror
from shared.selection import EventFilter

SCHEMA = "feed"
CHANNEL = "feed_changed"


# --- announcing ---------------------------------------------------------------------------------


async def bump_calendar(conn: asyncpg.Connection, calendar_id: uuid.UUID) -> int:
    version: int = await conn.fetchval(
        "INSERT INTO feed.calendar_versions (calendar_id, version) VALUES ($1, 1)"
        " ON CONFLICT (calendar_id) DO UPDATE SET version = feed.calendar_versions.version + 1, changed_at = now()"
        " RETURNING version",
        calendar_id,
    )
    await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, f"c:{calendar_id}:{version}")
    return version


# Entries per NOTIFY: `s:<uuid>:<version>` is at most 60 bytes, and a payload must stay under 8000.
NOTIFY_CHUNK = 128

_BUMP_SUBSCRIPTIONS = f"""
WITH bumped AS (
    UPDATE feed.subscriptions SET feed_version = feed_version + 1, feed_changed_at = now()
    WHERE subscription_id = ANY($1::uuid[])
    RETURNING subscription_id, feed_version
), numbered AS (
    SELECT subscription_id, feed_version,
           (row_number() OVER (ORDER BY subscription_id) - 1) / {NOTIFY_CHUNK} AS chunk
    FROM bumped
)
SELECT count(*) FROM (
    SELECT pg_notify($2, string_agg('s:' || subscription_id || ':' || feed_version, ';')) AS sent
    FROM numbered GROUP BY chunk
) notified
"""


async def bump_subscriptions(conn: asyncpg.Connection, subscription_ids: Iterable[uuid.UUID]) -> int:
    """Bump the subscriptions' feed versions and announce them, in one statement whatever their number:
    one NOTIFY per NOTIFY_CHUNK subscriptions (entries joined by ';'). Returns the NOTIFYs sent."""
    ids = sorted(set(subscription_ids))
    if not ids:
        return 0
    sent: int = await conn.fetchval(_BUMP_SUBSCRIPTIONS, ids, CHANNEL)
    return sent


async def _upsert(conn: asyncpg.Connection, table: str, key: str, values: dict[str, Any]) -> None:
    await mirror.upsert(conn, SCHEMA, table, key, values)


# --- calendars and tags -------------------------------------------------------------------------


async def calendar_version_of(conn: asyncpg.Connection, calendar_id: uuid.UUID) -> int | None:
    return await mirror.version_for_update(conn, SCHEMA, "calendars", "calendar_id", calendar_id)


async def upsert_calendar(conn: asyncpg.Connection, values: dict[str, Any]) -> None:
    await _upsert(conn, "calendars", "calendar_id", values)


async def mark_calendar_deleted(conn: asyncpg.Connection, calendar_id: uuid.UUID, version: int, at: datetime) -> None:
    await conn.execute(
        "UPDATE feed.calendars SET deleted = true, version = $2, changed_at = $3 WHERE calendar_id = $1",
        calendar_id,
        version,
        at,
    )


async def upsert_tag(
    conn: asyncpg.Connection,
    *,
    tag_id: uuid.UUID,
    calendar_id: uuid.UUID,
    name: str,
    external_id: str | None,
    version: int,
    deleted: bool,
) -> bool:
    """Applies only a newer version; True when it did."""
    applied = await conn.fetchval(
        "INSERT INTO feed.tags (tag_id, calendar_id, name, external_id, version, deleted)"
        " VALUES ($1, $2, $3, $4, $5, $6)"
        " ON CONFLICT (tag_id) DO UPDATE SET name = EXCLUDED.name, external_id = EXCLUDED.external_id,"
        " version = EXCLUDED.version, deleted = EXCLUDED.deleted WHERE feed.tags.version < EXCLUDED.version"
        " RETURNING true",
        tag_id,
        calendar_id,
        name,
        external_id,
        version,
        deleted,
    )
    return bool(applied)


# --- events -------------------------------------------------------------------------------------


async def lock_event(conn: asyncpg.Connection, event_id: uuid.UUID) -> mirror.StoredEvent | None:
    return await mirror.lock_event(conn, SCHEMA, event_id)


async def upsert_event(conn: asyncpg.Connection, values: dict[str, Any]) -> None:
    await _upsert(conn, "events", "event_id", values)


async def delete_stale_manual_events(
    conn: asyncpg.Connection, subscription_id: uuid.UUID, keep: Sequence[uuid.UUID]
) -> int:
    """Manual events the subscription no longer lists (a subscription's update carries all of them)."""
    result: str = await conn.execute(
        "DELETE FROM feed.events WHERE origin = 'manual' AND subscription_ids = ARRAY[$1]::uuid[]"
        " AND NOT (event_id = ANY($2::uuid[]))",
        subscription_id,
        list(keep),
    )
    return int(result.split()[-1])


# --- subscriptions ------------------------------------------------------------------------------


async def subscription_version_of(conn: asyncpg.Connection, subscription_id: uuid.UUID) -> int | None:
    return await mirror.version_for_update(conn, SCHEMA, "subscriptions", "subscription_id", subscription_id)


async def upsert_subscription(conn: asyncpg.Connection, values: dict[str, Any]) -> None:
    await _upsert(conn, "subscriptions", "subscription_id", values)


# --- api keys -----------------------------------------------------------------------------------


# --- reads for the API --------------------------------------------------------------------------


async def subscription_with_calendar(conn: asyncpg.Connection, subscription_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT s.*, c.calendar_id IS NOT NULL AS calendar_known, c.deleted AS calendar_deleted,"
        " coalesce(v.version, 0) AS calendar_feed_version,"
        " v.changed_at AS calendar_feed_changed_at"
        " FROM feed.subscriptions s LEFT JOIN feed.calendars c USING (calendar_id)"
        " LEFT JOIN feed.calendar_versions v USING (calendar_id) WHERE s.subscription_id = $1",
        subscription_id,
    )


async def calendar_by_code(conn: asyncpg.Connection, account_code: str, code: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT c.calendar_id, c.protected FROM feed.calendars c"
        " WHERE lower(c.account_code) = lower($1) AND lower(c.code) = lower($2) AND NOT c.deleted"
        " ORDER BY c.changed_at DESC LIMIT 1",
        account_code,
        code,
    )


async def calendar_with_version(conn: asyncpg.Connection, calendar_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT c.*, coalesce(v.version, 0) AS feed_version, v.changed_at AS feed_changed_at FROM feed.calendars c"
        " LEFT JOIN feed.calendar_versions v USING (calendar_id) WHERE c.calendar_id = $1",
        calendar_id,
    )


async def current_versions(
    conn: asyncpg.Connection, calendar_ids: Sequence[uuid.UUID], subscription_ids: Sequence[uuid.UUID]
) -> tuple[dict[uuid.UUID, int], dict[uuid.UUID, int]]:
    calendars = await conn.fetch(
        "SELECT calendar_id, version FROM feed.calendar_versions WHERE calendar_id = ANY($1::uuid[])",
        list(calendar_ids),
    )
    subscriptions = await conn.fetch(
        "SELECT subscription_id, feed_version FROM feed.subscriptions WHERE subscription_id = ANY($1::uuid[])",
        list(subscription_ids),
    )
    return (
        {r["calendar_id"]: r["version"] for r in calendars},
        {r["subscription_id"]: r["feed_version"] for r in subscriptions},
    )


_SHARED = """
WITH chosen AS (
    SELECT block, tzids, changed_at, start_utc, event_id FROM feed.events
    WHERE calendar_id = $1 AND cardinality(subscription_ids) = 0
      AND (cardinality($2::uuid[]) = 0 OR tag_ids && $2::uuid[])
      AND ($3::text IS NULL OR time_zone_tag IS NULL OR lower(time_zone_tag) = lower($3::text))
      AND ((cardinality($4::uuid[]) = 0 AND cardinality($5::text[]) = 0)
           OR event_id = ANY($4::uuid[]) OR external_id = ANY($5::text[]))
      AND NOT (event_id = ANY($6::uuid[]) OR coalesce(external_id = ANY($7::text[]), false))
      AND ($8::timestamptz IS NULL OR created_at <= $8::timestamptz)
)
SELECT coalesce((SELECT string_agg(block, ''::bytea ORDER BY start_utc, event_id) FROM chosen), ''::bytea) AS blocks,
       coalesce((SELECT array_agg(DISTINCT tzid) FROM chosen, unnest(chosen.tzids) AS tzid), '{}') AS tzids,
       (SELECT max(changed_at) FROM chosen) AS changed_at
"""


async def shared_section(conn: asyncpg.Connection, calendar_id: uuid.UUID, selection: EventFilter) -> asyncpg.Record:
    """The blocks a filter selects from a calendar, joined in feed order by the database, with their
    TZIDs and latest change: one value to decode, however many events (a popular calendar's 5,000
    rows decoded one by one would hold the event loop)."""
    row = await conn.fetchrow(
        _SHARED,
        calendar_id,
        list(selection.tag_ids),
        selection.time_zone_tag,
        list(selection.include_ids),
        list(selection.include_external),
        list(selection.exclude_ids),
        list(selection.exclude_external),
        selection.cutoff,
    )
    assert row is not None
    return row


async def private_events(
    conn: asyncpg.Connection, subscription_id: uuid.UUID, cutoff: datetime | None
) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT block, tzids, changed_at FROM feed.events WHERE subscription_ids @> ARRAY[$1]::uuid[]"
        " AND cardinality(subscription_ids) > 0 AND ($2::timestamptz IS NULL OR created_at <= $2::timestamptz)"
        " ORDER BY start_utc, event_id",
        subscription_id,
        cutoff,
    )


# --- the subscriber directory (services/feed/directory.py) -------------------------------------

SUBSCRIBER_COLUMNS = (
    "subscription_id, calendar_id, tag_ids, time_zone_tag, include_ids, include_external, exclude_ids,"
    " exclude_external, deactivated_at, feed_username, feed_password_hash, feed_version, feed_changed_at"
)


async def subscriber_count(conn: asyncpg.Connection, calendar_id: uuid.UUID) -> int:
    count: int = await conn.fetchval("SELECT count(*) FROM feed.subscriptions WHERE calendar_id = $1", calendar_id)
    return count


def subscribers(conn: asyncpg.Connection, calendar_id: uuid.UUID) -> Any:
    """A cursor over a calendar's subscriptions (inside the caller's transaction), read in batches."""
    return conn.cursor(f"SELECT {SUBSCRIBER_COLUMNS} FROM feed.subscriptions WHERE calendar_id = $1", calendar_id)


async def with_private_events(conn: asyncpg.Connection, subscription_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    """Those of the subscriptions that have events of their own (manual or subscription events)."""
    rows = await conn.fetch(
        "SELECT DISTINCT member FROM feed.events, unnest(subscription_ids) AS member"
        " WHERE cardinality(subscription_ids) > 0 AND subscription_ids && $1::uuid[]",
        list(subscription_ids),
    )
    wanted = set(subscription_ids)
    return {row["member"] for row in rows if row["member"] in wanted}
