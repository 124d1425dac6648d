"""The denylist table and its followers against PostgreSQL: ordering by auth's clock, polling, expiry."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from shared import db
from shared.denylist import Denylist, DenylistFollower, Entry, record

SCHEMA = "ingest"  # any service schema: every one has the table


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    async with db.pool_context(database_url, min_size=1, max_size=3) as pool:
        yield pool


@pytest.fixture
def now() -> datetime:
    """Taken per test: a module-level clock goes stale in a long run and the expiry purge then eats live rows."""
    return datetime.now(UTC)


async def write(pool: asyncpg.Pool, entry: Entry) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await record(conn, SCHEMA, entry)


async def account_denied(conn: asyncpg.Connection, account: uuid.UUID) -> bool:
    denied = await conn.fetchval(
        f"SELECT denied FROM {SCHEMA}.denylist WHERE kind = 'account' AND subject = $1", str(account)
    )
    return bool(denied)


async def test_a_late_older_disable_does_not_undo_a_newer_enable(pool: asyncpg.Pool, now: datetime) -> None:
    account = uuid.uuid4()
    await write(pool, Entry("account", str(account), False, now, now + timedelta(days=1)))
    await write(pool, Entry("account", str(account), True, now - timedelta(seconds=5), None))
    async with pool.acquire() as conn:
        assert await account_denied(conn, account) is False
    await write(pool, Entry("account", str(account), True, now + timedelta(seconds=5), None))
    async with pool.acquire() as conn:
        assert await account_denied(conn, account) is True


async def test_a_follower_sees_new_entries_at_its_next_poll_and_expired_ones_are_purged(
    pool: asyncpg.Pool, now: datetime
) -> None:
    denylist = Denylist()
    follower = DenylistFollower(pool, SCHEMA, denylist)
    await write(pool, Entry("client", "acme.1", True, now, None))
    await follower.load()
    assert denylist.clients == {"acme.1"}

    await write(pool, Entry("token", "jti-live", True, now, now + timedelta(minutes=5)))
    await write(pool, Entry("client", "acme.1", False, now + timedelta(seconds=1), now + timedelta(days=1)))
    assert await follower.poll() >= 2
    assert denylist.clients == set() and "jti-live" in denylist.tokens

    await write(pool, Entry("token", "jti-dead", True, now, now - timedelta(minutes=5)))
    async with pool.acquire() as conn:
        left = {r["subject"] for r in await conn.fetch(f"SELECT subject FROM {SCHEMA}.denylist WHERE kind = 'token'")}
    assert left == {"jti-live"}
