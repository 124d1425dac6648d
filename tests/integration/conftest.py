"""Fixtures every service's integration tests may use: a pool on the test's database, a publisher on
the test's broker prefix. (The database, broker and name prefix fixtures are in tests/conftest.py.)"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import aio_pika
import asyncpg
import pytest

from shared import db
from shared.amqp import Names, Publisher
from shared.messages import Envelope


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await db.create_pool(database_url, min_size=1, max_size=4)
    yield p
    await p.close()


@pytest.fixture
async def publish(
    amqp_connection: aio_pika.abc.AbstractRobustConnection, amqp_names: Names
) -> AsyncIterator[Callable[[Envelope], Any]]:
    """Publish an envelope as a service's outbox relay would (routing key = its type)."""
    publisher = Publisher(amqp_connection, amqp_names)

    async def send(envelope: Envelope) -> None:
        await publisher.publish(envelope.to_bytes(), envelope.type, str(envelope.id))

    yield send
    await publisher.close()
