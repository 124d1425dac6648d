"""auth, ingest, feed and sync as processes, a real CalDAV server (Radicale), a merchant with a token."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aio_pika
import aiohttp
import pytest

from shared.testing import Stack
from tests.tools.radicale_server import RadicaleServer, calendar_events

SYNC_ENV = {"KALENDS_SYNC_ALLOW_PRIVATE": "1", "KALENDS_SYNC_POLL_INTERVAL": "0.2"}


@pytest.fixture(scope="module")
def radicale(tmp_path_factory: pytest.TempPathFactory) -> RadicaleServer:
    server = RadicaleServer(Path(tmp_path_factory.mktemp("radicale"))).start()
    yield server  # type: ignore[misc]
    server.stop()


@pytest.fixture(scope="module")
async def sync_stack(stack: Stack, amqp_url: str) -> AsyncIterator[Stack]:
    await stack.start("auth")
    await stack.start("ingest")
    await stack.start("feed", env={"KALENDS_PUBLIC_API_URL": stack.url("ingest")})
    await stack.start("sync", env=SYNC_ENV)
    yield stack
    for name in ("sync", "feed"):
        stack.processes[name].stop()
    connection = await aio_pika.connect(amqp_url)
    try:
        for name in ("feed.projection", "feed.projection.dlq", "sync.projection", "sync.projection.dlq"):
            channel = await connection.channel()
            with contextlib.suppress(aio_pika.exceptions.AMQPError):
                await channel.queue_delete(stack.env["KALENDS_AMQP_PREFIX"] + name)
    finally:
        await connection.close()


@dataclass
class Subscriber:
    """A CalDAV account on the Radicale server and the subscription pushed into it."""

    username: str
    password: str
    answer: dict[str, Any]

    @property
    def calendar_url(self) -> str:
        return str(self.answer["calendarUrl"])

    @property
    def path(self) -> str:
        return self.calendar_url.split("/", 3)[3]


@dataclass
class Merchant:
    stack: Stack
    session: aiohttp.ClientSession
    account: dict[str, Any]
    token: str
    radicale: RadicaleServer

    @property
    def code(self) -> str:
        return str(self.account["accountCode"])

    async def call(self, method: str, path: str, body: Any = None, want: int | None = None) -> Any:
        async with self.session.request(
            method, self.stack.url("ingest") + path, json=body, headers={"Authorization": f"Bearer {self.token}"}
        ) as response:
            text = await response.text()
            if want is not None:
                assert response.status == want, (method, path, response.status, text)
            else:
                assert response.status < 300, (method, path, response.status, text)
            return await response.json(content_type=None) if text.strip() else None

    async def new_calendar(self) -> str:
        code = f"cal{uuid.uuid4().hex[:8]}"
        body = {"code": code, "name": "Hockey, 2026", "timezone": "America/New_York", "color": "#1e90ff"}
        await self.call("POST", f"/v1/calendars/{self.code}", body, want=201)
        return code

    async def add_event(self, cal: str, **fields: Any) -> dict[str, Any]:
        body = {"start": "2026-04-10T19:00:00", "end": "2026-04-10T21:30:00", **fields}
        created: dict[str, Any] = await self.call("POST", f"/v1/calendars/{self.code}/{cal}/events", body, want=201)
        return created

    async def subscribe_caldav(self, cal: str, password: str | None = None, **fields: Any) -> Subscriber:
        username = f"fan{uuid.uuid4().hex[:8]}"
        real = uuid.uuid4().hex
        self.radicale.add_user(username, real)
        body = {
            "subscriberId": username,
            "subscriptionMethod": "CalDAV",
            "caldav": {"url": self.radicale.url, "username": username, "password": password or real},
            **fields,
        }
        answer = await self.call("POST", f"/v1/subscribe/{self.code}/{cal}", body)
        return Subscriber(username, real, answer)

    async def remote(self, subscriber: Subscriber) -> dict[str, dict[str, str]]:
        return await asyncio.to_thread(
            calendar_events, subscriber.calendar_url, subscriber.username, subscriber.password
        )

    async def until(
        self, subscriber: Subscriber, predicate: Callable[[dict[str, dict[str, str]]], bool], timeout: float = 20.0
    ) -> dict[str, dict[str, str]]:
        """Read the subscriber's calendar until predicate holds; returns what was read last."""
        deadline = time.monotonic() + timeout
        while True:
            remote = await self.remote(subscriber)
            if predicate(remote) or time.monotonic() > deadline:
                return remote
            await asyncio.sleep(0.1)


async def eventually(probe: Callable[[], Awaitable[bool]], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await probe():
            return True
        await asyncio.sleep(0.2)
    return await probe()


@pytest.fixture(scope="module")
async def merchant(sync_stack: Stack, radicale: RadicaleServer) -> AsyncIterator[Merchant]:
    account = await sync_stack.new_account()
    token = await sync_stack.token(account)
    async with aiohttp.ClientSession() as session:
        yield Merchant(sync_stack, session, account, token, radicale)
