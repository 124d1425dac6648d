"""A service's copy of auth's API keys, for the routes that take an API key instead of a token.

Auth announces each key by its hex SHA-256 only (`api_key.created`, `api_key.revoked`); every
service with API-key routes keeps those hashes in the `api_keys` table of its own schema and looks
up the hash of the key a request presents. A key is live when it is known, not revoked, and its
account is not disabled (the schema's `denylist`, shared/denylist.py): a disabled merchant's keys
stop everywhere within seconds, as its tokens do.
"""

from __future__ import annotations

import hashlib

import asyncpg

from shared.messages import ApiKeyCreated, ApiKeyRevoked


def api_key_hash(key: str) -> str:
    """Hex SHA-256 of the key: what auth stores and announces, and what consumers compare."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


async def save_api_key(conn: asyncpg.Connection, schema: str, key: ApiKeyCreated | ApiKeyRevoked) -> None:
    """Record a key from auth's message; a revocation wins over a creation that arrives after it."""
    await conn.execute(
        f"INSERT INTO {schema}.api_keys (key_hash, account_id, account_code, revoked) VALUES ($1, $2, $3, $4)"
        f" ON CONFLICT (key_hash) DO UPDATE SET revoked = {schema}.api_keys.revoked OR EXCLUDED.revoked,"
        " account_code = EXCLUDED.account_code",
        key.key_hash,
        key.account_id,
        key.account_code,
        isinstance(key, ApiKeyRevoked),
    )


async def live_api_key(conn: asyncpg.Connection, schema: str, key: str) -> asyncpg.Record | None:
    """(account_id, account_code) of the presented key when it is live, else None."""
    return await conn.fetchrow(
        f"SELECT k.account_id, k.account_code FROM {schema}.api_keys k WHERE k.key_hash = $1 AND NOT k.revoked"
        f" AND NOT EXISTS (SELECT 1 FROM {schema}.denylist d"
        "  WHERE d.kind = 'account' AND d.subject = k.account_id::text AND d.denied)",
        api_key_hash(key),
    )
