"""The sync schema in PostgreSQL: the mirror the projection writes, connections, targets, pushed
state and the push queue. Every function takes a connection; the caller owns the transaction.

Marking a subscription in `push_queue` and the NOTIFY that wakes the engine happen in the caller's
transaction, so the engine hears of a change only once it is committed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from shared import mirror

SCHEMA = "sync"
CHANNEL = "sync_push"


async def _upsert(conn: asyncpg.Connection, table: str, key: str, values: dict[str, Any]) -> None:
    await mirror.upsert(conn, SCHEMA, table, key, values)


# --- the push queue -----------------------------------------------------------------------------


async def mark(conn: asyncpg.Connection, subscription_ids: Iterable[uuid.UUID]) -> int:
    """Queue these subscriptions for a reconciliation (only those pushed somewhere); wakes the engine."""
    ids = sorted(set(subscription_ids))
    if not ids:
        return 0
    result: str = await conn.execute(
        "INSERT INTO sync.push_queue (subscription_id)"
        " SELECT subscription_id FROM sync.targets WHERE subscription_id = ANY($1::uuid[]) AND state = 'active'"
        # One lock order for every marking transaction, so two of them never wait on each other.
        " ORDER BY subscription_id"
        " ON CONFLICT (subscription_id) DO UPDATE SET marks = sync.push_queue.marks + 1",
        ids,
    )
    count = int(result.split()[-1])
    if count:
        await conn.execute("SELECT pg_notify($1, '')", CHANNEL)
    return count


async def mark_calendar(conn: asyncpg.Connection, calendar_id: uuid.UUID) -> int:
    """Queue every pushed subscription of a calendar (a calendar event changed)."""
    rows = await conn.fetch(
        "SELECT s.subscription_id FROM sync.subscriptions s JOIN sync.targets t USING (subscription_id)"
        " WHERE s.calendar_id = $1 AND s.active AND t.state = 'active'",
        calendar_id,
    )
    return await mark(conn, [r["subscription_id"] for r in rows])


@dataclass(frozen=True)
class Claim:
    subscription_id: uuid.UUID
    marks: int


async def claim_due(conn: asyncpg.Connection, limit: int, lease: float) -> list[Claim]:
    """Up to `limit` due subscriptions nobody holds, oldest first, leased for `lease` seconds.

    A subscription whose remote user is in backoff (connections.blocked_until) is not due."""
    rows = await conn.fetch(
        "WITH due AS ("
        "  SELECT q.subscription_id FROM sync.push_queue q"
        "  JOIN sync.targets t USING (subscription_id) JOIN sync.connections c USING (connection_id)"
        "  WHERE q.due_at <= now() AND (q.claimed_until IS NULL OR q.claimed_until < now())"
        "    AND (c.blocked_until IS NULL OR c.blocked_until <= now())"
        "  ORDER BY q.due_at LIMIT $1 FOR UPDATE OF q SKIP LOCKED)"
        " UPDATE sync.push_queue q SET claimed_until = now() + make_interval(secs => $2)"
        " FROM due WHERE q.subscription_id = due.subscription_id RETURNING q.subscription_id, q.marks",
        limit,
        lease,
    )
    return [Claim(r["subscription_id"], r["marks"]) for r in rows]


async def extend_claim(conn: asyncpg.Connection, subscription_id: uuid.UUID, lease: float) -> None:
    await conn.execute(
        "UPDATE sync.push_queue SET claimed_until = now() + make_interval(secs => $2) WHERE subscription_id = $1",
        subscription_id,
        lease,
    )


async def finish(conn: asyncpg.Connection, claim: Claim) -> bool:
    """Done with a claim: the row goes unless it was marked again meanwhile (then it is due again)."""
    deleted = await conn.fetchval(
        "DELETE FROM sync.push_queue WHERE subscription_id = $1 AND marks = $2 RETURNING true",
        claim.subscription_id,
        claim.marks,
    )
    if not deleted:
        await conn.execute(
            "UPDATE sync.push_queue SET claimed_until = NULL, due_at = now() WHERE subscription_id = $1",
            claim.subscription_id,
        )
    return bool(deleted)


async def release(conn: asyncpg.Connection, subscription_ids: list[uuid.UUID]) -> None:
    """Give claims back unfinished (a worker stopping): due again now, for any worker."""
    await conn.execute(
        "UPDATE sync.push_queue SET claimed_until = NULL WHERE subscription_id = ANY($1::uuid[])",
        subscription_ids,
    )


async def retry_at(conn: asyncpg.Connection, subscription_id: uuid.UUID, due_at: datetime) -> None:
    await conn.execute(
        "UPDATE sync.push_queue SET claimed_until = NULL, due_at = $2 WHERE subscription_id = $1",
        subscription_id,
        due_at,
    )


async def drop(conn: asyncpg.Connection, subscription_id: uuid.UUID) -> None:
    await conn.execute("DELETE FROM sync.push_queue WHERE subscription_id = $1", subscription_id)


async def queue_length(conn: asyncpg.Connection) -> int:
    count: int = await conn.fetchval("SELECT count(*) FROM sync.push_queue")
    return count


# --- the mirror: calendars, events, subscriptions ----------------------------------------------


async def calendar_version_of(conn: asyncpg.Connection, calendar_id: uuid.UUID) -> int | None:
    return await mirror.version_for_update(conn, SCHEMA, "calendars", "calendar_id", calendar_id)


async def upsert_calendar(conn: asyncpg.Connection, values: dict[str, Any]) -> None:
    await _upsert(conn, "calendars", "calendar_id", values)


async def mark_calendar_deleted(conn: asyncpg.Connection, calendar_id: uuid.UUID, version: int) -> None:
    await conn.execute(
        "UPDATE sync.calendars SET deleted = true, version = $2 WHERE calendar_id = $1", calendar_id, version
    )


async def calendar(conn: asyncpg.Connection, calendar_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM sync.calendars WHERE calendar_id = $1", calendar_id)


async def lock_event(conn: asyncpg.Connection, event_id: uuid.UUID) -> mirror.StoredEvent | None:
    return await mirror.lock_event(conn, SCHEMA, event_id)


async def upsert_event(conn: asyncpg.Connection, values: dict[str, Any]) -> None:
    await _upsert(conn, "events", "event_id", values)


async def delete_stale_manual_events(
    conn: asyncpg.Connection, subscription_id: uuid.UUID, keep: Sequence[uuid.UUID]
) -> int:
    """Manual events a subscription message no longer lists (when such messages carry all of them)."""
    result: str = await conn.execute(
        "UPDATE sync.events SET deleted = true WHERE origin = 'manual' AND subscription_ids = ARRAY[$1]::uuid[]"
        " AND NOT deleted AND NOT (event_id = ANY($2::uuid[]))",
        subscription_id,
        list(keep),
    )
    return int(result.split()[-1])


async def subscription_version_of(conn: asyncpg.Connection, subscription_id: uuid.UUID) -> int | None:
    return await mirror.version_for_update(conn, SCHEMA, "subscriptions", "subscription_id", subscription_id)


async def upsert_subscription(conn: asyncpg.Connection, values: dict[str, Any]) -> None:
    await _upsert(conn, "subscriptions", "subscription_id", values)


async def subscription(conn: asyncpg.Connection, subscription_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM sync.subscriptions WHERE subscription_id = $1", subscription_id)


EVENT_HEAD = "event_id, external_id, tag_ids, time_zone_tag, created_at, sequence, deleted"


async def calendar_event_heads(conn: asyncpg.Connection, calendar_id: uuid.UUID) -> list[asyncpg.Record]:
    """What selection needs of each of a calendar's own events (not their bodies)."""
    return await conn.fetch(
        f"SELECT {EVENT_HEAD} FROM sync.events WHERE calendar_id = $1 AND cardinality(subscription_ids) = 0",
        calendar_id,
    )


