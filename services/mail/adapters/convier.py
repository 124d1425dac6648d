"""mail's Convier tables: API keys learnt from auth, and each request by (account, uid)."""

from __future__ import annotations

import hashlib
import uuid

import asyncpg

from services.mail.adapters.repository import SCHEMA


def api_key_hash(key: str) -> str:
    """Hex SHA-256, the form auth's `api_key.created` carries."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


async def save_api_key(
    conn: asyncpg.Connection, key_hash: str, account_id: uuid.UUID, account_code: str, revoked: bool
) -> None:
    """Record a key; a revocation wins over a creation that arrives after it."""
    await conn.execute(
        f"INSERT INTO {SCHEMA}.api_keys (key_hash, account_id, account_code, revoked) VALUES ($1, $2, $3, $4)"
        f" ON CONFLICT (key_hash) DO UPDATE SET revoked = {SCHEMA}.api_keys.revoked OR EXCLUDED.revoked",
        key_hash,
        account_id,
        account_code,
        revoked,
    )


async def api_key_account(conn: asyncpg.Connection, key_hash: str) -> uuid.UUID | None:
    account_id: uuid.UUID | None = await conn.fetchval(
        f"SELECT account_id FROM {SCHEMA}.api_keys WHERE key_hash = $1 AND NOT revoked", key_hash
    )
    return account_id


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
