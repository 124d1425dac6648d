"""Feed credentials of a subscription row (schema `ingest`): username, hash and encrypted password."""

from __future__ import annotations

import uuid

from asyncpg import Connection, Record

from services.ingest.adapters.repository import SCHEMA
from services.ingest.domain.credentials import FeedCredentials


async def store_feed_credentials(
    conn: Connection, subscription_id: uuid.UUID, credentials: FeedCredentials, *, new_version: bool
) -> Record:
    """Write the credentials; `new_version` when this is a change of its own (rotation) that the
    feed must apply, rather than part of a write that already raised the version."""
    bump = ", version = version + 1, updated_at = now()" if new_version else ""
    row = await conn.fetchrow(
        f"UPDATE {SCHEMA}.subscriptions SET feed_username = $2, feed_password_hash = $3,"
        f" feed_password_encrypted = $4{bump} WHERE subscription_id = $1 RETURNING *",
        subscription_id,
        credentials.username,
        credentials.password_hash,
        credentials.password_encrypted,
    )
    assert row is not None
    return row
