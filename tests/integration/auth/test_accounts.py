"""Accounts, clients and API keys in PostgreSQL, and the messages they put in the outbox."""

from __future__ import annotations

import asyncio
import json
import uuid

import aio_pika
import asyncpg
import pytest

from services.auth import services
from services.auth.adapters import repository as repo
from services.auth.app import MIGRATIONS, SCHEMA
from services.auth.domain.credentials import ClientCredentials, hash_secret
from services.auth.services import AdminError, FailureLimits
from shared import db
from shared.amqp import Names, Publisher, declare_platform
from shared.api_keys import api_key_hash
from shared.messages import parse_envelope
from shared.outbox import OutboxRelay
from shared.testing import random_name


async def test_migrating_twice_at_once_applies_each_migration_once(database_url: str) -> None:
    """The template already ran the migrations; two more concurrent runs find nothing to do."""
    first, second = await db.connect(database_url), await db.connect(database_url)
    try:
        results = await asyncio.gather(db.migrate(first, SCHEMA, MIGRATIONS), db.migrate(second, SCHEMA, MIGRATIONS))
        assert results == [[], []]
        versions = await first.fetch(f"SELECT version FROM {SCHEMA}.schema_migrations ORDER BY version")
        expected = ["000_platform", "000_platform_002_outbox_parking", "000_platform_003_denylist", "001_auth"]
        assert [r["version"] for r in versions] == [
            *expected,
            "002_encrypted_signing_keys",
            "003_revocations_name_their_client",
            "004_client_scopes",
            "005_console_users",
        ]
    finally:
        await first.close()
        await second.close()


async def test_a_fresh_schema_is_migrated_by_exactly_one_of_two_concurrent_runs(database_url: str) -> None:
    first, second = await db.connect(database_url), await db.connect(database_url)
    try:
        await first.execute(f"DROP SCHEMA {SCHEMA} CASCADE")
        results = await asyncio.gather(db.migrate(first, SCHEMA, MIGRATIONS), db.migrate(second, SCHEMA, MIGRATIONS))
        applied = await first.fetchval(f"SELECT count(*) FROM {SCHEMA}.schema_migrations")
        assert applied >= 2  # the platform's steps and auth's own
        assert sorted(len(r) for r in results) == [0, applied]
        assert await first.fetchval("SELECT count(*) FROM auth.accounts") == 0
    finally:
        await first.close()
        await second.close()


async def test_creating_an_account_stores_it_with_a_hashed_client_secret_and_an_outbox_message(
    pool: asyncpg.Pool,
) -> None:
    code = random_name("acct")
    created = await services.create_account(pool, code, "Acme Events")
    assert set(created) == {"accountId", "accountCode", "name", "clientId", "clientSecret"}
    async with pool.acquire() as conn:
        account = await repo.account_by_code(conn, code)
        client = await repo.client_with_account(conn, created["clientId"])
        outbox = await conn.fetch("SELECT routing_key, body FROM auth.outbox")
    assert account is not None and str(account["id"]) == created["accountId"]
    assert client is not None and client["account_code"] == code
    assert bytes(client["secret_hash"]) == hash_secret(created["clientSecret"])
    assert [r["routing_key"] for r in outbox] == ["account.created"]
    envelope = parse_envelope(bytes(outbox[0]["body"]))
    assert envelope.data == {"accountId": created["accountId"], "accountCode": code, "name": "Acme Events"}
    assert str(envelope.account_id) == created["accountId"]


async def test_a_duplicate_account_code_is_a_clear_error_and_leaves_nothing_behind(pool: asyncpg.Pool) -> None:
    code = random_name("acct")
    await services.create_account(pool, code, "First")
    with pytest.raises(AdminError, match="already exists"):
        await services.create_account(pool, code, "Second")
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM auth.clients") == 1
        assert await conn.fetchval("SELECT count(*) FROM auth.outbox") == 1


@pytest.mark.parametrize("code", ["Bad Code", "", "x" * 64])
async def test_invalid_account_codes_are_refused(pool: asyncpg.Pool, code: str) -> None:
    with pytest.raises(AdminError, match="account code"):
        await services.create_account(pool, code, "Name")


async def test_api_keys_are_stored_as_hashes_and_announced_with_the_hash_only(pool: asyncpg.Pool) -> None:
    created = await services.create_account(pool, random_name("acct"), "Keys")
    api_key = (await services.create_api_key(pool, created["accountCode"]))["apiKey"]
    async with pool.acquire() as conn:
        stored = await conn.fetchval("SELECT key_hash FROM auth.api_keys")
        body = await conn.fetchval("SELECT body FROM auth.outbox WHERE routing_key = 'api_key.created'")
    assert stored == api_key_hash(api_key)
    assert api_key.encode() not in bytes(body)
    data = parse_envelope(bytes(body)).data
    assert data["keyHash"] == stored and data["accountCode"] == created["accountCode"]
    await services.revoke_api_key(pool, api_key)
    with pytest.raises(AdminError):
        await services.revoke_api_key(pool, api_key)
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM auth.outbox WHERE routing_key = 'api_key.revoked'") == 1


async def test_a_disabled_client_and_a_disabled_account_get_no_tokens(
    pool: asyncpg.Pool, limits: FailureLimits
) -> None:
    created = await services.create_account(pool, random_name("acct"), "Disabled")
    credentials = ClientCredentials(created["clientId"], created["clientSecret"], "client_secret_basic")
    grantee, _ = await services.authenticate(pool, limits, credentials, "10.0.0.1")
    assert grantee.account_code == created["accountCode"]
    await services.set_account_disabled(pool, created["accountCode"], True)
    with pytest.raises(services.errors.OAuthError) as raised:
        await services.authenticate(pool, limits, credentials, "10.0.0.1")
    assert raised.value.code == "unauthorized_client"
    await services.set_account_disabled(pool, created["accountCode"], False)
    await services.set_client_disabled(pool, created["clientId"], True)
    with pytest.raises(services.errors.OAuthError) as raised:
        await services.authenticate(pool, limits, credentials, "10.0.0.1")
    assert raised.value.code == "invalid_client" and raised.value.status == 401


async def test_the_relay_publishes_account_created_to_rabbitmq(
    pool: asyncpg.Pool, amqp_connection: aio_pika.abc.AbstractRobustConnection, amqp_names: Names
) -> None:
    channel = await amqp_connection.channel()
    exchange = await declare_platform(channel, amqp_names)
    publisher = Publisher(amqp_connection, amqp_names)
    queue = await channel.declare_queue(f"{amqp_names.prefix}probe", exclusive=True, auto_delete=True)
    await queue.bind(exchange, routing_key="account.created")
    created = await services.create_account(pool, random_name("acct"), "Relayed")
    relay = OutboxRelay(pool, publisher, SCHEMA)
    assert await relay.drain() == 1
    message = await queue.get(timeout=5)
    await message.ack()
    envelope = parse_envelope(message.body)
    assert envelope.type == "account.created" and message.message_id == str(envelope.id)
    assert json.loads(message.body)["data"]["accountCode"] == created["accountCode"]
    assert uuid.UUID(created["accountId"]) == envelope.account_id
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM auth.outbox WHERE sent_at IS NULL") == 0
    await publisher.close()
