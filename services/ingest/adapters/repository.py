"""The ingest schema in PostgreSQL: every query of the service, each taking the caller's connection.

Callers own the transaction; `for_update` variants lock the row they read so concurrent writers of
the same calendar, event or subscription apply one after the other.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg
from asyncpg import Record

SCHEMA = "ingest"


# --- accounts -----------------------------------------------------------------------------------


async def merchant_name(conn: asyncpg.Connection, account_id: uuid.UUID, account_code: str) -> str:
    """The account's name as auth announced it; its code until then (the row is made on first use)."""
    name = await conn.fetchval(
        f"""
        WITH seen AS (
            INSERT INTO {SCHEMA}.accounts (account_id, account_code) VALUES ($1, $2)
            ON CONFLICT (account_id) DO NOTHING RETURNING name
        )
        SELECT name FROM seen UNION ALL SELECT name FROM {SCHEMA}.accounts WHERE account_id = $1
        """,
        account_id,
        account_code,
    )
    return str(name) if name else account_code


async def save_account(conn: asyncpg.Connection, account_id: uuid.UUID, account_code: str, name: str) -> None:
    await conn.execute(
        f"""
        INSERT INTO {SCHEMA}.accounts (account_id, account_code, name) VALUES ($1, $2, $3)
        ON CONFLICT (account_id) DO UPDATE
            SET account_code = EXCLUDED.account_code, name = EXCLUDED.name, updated_at = now()
        """,
        account_id,
        account_code,
        name,
    )


# --- calendars ----------------------------------------------------------------------------------

CALENDAR_COLUMNS = (
    "name",
    "description",
    "image",
    "color",
    "timezone",
    "protected",
    "refresh_interval",
    "single_subscription_per_subscriber",
    "subscribe_page",
)


async def insert_calendar(
    conn: asyncpg.Connection, account_id: uuid.UUID, code: str, values: dict[str, Any]
) -> Record | None:
    """The new calendar, or None when the account already has a live calendar of that code."""
    columns = [c for c in CALENDAR_COLUMNS if c in values]
    placeholders = ", ".join(f"${i + 4}" for i in range(len(columns)))
    return await conn.fetchrow(
        f"""
        INSERT INTO {SCHEMA}.calendars (calendar_id, account_id, code{"".join(", " + c for c in columns)})
        VALUES ($1, $2, $3{", " + placeholders if columns else ""})
        ON CONFLICT (account_id, lower(code)) WHERE deleted_at IS NULL DO NOTHING
        RETURNING *
        """,
        uuid.uuid4(),
        account_id,
        code,
        *(values[c] for c in columns),
    )


async def calendar_by_code(
    conn: asyncpg.Connection, account_id: uuid.UUID, code: str, *, for_update: bool = False
) -> Record | None:
    lock = " FOR UPDATE" if for_update else ""
    return await conn.fetchrow(
        f"SELECT * FROM {SCHEMA}.calendars WHERE account_id = $1 AND lower(code) = lower($2)"
        f" AND deleted_at IS NULL{lock}",
        account_id,
        code,
    )


async def calendar_by_id(conn: asyncpg.Connection, calendar_id: uuid.UUID) -> Record | None:
    return await conn.fetchrow(f"SELECT * FROM {SCHEMA}.calendars WHERE calendar_id = $1", calendar_id)


async def list_calendars(conn: asyncpg.Connection, account_id: uuid.UUID) -> list[Record]:
    return await conn.fetch(
        f"SELECT * FROM {SCHEMA}.calendars WHERE account_id = $1 AND deleted_at IS NULL ORDER BY created_at, code",
        account_id,
    )


async def update_calendar(conn: asyncpg.Connection, calendar_id: uuid.UUID, values: dict[str, Any]) -> Record:
    columns = [c for c in CALENDAR_COLUMNS if c in values]
    assignments = "".join(f", {c} = ${i + 2}" for i, c in enumerate(columns))
    row = await conn.fetchrow(
        f"UPDATE {SCHEMA}.calendars SET version = version + 1, updated_at = now(){assignments}"
        " WHERE calendar_id = $1 RETURNING *",
        calendar_id,
        *(values[c] for c in columns),
    )
    assert row is not None
    return row


