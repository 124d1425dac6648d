"""Consumers of other services' messages: auth's account.created fills the accounts table."""

from __future__ import annotations

import asyncpg

from services.ingest.adapters import repository
from shared.messages import AccountCreated, Envelope


async def on_account_created(conn: asyncpg.Connection, envelope: Envelope) -> None:
    account = envelope.parsed()
    assert isinstance(account, AccountCreated)
    await repository.save_account(conn, account.account_id, account.account_code, account.name)
