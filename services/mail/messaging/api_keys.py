"""auth's api_key.created / api_key.revoked into mail.api_keys: Convier's `Bearer <api key>`."""

from __future__ import annotations

import asyncpg

from services.mail.adapters.repository import SCHEMA
from shared.api_keys import save_api_key
from shared.messages import ApiKeyCreated, ApiKeyRevoked, Envelope


async def on_api_key(conn: asyncpg.Connection, envelope: Envelope) -> None:
    key = envelope.parsed()
    assert isinstance(key, ApiKeyCreated | ApiKeyRevoked)
    await save_api_key(conn, SCHEMA, key)
