"""`python -m services.webhook --workers 2`: every process is a delivery worker (a consumer of the
dispatch queue and a claimer of due deliveries), and together they send each webhook once."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import aio_pika
import aiohttp
import aiormq
import pytest

from services.webhook.messaging.topology import DISPATCH
from shared.amqp import Names
from shared.testing import Stack
from tests.e2e.webhook.conftest import started_webhook
from tests.integration.webhook.receiver import Receiver

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
async def two_workers(stack: Stack, amqp_url: str, e2e_names: Names) -> AsyncIterator[Stack]:
    async with started_webhook(stack, amqp_url, e2e_names, "--workers", "2") as started:
        yield started


async def dispatch_consumers(amqp_url: str, names: Names) -> int:
    connection = await aio_pika.connect(amqp_url)
    try:
        queue = await (await connection.channel()).declare_queue(names(DISPATCH.name), passive=True)
        return int(queue.declaration_result.consumer_count)
    except aiormq.exceptions.ChannelNotFoundEntity:
        return 0  # not declared yet: no worker has started
    finally:
        await connection.close()


async def test_two_worker_processes_both_consume_and_send_every_webhook_once(
    two_workers: Stack, amqp_url: str, e2e_names: Names
) -> None:
    stack = two_workers
    deadline = time.monotonic() + 20
    while (consumers := await dispatch_consumers(amqp_url, e2e_names)) < 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    assert consumers == 2  # one consumer per process, not one for the pod

    receiver = await Receiver().start()
    try:
        account = await stack.new_account()
        token = await stack.token(account)
        code = account["accountCode"]
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:
            calendar = f"cal{uuid.uuid4().hex[:6]}"
            async with session.post(
                f"{stack.url('ingest')}/v1/calendars/{code}", json={"code": calendar, "name": "Two workers"}
            ) as response:
                assert response.status == 201, await response.text()
            async with session.post(
                f"{stack.url('webhook')}/v1/webhooks/{code}", json={"url": receiver.url("/hook")}
            ) as response:
                assert response.status == 201, await response.text()

            async def subscribe(i: int) -> None:
                subscriber = {"subscriberId": f"fan-{i}", "userAgent": "Mozilla/5.0"}
                url = f"{stack.url('ingest')}/v1/subscribe/{code}/{calendar}"
                async with session.post(url, json=subscriber) as response:
                    assert response.status in (200, 201), await response.text()

            await asyncio.gather(*(subscribe(i) for i in range(40)))
        received = await receiver.wait_for("/hook", 40, timeout=30)
        await asyncio.sleep(1.5)  # anything sent twice would have arrived by now (retries are 1 s apart)
        events = [r.json["eventId"] for r in receiver.at("/hook")]
        assert len(received) >= 40
        assert len(events) == len(set(events)) == 40
    finally:
        await receiver.stop()
