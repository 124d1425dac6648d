"""The calendars' tags in the ingest schema: created, renamed, found, counted where used, deleted.

Split from repository.py (every other ingest query), same rules: each function takes the caller's
connection, callers own the transaction, `FOR UPDATE` reads lock the tag for its change.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import asyncpg
from asyncpg import Record

from services.ingest.adapters.repository import SCHEMA


async def tag_by_external_id(conn: asyncpg.Connection, calendar_id: uuid.UUID, external_id: str) -> Record | None:
    return await conn.fetchrow(
        f"SELECT * FROM {SCHEMA}.tags WHERE calendar_id = $1 AND external_id = $2 FOR UPDATE",
        calendar_id,
        external_id,
    )


async def insert_tag(
    conn: asyncpg.Connection, calendar_id: uuid.UUID, account_id: uuid.UUID, name: str, external_id: str | None
) -> Record | None:
    """The new tag, or None when the calendar already has a tag of that external id."""
    return await conn.fetchrow(
        f"""
        INSERT INTO {SCHEMA}.tags (tag_id, calendar_id, account_id, name, external_id) VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (calendar_id, external_id) WHERE external_id IS NOT NULL DO NOTHING
        RETURNING *
        """,
        uuid.uuid4(),
        calendar_id,
        account_id,
        name,
        external_id,
    )


async def rename_tag(conn: asyncpg.Connection, tag_id: uuid.UUID, name: str) -> Record:
    row = await conn.fetchrow(
        f"UPDATE {SCHEMA}.tags SET name = $2, version = version + 1, updated_at = now() WHERE tag_id = $1 RETURNING *",
        tag_id,
        name,
    )
    assert row is not None
    return row


async def calendar_tag(conn: asyncpg.Connection, calendar_id: uuid.UUID, key: str) -> Record | None:
    """The calendar's tag by its id or by the merchant's external id, locked for a change."""
    try:
        tag_id: uuid.UUID | None = uuid.UUID(key)
    except ValueError:
        tag_id = None
    if tag_id is not None:
        row = await conn.fetchrow(
            f"SELECT * FROM {SCHEMA}.tags WHERE calendar_id = $1 AND tag_id = $2 FOR UPDATE", calendar_id, tag_id
        )
        if row is not None:
            return row
    return await conn.fetchrow(
        f"SELECT * FROM {SCHEMA}.tags WHERE calendar_id = $1 AND external_id = $2 FOR UPDATE", calendar_id, key
    )


async def tag_usage(conn: asyncpg.Connection, calendar_id: uuid.UUID, tag_id: uuid.UUID) -> tuple[int, int]:
    """(live events, active subscriptions) of the calendar that name the tag."""
    row = await conn.fetchrow(
        f"""
        SELECT
          (SELECT count(*) FROM {SCHEMA}.events
            WHERE calendar_id = $1 AND deleted_at IS NULL AND data -> 'tagIds' ? $2) AS events,
          (SELECT count(*) FROM {SCHEMA}.subscriptions
            WHERE calendar_id = $1 AND active AND details -> 'tag_ids' ? $2) AS subscriptions
        """,
        calendar_id,
        str(tag_id),
    )
    assert row is not None
    return int(row["events"]), int(row["subscriptions"])


async def delete_tag(conn: asyncpg.Connection, tag_id: uuid.UUID) -> Record:
    row = await conn.fetchrow(
        f"DELETE FROM {SCHEMA}.tags WHERE tag_id = $1 RETURNING *, version + 1 AS deleted_version, now() AS deleted_at",
        tag_id,
    )
    assert row is not None
    return row


async def list_tags(conn: asyncpg.Connection, calendar_id: uuid.UUID) -> list[Record]:
    return await conn.fetch(
        f"SELECT * FROM {SCHEMA}.tags WHERE calendar_id = $1 ORDER BY created_at, name", calendar_id
    )


async def tags_by_ids(conn: asyncpg.Connection, tag_ids: Sequence[uuid.UUID]) -> list[Record]:
    return await conn.fetch(f"SELECT * FROM {SCHEMA}.tags WHERE tag_id = ANY($1::uuid[])", list(tag_ids))