async def delete_calendar(conn: asyncpg.Connection, calendar_id: uuid.UUID) -> Record:
    row = await conn.fetchrow(
        f"UPDATE {SCHEMA}.calendars SET version = version + 1, updated_at = now(), deleted_at = now()"
        " WHERE calendar_id = $1 RETURNING *",
        calendar_id,
    )
    assert row is not None
    return row


# --- events -------------------------------------------------------------------------------------


async def calendar_event(
    conn: asyncpg.Connection, calendar_id: uuid.UUID, key: str, *, for_update: bool = False
) -> Record | None:
    """A calendar's event by its id or by the merchant's external id (live or cancelled)."""
    lock = " FOR UPDATE" if for_update else ""
    try:
        event_id: uuid.UUID | None = uuid.UUID(key)
    except ValueError:
        event_id = None
    if event_id is not None:
        row = await conn.fetchrow(
            f"SELECT * FROM {SCHEMA}.events WHERE kind = 'calendar' AND calendar_id = $1 AND event_id = $2{lock}",
            calendar_id,
            event_id,
        )
        if row is not None:
            return row
    return await conn.fetchrow(
        f"SELECT * FROM {SCHEMA}.events WHERE kind = 'calendar' AND calendar_id = $1 AND external_id = $2{lock}",
        calendar_id,
        key,
    )


async def manual_event(conn: asyncpg.Connection, subscription_id: uuid.UUID, external_id: str) -> Record | None:
    return await conn.fetchrow(
        f"SELECT * FROM {SCHEMA}.events WHERE kind = 'manual' AND subscription_id = $1 AND external_id = $2 FOR UPDATE",
        subscription_id,
        external_id,
    )


async def subscription_event(conn: asyncpg.Connection, account_id: uuid.UUID, external_id: str) -> Record | None:
    return await conn.fetchrow(
        f"SELECT * FROM {SCHEMA}.events WHERE kind = 'subscription' AND account_id = $1 AND external_id = $2"
        " FOR UPDATE",
        account_id,
        external_id,
    )


async def insert_event(
    conn: asyncpg.Connection,
    *,
    event_id: uuid.UUID,
    kind: str,
    account_id: uuid.UUID,
    calendar_id: uuid.UUID | None,
    subscription_id: uuid.UUID | None,
    external_id: str | None,
    data: dict[str, Any],
) -> Record | None:
    """The new event, or None when another writer stored the same external id first."""
    return await conn.fetchrow(
        f"""
        INSERT INTO {SCHEMA}.events
            (event_id, kind, account_id, calendar_id, subscription_id, external_id, sequence, data)
        VALUES ($1, $2, $3, $4, $5, $6, 0, $7)
        ON CONFLICT DO NOTHING
        RETURNING *
        """,
        event_id,
        kind,
        account_id,
        calendar_id,
        subscription_id,
        external_id,
        data,
    )


async def update_event(
    conn: asyncpg.Connection, event_id: uuid.UUID, sequence: int, data: dict[str, Any], *, deleted: bool
) -> Record:
    row = await conn.fetchrow(
        f"""
        UPDATE {SCHEMA}.events SET sequence = $2, data = $3, updated_at = now(),
            deleted_at = CASE WHEN $4 THEN coalesce(deleted_at, now()) END
        WHERE event_id = $1 RETURNING *
        """,
        event_id,
        sequence,
        data,
        deleted,
    )
    assert row is not None
    return row


async def list_calendar_events(
    conn: asyncpg.Connection, calendar_id: uuid.UUID, *, limit: int, offset: int
) -> list[Record]:
    return await conn.fetch(
        f"SELECT * FROM {SCHEMA}.events WHERE kind = 'calendar' AND calendar_id = $1 AND deleted_at IS NULL"
        " ORDER BY created_at, event_id LIMIT $2 OFFSET $3",
        calendar_id,
        limit,
        offset,
    )


