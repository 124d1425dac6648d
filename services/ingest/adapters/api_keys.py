"""ingest's copy of auth's API keys (hashes only), for routes that take `X-API-KEY`."""

from __future__ import annotations

import hashlib
import uuid

import asyncpg

from services.ingest.adapters.repository import SCHEMA


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


async def api_key_account(conn: asyncpg.Connection, key_hash: str) -> asyncpg.Record | None:
    """(account_id, account_code) of a live key, else None."""
    return await conn.fetchrow(
        f"SELECT account_id, account_code FROM {SCHEMA}.api_keys WHERE key_hash = $1 AND NOT revoked", key_hash
    )


async def calendar_code_by_id_or_code(conn: asyncpg.Connection, account_id: uuid.UUID, key: str) -> str | None:
    """The code of the account's live calendar whose code (any case) or id is `key`."""
    value: str | None = await conn.fetchval(
        f"SELECT code FROM {SCHEMA}.calendars WHERE account_id = $1 AND deleted_at IS NULL"
        " AND (lower(code) = lower($2) OR calendar_id::text = lower($2)) ORDER BY lower(code) = lower($2) DESC LIMIT 1",
        account_id,
        key,
    )
    return value
