"""auth's api_key.created / api_key.revoked into mail.api_keys: Convier's `Bearer <api key>`."""

from __future__ import annotations

import asyncpg

from services.mail.adapters import convier
from shared.messages import ApiKeyCreated, ApiKeyRevoked, Envelope


async def on_api_key(conn: asyncpg.Connection, envelope: Envelope) -> None:
    key = envelope.parsed()
    assert isinstance(key, ApiKeyCreated | ApiKeyRevoked)
    await convier.save_api_key(conn, key.key_hash, key.account_id, key.account_code, isinstance(key, ApiKeyRevoked))
