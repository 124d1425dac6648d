"""The sync schema's Google rows: consents (single-use, by nonce) and Google connections."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg

from services.sync.adapters.repository import CHANNEL


async def insert_consent(
    conn: asyncpg.Connection,
    *,
    nonce: str,
    subscription_id: uuid.UUID,
    account_id: uuid.UUID,
    subscriber_id: str | None,
    redirect_to: str,
    verifier: str,
    subscription: dict[str, Any] | None,
    expires_at: datetime,
) -> None:
    await conn.execute(
        "INSERT INTO sync.google_consents (nonce, subscription_id, account_id, subscriber_id, redirect_to,"
        " verifier, subscription, is_new, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9)",
        nonce,
        subscription_id,
        account_id,
        subscriber_id,
        redirect_to,
        verifier,
        subscription,
        subscription is not None,
        expires_at,
    )


async def use_consent(conn: asyncpg.Connection, nonce: str) -> asyncpg.Record | None:
    """The consent, marked used; None when there is none or it was used already (a replay)."""
    return await conn.fetchrow(
        "UPDATE sync.google_consents SET used_at = now() WHERE nonce = $1 AND used_at IS NULL RETURNING *",
        nonce,
    )


async def google_connection(conn: asyncpg.Connection, account_id: uuid.UUID, email: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM sync.connections WHERE provider = 'google' AND account_id = $1 AND remote_user = $2 FOR UPDATE",
        account_id,
        email,
    )


async def reconnect(conn: asyncpg.Connection, connection_id: uuid.UUID, credentials: str) -> None:
    """New tokens after a consent: the connection works again (it may have needed consent)."""
    await conn.execute(
        "UPDATE sync.connections SET credentials = $2, state = 'active', reason = NULL, blocked_until = NULL,"
        " updated_at = now() WHERE connection_id = $1",
        connection_id,
        credentials,
    )


async def retarget(conn: asyncpg.Connection, subscription_id: uuid.UUID, connection_id: uuid.UUID) -> None:
    """After a re-consent: push through this connection again; a different Google user gets a new calendar."""
    await conn.execute(
        "DELETE FROM sync.pushed WHERE subscription_id = $1 AND EXISTS (SELECT 1 FROM sync.targets"
        " WHERE subscription_id = $1 AND connection_id <> $2)",
        subscription_id,
        connection_id,
    )
    await conn.execute(
        "UPDATE sync.targets SET state = 'active', reason = NULL, failures = 0, updated_at = now(),"
        " remote_calendar_id = CASE WHEN connection_id = $2 THEN remote_calendar_id END,"
        " connection_id = $2 WHERE subscription_id = $1",
        subscription_id,
        connection_id,
    )


async def needs_consent(conn: asyncpg.Connection, subscription_id: uuid.UUID) -> asyncpg.Record | None:
    # (The caller checked the subscription is the requesting account's.)
    """The Google target of this subscription when it waits for a new consent, with the user's email."""
    return await conn.fetchrow(
        "SELECT t.subscription_id, c.remote_user FROM sync.targets t JOIN sync.connections c USING (connection_id)"
        " WHERE t.subscription_id = $1 AND c.provider = 'google'"
        " AND (c.state = 'needs_consent' OR t.state = 'needs_consent')",
        subscription_id,
    )


async def other_active_subscriptions(conn: asyncpg.Connection, email: str, subscription_id: uuid.UUID) -> int:
    """Active subscriptions, of any merchant, pushed to this Google user besides `subscription_id`."""
    count: int = await conn.fetchval(
        "SELECT count(*) FROM sync.targets t JOIN sync.connections c USING (connection_id)"
        " JOIN sync.subscriptions s USING (subscription_id)"
        " WHERE c.provider = 'google' AND c.remote_user = $1 AND t.subscription_id <> $2"
        " AND s.active AND t.state = 'active' AND c.state = 'active'",
        email,
        subscription_id,
    )
    return count


async def google_connections_of(conn: asyncpg.Connection, email: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT * FROM sync.connections WHERE provider = 'google' AND remote_user = $1 AND state <> 'released'",
        email,
    )


async def hold_claim(conn: asyncpg.Connection, subscription_id: uuid.UUID, seconds: float) -> None:
    """Keep the push engine off this subscription while the callback pushes it."""
    await conn.execute(
        "INSERT INTO sync.push_queue (subscription_id, claimed_until) VALUES ($1, now() + make_interval(secs => $2))"
        " ON CONFLICT (subscription_id) DO UPDATE SET claimed_until = EXCLUDED.claimed_until",
        subscription_id,
        seconds,
    )


async def release_claim(conn: asyncpg.Connection, subscription_id: uuid.UUID) -> None:
    """The callback is done: the engine looks once more (a no-op when everything was pushed)."""
    await conn.execute(
        "UPDATE sync.push_queue SET claimed_until = NULL, due_at = now() WHERE subscription_id = $1",
        subscription_id,
    )
    await conn.execute("SELECT pg_notify($1, '')", CHANNEL)


async def subscriptions_of(conn: asyncpg.Connection, connection_id: uuid.UUID) -> list[uuid.UUID]:
    rows = await conn.fetch("SELECT subscription_id FROM sync.targets WHERE connection_id = $1", connection_id)
    return [r["subscription_id"] for r in rows]