async def private_event_heads(conn: asyncpg.Connection, subscription_id: uuid.UUID) -> list[asyncpg.Record]:
    """A subscription's own events (manual and subscription events)."""
    return await conn.fetch(
        f"SELECT {EVENT_HEAD} FROM sync.events"
        " WHERE subscription_ids @> ARRAY[$1]::uuid[] AND cardinality(subscription_ids) > 0",
        subscription_id,
    )


async def event_bodies(conn: asyncpg.Connection, event_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Any]:
    rows = await conn.fetch("SELECT event_id, data FROM sync.events WHERE event_id = ANY($1::uuid[])", list(event_ids))
    return {r["event_id"]: r["data"] for r in rows}


# --- connections and targets --------------------------------------------------------------------


async def insert_connection(
    conn: asyncpg.Connection,
    *,
    connection_id: uuid.UUID,
    account_id: uuid.UUID,
    provider: str,
    remote_user: str,
    credentials: str,
    remote_calendar_id: str | None,
) -> None:
    await conn.execute(
        "INSERT INTO sync.connections (connection_id, account_id, provider, remote_user, credentials,"
        " remote_calendar_id) VALUES ($1, $2, $3, $4, $5, $6)",
        connection_id,
        account_id,
        provider,
        remote_user,
        credentials,
        remote_calendar_id,
    )


