"""Fixtures of the platform's integration tests: a schema of their own and broker names cleaned up after."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aio_pika
import asyncpg
import pytest

from shared import db
from shared.amqp import Names

SCHEMA = "plt"
EFFECTS_SQL = """
-- What a consumer's handler does in these tests: one row per application, no uniqueness, so a
-- message applied twice shows up as two rows.
CREATE TABLE effects (message_id uuid NOT NULL, payload text NOT NULL);
"""


@pytest.fixture
def plt_migrations(tmp_path: Path) -> Path:
    directory = tmp_path / "migrations"
    directory.mkdir()
    (directory / "001_effects.sql").write_text(EFFECTS_SQL)
    return directory


@pytest.fixture
async def plt_pool(database_url: str, plt_migrations: Path) -> AsyncIterator[asyncpg.Pool]:
    """A pool on this test's database with the `plt` schema migrated (outbox, processed_messages, effects)."""
    await db.prepare_database(database_url, SCHEMA, plt_migrations)
    pool = await db.create_pool(database_url, min_size=1, max_size=8)
    yield pool
    await pool.close()


@pytest.fixture
async def broker_cleanup(
    amqp_connection: aio_pika.abc.AbstractRobustConnection, amqp_names: Names
) -> AsyncIterator[list[str]]:
    """Queue names (without prefix) the test declared; they, their `.dlq` and the unrouted queue go afterwards."""
    queues: list[str] = []
    yield queues
    channel = await amqp_connection.channel()
    for name in [*queues, *(f"{q}.dlq" for q in queues), "kalends.unrouted"]:
        try:
            await channel.queue_delete(amqp_names(name))
        except Exception:
            channel = await amqp_connection.channel()
    with contextlib.suppress(Exception):
        await channel.close()


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 15.0, what: str = "condition") -> None:
    """Poll `check` until it holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what} did not hold within {timeout} s")


async def drain_queue(
    channel: aio_pika.abc.AbstractChannel, name: str, *, idle: float = 0.3
) -> list[aio_pika.abc.AbstractIncomingMessage]:
    """Every message now in the queue (acked), stopping once it stays empty for `idle` seconds."""
    queue = await channel.declare_queue(name, passive=True)
    got: list[aio_pika.abc.AbstractIncomingMessage] = []
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < idle:
        message = await queue.get(fail=False, no_ack=True)
        if message is None:
            await asyncio.sleep(0.02)
            continue
        got.append(message)
        quiet_since = time.monotonic()
    return got


async def message_count(channel: aio_pika.abc.AbstractChannel, queue: str) -> int:
    """Messages ready in `queue` now, from a fresh passive declare (aio-pika's robust channel would
    answer a passive declare from its cache)."""
    underlay = await channel.get_underlay_channel()
    declared = await underlay.queue_declare(queue, passive=True)
    assert declared.message_count is not None
    return int(declared.message_count)


def ids(messages: list[aio_pika.abc.AbstractIncomingMessage]) -> list[uuid.UUID]:
    return [uuid.UUID(m.message_id) for m in messages if m.message_id]