async def calendar_events_matching(
    conn: asyncpg.Connection, calendar_id: uuid.UUID, ids: Sequence[uuid.UUID], external_ids: Sequence[str]
) -> list[Record]:
    """The calendar's live events whose id is in `ids` or whose external id is in `external_ids`."""
    if not ids and not external_ids:
        return []
    return await conn.fetch(
        f"""
        SELECT event_id, external_id, data->>'title' AS title FROM {SCHEMA}.events
        WHERE kind = 'calendar' AND calendar_id = $1 AND deleted_at IS NULL
          AND (event_id = ANY($2::uuid[]) OR external_id = ANY($3::text[]))
        """,
        calendar_id,
        list(ids),
        list(external_ids),
    )


async def manual_event_ids(conn: asyncpg.Connection, subscription_id: uuid.UUID) -> set[str]:
    """The external ids of the subscription's live manual events."""
    rows = await conn.fetch(
        f"SELECT external_id FROM {SCHEMA}.events"
        " WHERE kind = 'manual' AND subscription_id = $1 AND deleted_at IS NULL",
        subscription_id,
    )
    return {r["external_id"] for r in rows}


async def lock_calendar(conn: asyncpg.Connection, calendar_id: uuid.UUID) -> None:
    """Serialise the calendar's event inserts (the per-calendar cap is counted under this lock)."""
    await conn.execute(f"SELECT 1 FROM {SCHEMA}.calendars WHERE calendar_id = $1 FOR UPDATE", calendar_id)


async def count_calendar_events(conn: asyncpg.Connection, calendar_id: uuid.UUID) -> int:
    count: int = await conn.fetchval(
        f"SELECT count(*) FROM {SCHEMA}.events WHERE kind = 'calendar' AND calendar_id = $1 AND deleted_at IS NULL",
        calendar_id,
    )
    return count


async def manual_events(conn: asyncpg.Connection, subscription_id: uuid.UUID) -> list[Record]:
    return await conn.fetch(
        f"SELECT * FROM {SCHEMA}.events WHERE kind = 'manual' AND subscription_id = $1 ORDER BY created_at",
        subscription_id,
    )


# --- subscriptions ------------------------------------------------------------------------------


async def insert_subscription(
    conn: asyncpg.Connection,
    *,
    active: bool = True,
    subscription_id: uuid.UUID,
    account_id: uuid.UUID,
    calendar_id: uuid.UUID,
    subscription_type: str,
    subscriber_id: str | None,
    feed_username: str | None,
    feed_password_hash: str | None,
    details: dict[str, Any],
) -> Record | None:
    """The new subscription, or None when the same subscriber got an active one in the meantime."""
    return await conn.fetchrow(
        f"""
        INSERT INTO {SCHEMA}.subscriptions (subscription_id, account_id, calendar_id, subscription_type,
            subscriber_id, feed_username, feed_password_hash, details, active)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
        ON CONFLICT (calendar_id, subscriber_id, subscription_type) WHERE active AND subscriber_id IS NOT NULL
        DO NOTHING
        RETURNING *
        """,
        subscription_id,
        account_id,
        calendar_id,
        subscription_type,
        subscriber_id,
        feed_username,
        feed_password_hash,
        details,
        active,
    )


async def active_subscription_of(
    conn: asyncpg.Connection, calendar_id: uuid.UUID, subscriber_id: str, subscription_type: str | None
) -> Record | None:
    """The subscriber's active subscription of that type (any type when None), locked."""
    return await conn.fetchrow(
        f"""
        SELECT * FROM {SCHEMA}.subscriptions
        WHERE calendar_id = $1 AND subscriber_id = $2 AND active AND ($3::text IS NULL OR subscription_type = $3)
        ORDER BY created_at DESC LIMIT 1 FOR UPDATE
        """,
        calendar_id,
        subscriber_id,
        subscription_type,
    )


