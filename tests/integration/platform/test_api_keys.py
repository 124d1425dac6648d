"""Each service's copy of auth's API keys against PostgreSQL: live, revoked, and a disabled account."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest

from shared import db
from shared.api_keys import api_key_hash, live_api_key, save_api_key
from shared.denylist import Entry, record
from shared.messages import ApiKeyCreated, ApiKeyRevoked

# Every service with API-key routes: ingest (Unipile), mail (Convier), feed (POST /v1/ics).
SCHEMAS = ("ingest", "mail", "feed")


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    async with db.pool_context(database_url, min_size=1, max_size=3) as pool:
        yield pool


def created(key: str, account_id: uuid.UUID) -> ApiKeyCreated:
    return ApiKeyCreated(
        key_id=uuid.uuid4(),
        account_id=account_id,
        account_code="keys",
        key_hash=api_key_hash(key),
        created_at=datetime.now(UTC),
    )


def revoked(key: str, account_id: uuid.UUID) -> ApiKeyRevoked:
    return ApiKeyRevoked(
        key_id=uuid.uuid4(),
        account_id=account_id,
        account_code="keys",
        key_hash=api_key_hash(key),
        revoked_at=datetime.now(UTC),
    )


@pytest.mark.parametrize("schema", SCHEMAS)
async def test_a_known_key_answers_its_account_and_an_unknown_one_nothing(pool: asyncpg.Pool, schema: str) -> None:
    account = uuid.uuid4()
    async with pool.acquire() as conn:
        await save_api_key(conn, schema, created("k-live", account))
        row = await live_api_key(conn, schema, "k-live")
        assert row is not None and (row["account_id"], row["account_code"]) == (account, "keys")
        assert await live_api_key(conn, schema, "k-other") is None


@pytest.mark.parametrize("schema", SCHEMAS)
async def test_a_revocation_wins_even_over_a_creation_delivered_after_it(pool: asyncpg.Pool, schema: str) -> None:
    account = uuid.uuid4()
    async with pool.acquire() as conn:
        await save_api_key(conn, schema, revoked("k-gone", account))
        await save_api_key(conn, schema, created("k-gone", account))
        assert await live_api_key(conn, schema, "k-gone") is None


@pytest.mark.parametrize("schema", SCHEMAS)
async def test_the_keys_of_a_disabled_account_stop_working_and_come_back_when_it_is_enabled(
    pool: asyncpg.Pool, schema: str
) -> None:
    account = uuid.uuid4()
    now = datetime.now(UTC)
    async with pool.acquire() as conn:
        await save_api_key(conn, schema, created("k-account", account))
        await record(conn, schema, Entry("account", str(account), True, now, None))
        assert await live_api_key(conn, schema, "k-account") is None
        await record(conn, schema, Entry("account", str(account), False, datetime.now(UTC), None))
        assert await live_api_key(conn, schema, "k-account") is not None
