"""auth, ingest and feed as processes; a merchant account with a token; feed polling helpers."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aio_pika
import aiohttp
import pytest

from shared.testing import Stack
from tests.tools.feed_parsers import install, parse_everywhere


@dataclass
class Merchant:
    stack: Stack
    session: aiohttp.ClientSession
    account: dict[str, Any]
    token: str

    @property
    def code(self) -> str:
        return str(self.account["accountCode"])

    async def call(self, method: str, path: str, body: Any = None, want: int | None = None) -> Any:
        async with self.session.request(
            method,
            self.stack.url("ingest") + path,
            json=body,
            headers={"Authorization": f"Bearer {self.token}"},
        ) as response:
            text = await response.text()
            if want is not None:
                assert response.status == want, (method, path, response.status, text)
            else:
                assert response.status < 300, (method, path, response.status, text)
            return await response.json(content_type=None) if text.strip() else None

    async def feed(
        self,
        path: str,
        predicate: Callable[[int, bytes], bool],
        timeout: float = 15.0,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:
        """GET a feed path until predicate(status, body); every calendar body is parsed by all parsers."""
        deadline = time.monotonic() + timeout
        while True:
            async with self.session.get(self.stack.url("feed") + path, headers=headers) as response:
                status, body = response.status, await response.read()
            if predicate(status, body) or time.monotonic() > deadline:
                if status == 200 and body.startswith(b"BEGIN:VCALENDAR"):
                    parse_everywhere(body)
                return status, body
            await asyncio.sleep(0.05)


@pytest.fixture(scope="module")
async def feed_stack(stack: Stack, amqp_url: str) -> AsyncIterator[Stack]:
    await asyncio.to_thread(install)
    await stack.start("auth")
    await stack.start("ingest")
    await stack.start("feed", env={"KALENDS_PUBLIC_API_URL": stack.url("ingest")})
    yield stack
    stack.processes["feed"].stop()
    # The feed's quorum queues of this module go with it (each is a Raft group on the broker).
    connection = await aio_pika.connect(amqp_url)
    try:
        for name in ("feed.projection", "feed.projection.dlq"):
            channel = await connection.channel()
            with contextlib.suppress(aio_pika.exceptions.AMQPError):
                await channel.queue_delete(stack.env["KALENDS_AMQP_PREFIX"] + name)
    finally:
        await connection.close()


@pytest.fixture
async def merchant(feed_stack: Stack) -> AsyncIterator[Merchant]:
    account = await feed_stack.new_account()
    token = await feed_stack.token(account)
    async with aiohttp.ClientSession() as session:
        yield Merchant(feed_stack, session, account, token)