async def subscription_by_id(
    conn: asyncpg.Connection, subscription_id: uuid.UUID, *, for_update: bool = False
) -> Record | None:
    lock = " FOR UPDATE" if for_update else ""
    return await conn.fetchrow(
        f"SELECT * FROM {SCHEMA}.subscriptions WHERE subscription_id = $1{lock}", subscription_id
    )


async def subscriptions_of_username(
    conn: asyncpg.Connection, calendar_id: uuid.UUID, username: str, *, active_only: bool = False
) -> list[Record]:
    lock = " AND active FOR UPDATE" if active_only else ""
    return await conn.fetch(
        f"SELECT * FROM {SCHEMA}.subscriptions WHERE calendar_id = $1 AND subscriber_id = $2"
        f" ORDER BY created_at, subscription_id{lock}",
        calendar_id,
        username,
    )


async def save_subscription(
    conn: asyncpg.Connection,
    subscription_id: uuid.UUID,
    *,
    subscription_type: str,
    feed_username: str | None,
    feed_password_hash: str | None,
    details: dict[str, Any],
) -> Record:
    row = await conn.fetchrow(
        f"""
        UPDATE {SCHEMA}.subscriptions SET subscription_type = $2, feed_username = $3, feed_password_hash = $4,
            details = $5, version = version + 1, updated_at = now()
        WHERE subscription_id = $1 RETURNING *
        """,
        subscription_id,
        subscription_type,
        feed_username,
        feed_password_hash,
        details,
    )
    assert row is not None
    return row


async def deactivate_subscription(
    conn: asyncpg.Connection, subscription_id: uuid.UUID, details: dict[str, Any]
) -> Record:
    row = await conn.fetchrow(
        f"""
        UPDATE {SCHEMA}.subscriptions SET active = false, deactivated_at = now(), details = $2,
            version = version + 1, updated_at = now()
        WHERE subscription_id = $1 RETURNING *
        """,
        subscription_id,
        details,
    )
    assert row is not None
    return row


async def subscriptions_of_account(
    conn: asyncpg.Connection, account_id: uuid.UUID, subscription_ids: Sequence[uuid.UUID]
) -> list[Record]:
    """Those of `subscription_ids` that belong to the account, in the order given."""
    return await conn.fetch(
        f"""
        SELECT s.subscription_id, s.calendar_id, s.active FROM unnest($2::uuid[]) WITH ORDINALITY AS wanted(id, n)
        JOIN {SCHEMA}.subscriptions s ON s.subscription_id = wanted.id AND s.account_id = $1
        ORDER BY wanted.n
        """,
        account_id,
        list(subscription_ids),
    )


async def account_by_code(conn: asyncpg.Connection, account_code: str) -> Record | None:
    """The account of this code as ingest knows it (from auth's account.created, or its first use)."""
    return await conn.fetchrow(
        f"SELECT account_id, account_code FROM {SCHEMA}.accounts WHERE lower(account_code) = lower($1)"
        " ORDER BY updated_at DESC LIMIT 1",
        account_code,
    )


async def account_of(conn: asyncpg.Connection, account_id: uuid.UUID) -> Record | None:
    return await conn.fetchrow(f"SELECT * FROM {SCHEMA}.accounts WHERE account_id = $1", account_id)


async def activate_subscription(
    conn: asyncpg.Connection, subscription_id: uuid.UUID, details: dict[str, Any]
) -> Record | None:
    """A Google subscription after its consent: active, with its Google account in `details`.
    None when the subscriber has another active subscription of the same type (unique index)."""
    try:
        async with conn.transaction():
            return await conn.fetchrow(
                f"""
                UPDATE {SCHEMA}.subscriptions SET active = true, details = $2, version = version + 1,
                    updated_at = now()
                WHERE subscription_id = $1 RETURNING *
                """,
                subscription_id,
                details,
            )
    except asyncpg.UniqueViolationError:
        return None
