"""The sync service in-process (projection consumer, push engine, CalDAV provider) over a real
database, a real broker and a real CalDAV server (Radicale) started for the module."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import aio_pika
import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from services.sync.api.schemas import CalDavConnect
from services.sync.app import create_app
from services.sync.app_keys import CONNECTIONS, ENGINE
from services.sync.push import PushEngine
from services.sync.services import Connected
from services.sync.settings import SyncSettings
from shared.amqp import Names, Publisher
from shared.crypto import SecretBox
from shared.lifecycle import POOL
from shared.messages import MessageData, make_envelope
from shared.settings import PlatformSettings
from tests.tools.radicale_server import RadicaleServer, calendar_events


@pytest.fixture(scope="module")
def radicale(tmp_path_factory: pytest.TempPathFactory) -> RadicaleServer:
    server = RadicaleServer(Path(tmp_path_factory.mktemp("radicale"))).start()
    yield server  # type: ignore[misc]
    server.stop()


@dataclass
class SyncHarness:
    client: TestClient
    publisher: Publisher
    radicale: RadicaleServer
    box: SecretBox

    @property
    def engine(self) -> PushEngine:
        return self.client.app[ENGINE]

    @property
    def pool(self) -> asyncpg.Pool:
        return self.client.app[POOL]

    async def publish(self, message_type: str, data: MessageData) -> None:
        envelope = make_envelope(message_type, data, account_id=getattr(data, "account_id", None))
        await self.publisher.publish(envelope.to_bytes(), message_type, str(envelope.id))

    async def connect(self, account_id: uuid.UUID, url: str | None = None) -> tuple[Connected, str, str]:
        """A new Radicale user connected through the real use-case: (connection, username, password)."""
        username, password = f"u{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
        self.radicale.add_user(username, password)
        body = CalDavConnect.parse({"url": url or self.radicale.url, "username": username, "password": password})
        connected = await self.client.app[CONNECTIONS].connect_caldav(account_id, body)
        return connected, username, password

    async def remote(self, connected: Connected, username: str, password: str) -> dict[str, dict[str, str]]:
        return await asyncio.to_thread(calendar_events, connected.calendar_url, username, password)

    async def settle(self, timeout: float = 15.0) -> None:
        """Wait until the broker queue is drained and the push queue is empty."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            async with self.pool.acquire() as conn:
                queued = await conn.fetchval("SELECT count(*) FROM sync.push_queue")
            if queued == 0:
                await asyncio.sleep(0.3)  # messages still in flight on the broker
                async with self.pool.acquire() as conn:
                    if await conn.fetchval("SELECT count(*) FROM sync.push_queue") == 0:
                        return
            await asyncio.sleep(0.05)
        raise TimeoutError("the push queue did not empty")

    async def wait_for(self, probe: Callable[[], object], timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            result = probe()
            if asyncio.iscoroutine(result):
                result = await result
            if result or time.monotonic() > deadline:
                assert result, "condition not met in time"
                return
            await asyncio.sleep(0.1)


@pytest.fixture
async def sync(
    database_url: str,
    amqp_url: str,
    amqp_names: Names,
    amqp_connection: aio_pika.abc.AbstractRobustConnection,
    radicale: RadicaleServer,
) -> AsyncIterator[SyncHarness]:
    platform = PlatformSettings(database_url=database_url, amqp_url=amqp_url, amqp_prefix=amqp_names.prefix)
    settings = SyncSettings(platform=platform, allow_private=True, poll_interval=0.2, backoff_base=0.2)
    box = SecretBox([SecretBox.generate_key()])
    app = create_app(settings, box, "worker")
    client = TestClient(TestServer(app))
    await client.start_server()
    publisher = Publisher(amqp_connection, amqp_names)
    try:
        yield SyncHarness(client, publisher, radicale, box)
    finally:
        await publisher.close()
        await client.close()
        channel = await amqp_connection.channel()
        for name in ("sync.projection", "sync.projection.dlq", "kalends.unrouted"):
            await channel.queue_delete(amqp_names(name))
