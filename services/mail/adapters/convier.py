"""mail's Convier table: each request by (account, uid) (the API keys: shared/api_keys.py)."""

from __future__ import annotations

import uuid

import asyncpg

from services.mail.adapters.repository import SCHEMA


async def locked_request(conn: asyncpg.Connection, account_id: uuid.UUID, uid: str) -> asyncpg.Record | None:
    """The stored request of this UID, row-locked until the caller's transaction ends."""
    return await conn.fetchrow(
        f"SELECT component, sequence, attendees FROM {SCHEMA}.convier_requests"
        " WHERE account_id = $1 AND uid = $2 FOR UPDATE",
        account_id,
        uid,
    )


async def save_request(
    conn: asyncpg.Connection,
    account_id: uuid.UUID,
    uid: str,
    *,
    component: str,
    sequence: int,
    attendees: list[str],
    calendar: str,
) -> None:
    await conn.execute(
        f"INSERT INTO {SCHEMA}.convier_requests (account_id, uid, component, sequence, attendees, calendar)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (account_id, uid) DO UPDATE SET"
        " sequence = EXCLUDED.sequence, attendees = EXCLUDED.attendees, calendar = EXCLUDED.calendar,"
        " updated_at = now()",
        account_id,
        uid,
        component,
        sequence,
        attendees,
        calendar,
    )