async def connection(conn: asyncpg.Connection, connection_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM sync.connections WHERE connection_id = $1", connection_id)


async def update_credentials(conn: asyncpg.Connection, connection_id: uuid.UUID, credentials: str) -> None:
    await conn.execute(
        "UPDATE sync.connections SET credentials = $2, updated_at = now() WHERE connection_id = $1",
        connection_id,
        credentials,
    )


async def set_connection_state(
    conn: asyncpg.Connection, connection_id: uuid.UUID, state: str, reason: str | None
) -> None:
    await conn.execute(
        "UPDATE sync.connections SET state = $2, reason = $3, updated_at = now() WHERE connection_id = $1",
        connection_id,
        state,
        reason,
    )


async def block_connection(conn: asyncpg.Connection, connection_id: uuid.UUID, until: datetime) -> None:
    await conn.execute(
        "UPDATE sync.connections SET blocked_until = greatest(coalesce(blocked_until, $2), $2)"
        " WHERE connection_id = $1",
        connection_id,
        until,
    )


async def ensure_target(conn: asyncpg.Connection, subscription_id: uuid.UUID, connection_id: uuid.UUID) -> bool:
    """Push this subscription through this connection; the connection's own calendar (made when
    connecting) is the target's until the engine creates one. A subscription that moves to another
    connection (the subscriber subscribed again with another account) starts afresh there: what was
    pushed to the old calendar is forgotten, not deleted. True when the target is new or moved."""
    current = await conn.fetchval(
        "SELECT connection_id FROM sync.targets WHERE subscription_id = $1 FOR UPDATE", subscription_id
    )
    if current == connection_id:
        return False
    await conn.execute(
        "INSERT INTO sync.targets (subscription_id, connection_id, remote_calendar_id)"
        " SELECT $1, connection_id, remote_calendar_id FROM sync.connections WHERE connection_id = $2"
        " ON CONFLICT (subscription_id) DO UPDATE SET connection_id = EXCLUDED.connection_id,"
        " remote_calendar_id = EXCLUDED.remote_calendar_id, state = 'active', reason = NULL, failures = 0,"
        " updated_at = now()",
        subscription_id,
        connection_id,
    )
    if current is not None:
        await conn.execute("DELETE FROM sync.pushed WHERE subscription_id = $1", subscription_id)
    return True


async def target(conn: asyncpg.Connection, subscription_id: uuid.UUID) -> asyncpg.Record | None:
    """The subscription's target with its connection (columns prefixed c_ for the connection's)."""
    return await conn.fetchrow(
        "SELECT t.*, c.account_id AS c_account_id, c.provider AS c_provider, c.remote_user AS c_remote_user,"
        " c.credentials AS c_credentials, c.state AS c_state"
        " FROM sync.targets t JOIN sync.connections c USING (connection_id) WHERE t.subscription_id = $1",
        subscription_id,
    )


async def set_remote_calendar(conn: asyncpg.Connection, subscription_id: uuid.UUID, remote_calendar_id: str) -> None:
    await conn.execute(
        "UPDATE sync.targets SET remote_calendar_id = $2, updated_at = now() WHERE subscription_id = $1",
        subscription_id,
        remote_calendar_id,
    )


async def set_calendar_version(conn: asyncpg.Connection, subscription_id: uuid.UUID, version: int) -> None:
    await conn.execute(
        "UPDATE sync.targets SET calendar_version = $2 WHERE subscription_id = $1", subscription_id, version
    )


async def set_target_state(
    conn: asyncpg.Connection, subscription_id: uuid.UUID, state: str, reason: str | None
) -> None:
    await conn.execute(
        "UPDATE sync.targets SET state = $2, reason = $3, updated_at = now() WHERE subscription_id = $1",
        subscription_id,
        state,
        reason,
    )


async def count_failure(conn: asyncpg.Connection, subscription_id: uuid.UUID) -> int:
    failures: int = await conn.fetchval(
        "UPDATE sync.targets SET failures = failures + 1 WHERE subscription_id = $1 RETURNING failures",
        subscription_id,
    )
    return failures or 0


async def reset_failures(conn: asyncpg.Connection, subscription_id: uuid.UUID) -> None:
    await conn.execute(
        "UPDATE sync.targets SET failures = 0 WHERE subscription_id = $1 AND failures > 0", subscription_id
    )


# --- pushed state -------------------------------------------------------------------------------


async def pushed(conn: asyncpg.Connection, subscription_id: uuid.UUID) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT event_id, remote_id, etag, sequence, rejected FROM sync.pushed WHERE subscription_id = $1",
        subscription_id,
    )


async def record_pushed(
    conn: asyncpg.Connection,
    subscription_id: uuid.UUID,
    event_id: uuid.UUID,
    *,
    remote_id: str,
    etag: str | None,
    sequence: int,
    rejected: str | None = None,
) -> None:
    await conn.execute(
        "INSERT INTO sync.pushed (subscription_id, event_id, remote_id, etag, sequence, rejected)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (subscription_id, event_id) DO UPDATE SET"
        " remote_id = EXCLUDED.remote_id, etag = EXCLUDED.etag, sequence = EXCLUDED.sequence,"
        " rejected = EXCLUDED.rejected, pushed_at = now()",
        subscription_id,
        event_id,
        remote_id,
        etag,
        sequence,
        rejected,
    )


async def forget_pushed(conn: asyncpg.Connection, subscription_id: uuid.UUID, event_id: uuid.UUID) -> None:
    await conn.execute(
        "DELETE FROM sync.pushed WHERE subscription_id = $1 AND event_id = $2", subscription_id, event_id
    )
