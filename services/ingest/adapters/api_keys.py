"""Lookups of the Unipile route (the API keys themselves: shared/api_keys.py)."""

from __future__ import annotations

import uuid

import asyncpg

from services.ingest.adapters.repository import SCHEMA


async def calendar_code_by_id_or_code(conn: asyncpg.Connection, account_id: uuid.UUID, key: str) -> str | None:
    """The code of the account's live calendar whose code (any case) or id is `key`."""
    value: str | None = await conn.fetchval(
        f"SELECT code FROM {SCHEMA}.calendars WHERE account_id = $1 AND deleted_at IS NULL"
        " AND (lower(code) = lower($2) OR calendar_id::text = lower($2)) ORDER BY lower(code) = lower($2) DESC LIMIT 1",
        account_id,
        key,
    )
    return value
