"""Consumers of other services' messages: auth's account.created and api_key.* messages."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import asyncpg
from aiohttp import web

from services.ingest.adapters import repository
from services.ingest.adapters.repository import SCHEMA
from services.ingest.api.handlers import INGEST
from shared.api_keys import save_api_key
from shared.messages import AccountCreated, ApiKeyCreated, ApiKeyRevoked, Envelope, GoogleConsentGranted


async def on_account_created(conn: asyncpg.Connection, envelope: Envelope) -> None:
    account = envelope.parsed()
    assert isinstance(account, AccountCreated)
    await repository.save_account(conn, account.account_id, account.account_code, account.name)


async def on_api_key(conn: asyncpg.Connection, envelope: Envelope) -> None:
    """auth's api_key.created / api_key.revoked: keep the hash, for X-API-KEY (Unipile route)."""
    key = envelope.parsed()
    assert isinstance(key, ApiKeyCreated | ApiKeyRevoked)
    await save_api_key(conn, SCHEMA, key)


def on_consent_granted(app: web.Application) -> Callable[[asyncpg.Connection, Envelope], Awaitable[None]]:
    """sync's `consent.granted`: the Google subscription becomes active (and is announced)."""

    async def handle(conn: asyncpg.Connection, envelope: Envelope) -> None:
        granted = envelope.parsed()
        assert isinstance(granted, GoogleConsentGranted)
        await app[INGEST].activate_google(conn, granted)

    return handle
