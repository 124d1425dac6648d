"""The subscription queries on the hot paths, each one round trip: subscribe's lookup, the insert
that announces itself, and the whole of a subscription's read.

Each statement does what several did before (the request's cost was its round trips, not its
SQL). A single statement is atomic on its own, so the insert and its outbox rows commit together
without a BEGIN/COMMIT pair around them.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg
from asyncpg import Record

from services.ingest.adapters.repository import SCHEMA
from shared.messages import Envelope

SUBSCRIBE_TARGET = f"""
        WITH seen AS (
            INSERT INTO {SCHEMA}.accounts (account_id, account_code) VALUES ($1, $2)
            ON CONFLICT (account_id) DO NOTHING RETURNING name
        ), merchant AS (
            SELECT name FROM seen UNION ALL SELECT name FROM {SCHEMA}.accounts WHERE account_id = $1
        )
        SELECT c.*, (SELECT name FROM merchant LIMIT 1) AS merchant_name,
            (SELECT s.subscription_id FROM {SCHEMA}.subscriptions s
             WHERE s.calendar_id = c.calendar_id AND s.subscriber_id = $4 AND s.active
               AND (c.single_subscription_per_subscriber OR s.subscription_type = $5)
             LIMIT 1) AS existing_id
        FROM {SCHEMA}.calendars c
        WHERE c.account_id = $1 AND lower(c.code) = lower($3) AND c.deleted_at IS NULL
        """


async def subscribe_target(
    conn: asyncpg.Connection,
    account_id: uuid.UUID,
    account_code: str,
    calendar_code: str,
    subscriber_id: str | None,
    subscription_type: str,
) -> Record | None:
    """The live calendar of that code (its columns), with `merchant_name` (the account's name as auth
    announced it, NULL until then; the account row is made on first use) and `existing_id`: the
    subscriber's active subscription that a subscribe updates instead of creating one (any type when
    the calendar allows one subscription per subscriber). None when there is no such calendar."""
    return await conn.fetchrow(
        SUBSCRIBE_TARGET,
        account_id,
        account_code,
        calendar_code,
        subscriber_id,
        subscription_type,
    )


INSERT_ANNOUNCED = f"""
        WITH created AS (
            INSERT INTO {SCHEMA}.subscriptions (subscription_id, account_id, calendar_id, subscription_type,
                subscriber_id, feed_username, feed_password_hash, feed_password_encrypted, details, active,
                created_at, updated_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)
            ON CONFLICT (calendar_id, subscriber_id, subscription_type) WHERE active AND subscriber_id IS NOT NULL
            DO NOTHING
            RETURNING subscription_id
        ), announced AS (
            INSERT INTO {SCHEMA}.outbox (id, routing_key, body)
            SELECT m.id, m.routing_key, m.body
            FROM unnest($12::uuid[], $13::text[], $14::bytea[]) AS m(id, routing_key, body)
            WHERE EXISTS (SELECT 1 FROM created)
        )
        SELECT count(*) FROM created
        """


async def insert_announced_subscription(
    conn: asyncpg.Connection,
    *,
    subscription_id: uuid.UUID,
    account_id: uuid.UUID,
    calendar_id: uuid.UUID,
    subscription_type: str,
    subscriber_id: str | None,
    feed_username: str | None,
    feed_password_hash: str | None,
    feed_password_encrypted: str | None,
    details: dict[str, Any],
    active: bool,
    created_at: datetime,
    envelopes: Sequence[Envelope],
) -> bool:
    """Insert the subscription and its outbox rows in one statement; False (and nothing written) when
    the same subscriber got an active subscription of that type in the meantime (the unique index).

    The outbox rows are those `shared.outbox.enqueue` writes (id, routing key, body), inserted only
    when the subscription was; the table's statement trigger wakes the relay at commit as usual.
    """
    inserted = await conn.fetchval(
        INSERT_ANNOUNCED,
        subscription_id,
        account_id,
        calendar_id,
        subscription_type,
        subscriber_id,
        feed_username,
        feed_password_hash,
        feed_password_encrypted,
        details,
        active,
        created_at,
        [e.id for e in envelopes],
        [e.type for e in envelopes],
        [e.to_bytes() for e in envelopes],
    )
    return bool(inserted)


SUBSCRIPTION_WITH_CALENDAR = f"""
        SELECT s.*, c.code AS calendar_code, c.name AS calendar_name, c.image AS calendar_image,
            coalesce((
                SELECT jsonb_agg(jsonb_build_object('tag_id', t.tag_id, 'name', t.name, 'external_id', t.external_id))
                FROM {SCHEMA}.tags t
                -- = ANY(ARRAY(...)), not IN (SELECT ...): the planner guessed 100 rows from the set-returning
                -- function and scanned every tag (5 ms on the seeded database) instead of the primary key.
                WHERE t.tag_id = ANY(ARRAY(SELECT jsonb_array_elements_text(s.details -> 'tag_ids')::uuid))
            ), '[]'::jsonb) AS tags,
            coalesce((
                SELECT jsonb_agg(e.data ORDER BY e.created_at) FROM {SCHEMA}.events e
                WHERE e.kind = 'manual' AND e.subscription_id = s.subscription_id
            ), '[]'::jsonb) AS manual
        FROM {SCHEMA}.subscriptions s JOIN {SCHEMA}.calendars c ON c.calendar_id = s.calendar_id
        WHERE s.subscription_id = $1
        """


async def subscription_with_calendar(conn: asyncpg.Connection, subscription_id: uuid.UUID) -> Record | None:
    """The subscription's columns with its calendar's `calendar_code`, `calendar_name` and
    `calendar_image`, `tags` (tag_id, name, external_id of those its filter names) and `manual` (its
    manual events' data, oldest first); None when there is no such subscription. Flat columns, not
    row values: asyncpg cannot decode a composite that holds a text-codec jsonb."""
    return await conn.fetchrow(
        SUBSCRIPTION_WITH_CALENDAR,
        subscription_id,
    )
