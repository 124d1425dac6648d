"""The webhook service (and auth) as processes, a recording receiver, an account with a token."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aio_pika
import aiohttp
import pytest

from services.webhook.messaging.topology import delete_topology
from services.webhook.settings import parse_retry_schedule
from shared.amqp import Names
from shared.testing import Stack
from tests.integration.webhook.receiver import Receiver

E2E_WEBHOOK_ENV = {
    "KALENDS_WEBHOOK_RETRY_SCHEDULE": "0,1,2,3",
    "KALENDS_WEBHOOK_TIMEOUT": "1",
    "KALENDS_WEBHOOK_SWEEP_INTERVAL": "0.2",
    "KALENDS_WEBHOOK_SWEEP_GRACE": "0.5",
}


@dataclass
class Merchant:
    """An account and an HTTP session carrying its bearer token."""

    account: dict[str, Any]
    session: aiohttp.ClientSession
    base: str

    @property
    def code(self) -> str:
        return str(self.account["accountCode"])

    def url(self, path: str = "") -> str:
        return f"{self.base}/v1/webhooks/{self.code}{path}"


@contextlib.asynccontextmanager
async def started_webhook(stack: Stack, amqp_url: str, names: Names, *webhook_args: str) -> AsyncIterator[Stack]:
    """auth, ingest and webhook (with `webhook_args`) of the module's stack; webhook's topology goes after."""
    await stack.start("auth")
    await stack.start("ingest")  # before any account exists, so it learns every account's name
    await stack.start("webhook", *webhook_args, env=E2E_WEBHOOK_ENV)
    yield stack
    # The webhook service's queues of this module's prefix go with it (a broker keeps every queue).
    stack.processes["webhook"].stop()
    connection = await aio_pika.connect(amqp_url)
    try:
        await delete_topology(await connection.channel(), names, parse_retry_schedule("0,1,2,3"))
    finally:
        await connection.close()


@pytest.fixture(scope="module")
async def webhook_stack(stack: Stack, amqp_url: str, e2e_names: Names) -> AsyncIterator[Stack]:
    async with started_webhook(stack, amqp_url, e2e_names) as started:
        yield started


@pytest.fixture
async def merchant(webhook_stack: Stack) -> AsyncIterator[Merchant]:
    account = await webhook_stack.new_account()
    token = await webhook_stack.token(account)
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:
        yield Merchant(account, session, webhook_stack.url("webhook"))


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    yield r
    await r.stop()
