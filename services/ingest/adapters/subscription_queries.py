"""The subscription queries on the hot paths, each one round trip: subscribe's lookup, the insert
that announces itself (one at a time, or the inserts of concurrent requests grouped into one
statement: `NewSubscriptionWriter`), and the whole of a subscription's read.

Each statement does what several did before (the request's cost was its round trips, not its
SQL). A single statement is atomic on its own, so the insert and its outbox rows commit together
without a BEGIN/COMMIT pair around them.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
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
    """Inserts new subscriptions (with their outbox rows) for concurrent requests, grouped: a commit
    for many, as PostgreSQL's group commit does for WAL flushes.

    Under load most of a new subscription's cost was its commit, not its SQL: the WAL flush, the
    foreign key's share lock on the calendar row that every concurrent insert also took, a NOTIFY.
    `insert` queues its subscription and waits; one statement at a time (insert_many) takes every
    subscription queued so far. A lone request waits for nothing (the writer is idle, its statement
    goes at once); under load, requests queue while the previous statement commits and go together in
    the next. Each subscription still commits with its outbox rows, and is answered only after that
    commit. When a grouped statement fails (a row the database refuses, a deadlock with another
    process), each of its subscriptions is tried alone, so one bad row fails only its own request.
    """

    def __init__(self, pool: asyncpg.Pool, max_batch: int = 100) -> None:
        self._pool = pool
        self._max_batch = max_batch
        self._queued: list[tuple[NewSubscription, asyncio.Future[bool]]] = []
        self._writing: asyncio.Task[None] | None = None
        self.statements = 0  # grouped statements sent (tests and benchmarks read it)

    async def insert(self, new: NewSubscription) -> bool:
        """True once the subscription and its outbox rows are committed; False (nothing written) when
        the subscriber already has an active subscription of that type (see insert_announced_subscription)."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queued.append((new, future))
        if self._writing is None:
            self._writing = asyncio.create_task(self._write_queued(), name="ingest-new-subscriptions")
        return await future

    async def _write_queued(self) -> None:
        batch: list[tuple[NewSubscription, asyncio.Future[bool]]] = []
        try:
            while self._queued:
                batch, self._queued = self._queued[: self._max_batch], self._queued[self._max_batch :]
                await self._write(batch)
                batch = []
        finally:
            self._writing = None
            # Cancelled (the app stopping): what waits fails now rather than waiting for ever.
            waiting, self._queued = [*batch, *self._queued], []
            for _, future in waiting:
                if not future.done():
                    future.cancel()

    async def _write(self, batch: list[tuple[NewSubscription, asyncio.Future[bool]]]) -> None:
        self.statements += 1
        try:
            async with self._pool.acquire() as conn:
                inserted = await insert_many(conn, [new for new, _ in batch])
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0][1], error=exc)
            else:
                await asyncio.gather(*(self._write_alone(new, future) for new, future in batch))
            return
        for new, future in batch:
            _settle(future, new.subscription_id in inserted)

    async def _write_alone(self, new: NewSubscription, future: asyncio.Future[bool]) -> None:
        try:
            async with self._pool.acquire() as conn:
                inserted = await insert_one(conn, new)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            _settle(future, error=exc)
        else:
            _settle(future, inserted)


def _settle(future: asyncio.Future[bool], result: bool = False, *, error: BaseException | None = None) -> None:
    """Answer a waiting request (unless it has gone: a cancelled request's future is done)."""
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


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
