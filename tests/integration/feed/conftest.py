"""The feed service in-process (consumer, cache, HTTP) over a real database and a real broker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import aio_pika
import pytest
from aiohttp.test_utils import TestClient

from services.feed.app import create_app
from services.feed.settings import FeedSettings
from shared.amqp import Names, Publisher
from shared.messages import MessageData, make_envelope
from shared.settings import PlatformSettings
from shared.testing import FrontedTestServer
from tests.tools.feed_parsers import install, parse_everywhere


@pytest.fixture(scope="session", autouse=True)
def parsers_installed() -> None:
    install()


@dataclass
class FeedHarness:
    client: TestClient
    publisher: Publisher

    async def publish(self, message_type: str, data: MessageData) -> str:
        envelope = make_envelope(message_type, data, account_id=getattr(data, "account_id", None))
        await self.publisher.publish(envelope.to_bytes(), message_type, str(envelope.id))
        return str(envelope.id)

    async def publish_raw(self, routing_key: str, body: bytes, message_id: str) -> None:
        await self.publisher.publish(body, routing_key, message_id)

    async def wait_for(
        self, path: str, predicate: Callable[[int, bytes], bool], timeout: float = 10.0, **kwargs: object
    ) -> tuple[int, bytes]:
        """GET `path` until predicate(status, body) holds; returns the last answer."""
        deadline = time.monotonic() + timeout
        while True:
            response = await self.client.get(path, **kwargs)  # type: ignore[arg-type]
            body = await response.read()
            if predicate(response.status, body) or time.monotonic() > deadline:
                if response.status == 200 and body.startswith(b"BEGIN:VCALENDAR"):
                    # Every feed a test sees is read by independent parsers that must agree.
                    parse_everywhere(body)
                return response.status, body
            await asyncio.sleep(0.05)


@pytest.fixture
async def feed(
    database_url: str, amqp_url: str, amqp_names: Names, amqp_connection: aio_pika.abc.AbstractRobustConnection
) -> AsyncIterator[FeedHarness]:
    platform = PlatformSettings(database_url=database_url, amqp_url=amqp_url, amqp_prefix=amqp_names.prefix)
    settings = FeedSettings(platform=platform, public_api_url="https://api.example.test", recheck_seconds=1)
    app = create_app(platform, "all", settings)
    client = TestClient(FrontedTestServer(app))
    await client.start_server()
    publisher = Publisher(amqp_connection, amqp_names)
    try:
        yield FeedHarness(client, publisher)
    finally:
        await publisher.close()
        await client.close()
        channel = await amqp_connection.channel()
        for name in ("feed.projection", "feed.projection.dlq", "kalends.unrouted"):
            await channel.queue_delete(amqp_names(name))
