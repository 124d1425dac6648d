"""The statements every versioned copy of ingest's rows needs (feed's projection, sync's mirror),
each on the service's own schema: versions read under a row lock, rows written whole, events locked.

Each service still owns its schema and its tables (DESIGN.md); only the shape of these statements
is shared. Schema, table, key and column names come from the calling repository and the
projection's own dicts, never from a request.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg


async def upsert(conn: asyncpg.Connection, schema: str, table: str, key: str, values: dict[str, Any]) -> None:
    """INSERT the row, or overwrite every given column of the row with the same `key`."""
    columns = list(values)
    placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c != key)
    await conn.execute(
        f"INSERT INTO {schema}.{table} ({', '.join(columns)}) VALUES ({placeholders})"
        f" ON CONFLICT ({key}) DO UPDATE SET {updates}",
        *values.values(),
    )


async def version_for_update(
    conn: asyncpg.Connection, schema: str, table: str, key: str, row_id: uuid.UUID
) -> int | None:
    """The stored row's version, locked until the caller's transaction ends (so two messages about
    one row apply one after the other); None when there is no such row."""
    version: int | None = await conn.fetchval(
        f"SELECT version FROM {schema}.{table} WHERE {key} = $1 FOR UPDATE", row_id
    )
    return version


@dataclass(frozen=True)
class StoredEvent:
    sequence: int
    calendar_id: uuid.UUID
    subscription_ids: tuple[uuid.UUID, ...]


async def lock_event(conn: asyncpg.Connection, schema: str, event_id: uuid.UUID) -> StoredEvent | None:
    """The stored event's sequence, calendar and subscriptions, locked as `version_for_update`."""
    row = await conn.fetchrow(
        f"SELECT sequence, calendar_id, subscription_ids FROM {schema}.events WHERE event_id = $1 FOR UPDATE",
        event_id,
    )
    if row is None:
        return None
    return StoredEvent(row["sequence"], row["calendar_id"], tuple(row["subscription_ids"]))
