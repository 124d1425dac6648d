"""The subscription queries on the hot paths, each one round trip: subscribe's lookup, the insert
that announces itself (one at a time, or the inserts of concurrent requests grouped into one
statement: `NewSubscriptionWriter`), and the whole of a subscription's read.

Each statement does what several did before (the request's cost was its round trips, not its
SQL). A single statement is atomic on its own, so the insert and its outbox rows commit together
without a BEGIN/COMMIT pair around them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from asyncpg import Record

from services.ingest.adapters.repository import SCHEMA
from shared.grouping import Grouped, in_asked_order
from shared.messages import Envelope

# Subscribe's lookup for many requests at once: each request's live calendar (its columns) with
# `merchant_name` and `existing_id`, tagged with the request's `asked_position` (from 1). Every account asked about is
# made on first use; the rows of this statement's own inserts are not visible to its SELECT, hence `seen`.
SUBSCRIBE_TARGETS = f"""
        WITH asked AS (
            SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[])
                WITH ORDINALITY AS a(account_id, account_code, code, subscriber_id, subscription_type, position)
        ), seen AS (
            INSERT INTO {SCHEMA}.accounts (account_id, account_code)
            SELECT DISTINCT ON (account_id) account_id, account_code FROM asked ORDER BY account_id
            ON CONFLICT (account_id) DO NOTHING RETURNING account_id, name
        )
        SELECT a.position AS asked_position, c.*,
            (SELECT name FROM seen WHERE seen.account_id = a.account_id
             UNION ALL SELECT name FROM {SCHEMA}.accounts m WHERE m.account_id = a.account_id LIMIT 1) AS merchant_name,
            (SELECT s.subscription_id FROM {SCHEMA}.subscriptions s
             WHERE s.calendar_id = c.calendar_id AND s.subscriber_id = a.subscriber_id AND s.active
               AND (c.single_subscription_per_subscriber OR s.subscription_type = a.subscription_type)
             LIMIT 1) AS existing_id
        FROM asked a JOIN {SCHEMA}.calendars c
            ON c.account_id = a.account_id AND lower(c.code) = lower(a.code) AND c.deleted_at IS NULL
        """


@dataclass(frozen=True)
class SubscribeTarget:
    """What subscribe looks up: the calendar `calendar_code` of the account, for the subscriber."""

    account_id: uuid.UUID
    account_code: str
    calendar_code: str
    subscriber_id: str | None
    subscription_type: str


async def subscribe_targets(conn: asyncpg.Connection, asked: Sequence[SubscribeTarget]) -> list[Record | None]:
    """For each target, in order: the live calendar of that code (its columns), with `merchant_name`
    (the account's name as auth announced it, NULL until then; the account row is made on first use)
    and `existing_id`: the subscriber's active subscription that a subscribe updates instead of
    creating one (any type when the calendar allows one subscription per subscriber). None when there
    is no such calendar."""
    rows = await conn.fetch(
        SUBSCRIBE_TARGETS,
        [t.account_id for t in asked],
        [t.account_code for t in asked],
        [t.calendar_code for t in asked],
        [t.subscriber_id for t in asked],
        [t.subscription_type for t in asked],
    )
    return in_asked_order(rows, len(asked))


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


@dataclass(frozen=True)
class NewSubscription:
    """One subscription to insert with its outbox rows (insert_announced_subscription's arguments)."""

    subscription_id: uuid.UUID
    account_id: uuid.UUID
    calendar_id: uuid.UUID
    subscription_type: str
    subscriber_id: str | None
    feed_username: str | None
    feed_password_hash: str | None
    feed_password_encrypted: str | None
    details: dict[str, Any]
    active: bool
    created_at: datetime
    envelopes: Sequence[Envelope]


async def insert_one(conn: asyncpg.Connection, new: NewSubscription) -> bool:
    """insert_announced_subscription of one NewSubscription."""
    return await insert_announced_subscription(
        conn,
        subscription_id=new.subscription_id,
        account_id=new.account_id,
        calendar_id=new.calendar_id,
        subscription_type=new.subscription_type,
        subscriber_id=new.subscriber_id,
        feed_username=new.feed_username,
        feed_password_hash=new.feed_password_hash,
        feed_password_encrypted=new.feed_password_encrypted,
        details=new.details,
        active=new.active,
        created_at=new.created_at,
        envelopes=new.envelopes,
    )


# The same insert as INSERT_ANNOUNCED for many subscriptions: each row inserted unless the unique index
# holds an active subscription of its subscriber (or an earlier row of the same statement is one), each
# outbox row only with its subscription; answers the ids inserted.
INSERT_ANNOUNCED_MANY = f"""
        WITH created AS (
            INSERT INTO {SCHEMA}.subscriptions (subscription_id, account_id, calendar_id, subscription_type,
                subscriber_id, feed_username, feed_password_hash, feed_password_encrypted, details, active,
                created_at, updated_at)
            SELECT n.subscription_id, n.account_id, n.calendar_id, n.subscription_type, n.subscriber_id,
                n.feed_username, n.feed_password_hash, n.feed_password_encrypted, n.details::jsonb, n.active,
                n.created_at, n.created_at
            FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[],
                $8::text[], $9::text[], $10::boolean[], $11::timestamptz[])
                WITH ORDINALITY AS n(subscription_id, account_id, calendar_id, subscription_type, subscriber_id,
                    feed_username, feed_password_hash, feed_password_encrypted, details, active, created_at, position)
            ORDER BY n.position
            ON CONFLICT (calendar_id, subscriber_id, subscription_type) WHERE active AND subscriber_id IS NOT NULL
            DO NOTHING
            RETURNING subscription_id
        ), announced AS (
            INSERT INTO {SCHEMA}.outbox (id, routing_key, body)
            SELECT m.id, m.routing_key, m.body
            FROM unnest($12::uuid[], $13::text[], $14::bytea[], $15::uuid[]) WITH ORDINALITY
                AS m(id, routing_key, body, subscription_id, position)
            WHERE m.subscription_id IN (SELECT subscription_id FROM created)
            ORDER BY m.position
        )
        SELECT subscription_id FROM created
        """


async def insert_many(conn: asyncpg.Connection, batch: Sequence[NewSubscription]) -> set[uuid.UUID]:
    """Insert the subscriptions and their outbox rows in one statement (all or nothing); the ids of
    those inserted. Rows go in in unique-index order, so two such statements (two processes) lock the
    index's keys in the same order and cannot deadlock on them."""
    ordered = sorted(batch, key=lambda n: (n.calendar_id, n.subscriber_id or "", n.subscription_type))
    envelopes = [(e, n.subscription_id) for n in ordered for e in n.envelopes]
    rows = await conn.fetch(
        INSERT_ANNOUNCED_MANY,
        [n.subscription_id for n in ordered],
        [n.account_id for n in ordered],
        [n.calendar_id for n in ordered],
        [n.subscription_type for n in ordered],
        [n.subscriber_id for n in ordered],
        [n.feed_username for n in ordered],
        [n.feed_password_hash for n in ordered],
        [n.feed_password_encrypted for n in ordered],
        [json.dumps(n.details) for n in ordered],
        [n.active for n in ordered],
        [n.created_at for n in ordered],
        [e.id for e, _ in envelopes],
        [e.type for e, _ in envelopes],
        [e.to_bytes() for e, _ in envelopes],
        [subscription_id for _, subscription_id in envelopes],
    )
    return {r["subscription_id"] for r in rows}


class NewSubscriptionWriter:
    """Inserts new subscriptions (with their outbox rows) for concurrent requests, grouped
    (shared.grouping): a commit for many, as PostgreSQL's group commit does for WAL flushes.

    Under load most of a new subscription's cost was its commit, not its SQL: the WAL flush, the
    foreign key's share lock on the calendar row that every concurrent insert also took, a NOTIFY.
    Each subscription still commits with its outbox rows, and is answered only after that commit;
    a grouped statement that fails is tried again one subscription at a time.
    """

    def __init__(self, pool: asyncpg.Pool, max_batch: int = 100) -> None:
        self._pool = pool
        self._grouped: Grouped[NewSubscription, bool] = Grouped(
            self._insert_many, self._insert_one, max_group=max_batch, name="ingest-new-subscriptions"
        )

    @property
    def statements(self) -> int:
        """Grouped statements sent (tests and benchmarks read it)."""
        return self._grouped.calls

    async def insert(self, new: NewSubscription) -> bool:
        """True once the subscription and its outbox rows are committed; False (nothing written) when
        the subscriber already has an active subscription of that type (see insert_announced_subscription)."""
        return await self._grouped(new)

    async def _insert_many(self, batch: list[NewSubscription]) -> list[bool]:
        async with self._pool.acquire() as conn:
            inserted = await insert_many(conn, batch)
        return [new.subscription_id in inserted for new in batch]

    async def _insert_one(self, new: NewSubscription) -> bool:
        async with self._pool.acquire() as conn:
            return await insert_one(conn, new)


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
        WHERE s.subscription_id = ANY($1::uuid[])
        """


async def subscriptions_with_calendar(
    conn: asyncpg.Connection, subscription_ids: Sequence[uuid.UUID]
) -> list[Record | None]:
    """Each subscription's columns with its calendar's `calendar_code`, `calendar_name` and
    `calendar_image`, `tags` (tag_id, name, external_id of those its filter names) and `manual` (its
    manual events' data, oldest first), in the order asked; None for an id with no subscription.
    Flat columns, not row values: asyncpg cannot decode a composite that holds a text-codec jsonb."""
    rows = await conn.fetch(SUBSCRIPTION_WITH_CALENDAR, subscription_ids)
    by_id = {r["subscription_id"]: r for r in rows}
    return [by_id.get(i) for i in subscription_ids]
