"""Webhook figures: deliveries per second to a fast local receiver with one worker process, and
first-attempt latency (subscription accepted by ingest -> the receiver has it), p50 and p99.

References, measured in the same run on the same machine:
- throughput: plain aiohttp POSTs of the same body to the same receiver at the same concurrency
  (what HTTP alone allows here, no queue, no database, no signing);
- latency: a bare AMQP consumer bound to `subscription.created` (how long the broker hop alone takes
  from ingest's answer; the webhook adds the consumer's transaction, the outbox relay, the
  dispatcher's claim, signing and the POST).

`python -m bench webhook` (or `make bench`). Takes about a minute.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import aio_pika
import aiohttp
from aiohttp import web

from shared.amqp import Names, Publisher
from shared.messages import SubscriptionData, make_envelope
from shared.testing import Stack, create_database, drop_database, random_name, server_urls, with_database

DELIVERIES = int(os.environ.get("BENCH_WEBHOOK_DELIVERIES", "3000"))
LATENCY_SAMPLES = int(os.environ.get("BENCH_WEBHOOK_LATENCY_SAMPLES", "200"))
CONCURRENCY = 128


class FastReceiver:
    """Answers 200 at once and notes when each event arrived."""

    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}
        self.by_subscription: dict[str, float] = {}
        self.count = 0
        self.done = asyncio.Event()
        self.expect = 0
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        now = time.perf_counter()
        self.count += 1
        if request.path == "/hook":
            payload = json.loads(body)
            self.arrivals.setdefault(payload["eventId"], now)
            sub = payload.get("eventDetails", {}).get("calendarSubscriptionId")
            if sub:
                self.by_subscription.setdefault(sub, now)
        if self.expect and self.count >= self.expect:
            self.done.set()
        return web.Response(text="ok")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self.handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, backlog=4096)
        await site.start()
        assert site._server is not None
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def _subscription(account_id: uuid.UUID) -> SubscriptionData:
    return SubscriptionData(
        subscription_id=uuid.uuid4(),
        account_id=account_id,
        account_code="bench",
        merchant_name="Bench",
        calendar_id=uuid.uuid4(),
        calendar_code="cal",
        calendar_title="Bench calendar",
        subscription_type="webcal",
        created_at=datetime.now(UTC),
        email_address="fan@example.com",
        user_agent="Mozilla/5.0 (Macintosh)",
    )


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _raw_http_rate(receiver: FastReceiver, body: bytes, count: int) -> float:
    sem = asyncio.Semaphore(CONCURRENCY)
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one() -> None:
            async with sem, session.post(f"http://127.0.0.1:{receiver.port}/raw", data=body) as r:
                await r.read()

        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(count)))
        return count / (time.perf_counter() - started)


async def _throughput(
    stack: Stack,
    names: Names,
    amqp_url: str,
    receiver: FastReceiver,
    merchant: dict[str, Any],
    session: aiohttp.ClientSession,
) -> tuple[float, float]:
    account_id = uuid.UUID(merchant["accountId"])
    connection = await aio_pika.connect_robust(amqp_url)
    publisher = Publisher(connection, names)
    envelopes = [
        make_envelope("subscription.created", _subscription(account_id), account_id=account_id)
        for _ in range(DELIVERIES)
    ]
    receiver.count = 0
    receiver.arrivals.clear()
    receiver.expect = DELIVERIES
    receiver.done.clear()
    started = time.perf_counter()
    for i in range(0, len(envelopes), 200):
        batch = envelopes[i : i + 200]
        await asyncio.gather(*(publisher.publish(e.to_bytes(), e.type, str(e.id)) for e in batch))
    await asyncio.wait_for(receiver.done.wait(), 300)
    webhook_rate = DELIVERIES / (time.perf_counter() - started)
    await publisher.close()
    await connection.close()
    body = json.dumps({"eventId": str(uuid.uuid4()), "eventType": "Subscribe", "eventDetails": {}}).encode()
    receiver.expect = 0
    raw_rate = await _raw_http_rate(receiver, body, DELIVERIES)
    return webhook_rate, raw_rate


async def _latency(
    stack: Stack,
    names: Names,
    amqp_url: str,
    receiver: FastReceiver,
    merchant: dict[str, Any],
    session: aiohttp.ClientSession,
    calendar: str,
) -> tuple[list[float], list[float]]:
    connection = await aio_pika.connect_robust(amqp_url)
    channel = await connection.channel()
    events = await channel.get_exchange(names.events)
    queue = await channel.declare_queue(exclusive=True, auto_delete=True)
    await queue.bind(events, routing_key="subscription.created")
    seen_by_consumer: dict[str, float] = {}

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        data = json.loads(message.body)["data"]
        seen_by_consumer.setdefault(data["subscriptionId"], time.perf_counter())
        await message.ack()

    await queue.consume(on_message)
    webhook_ms: list[float] = []
    broker_ms: list[float] = []
    url = f"{stack.url('ingest')}/v1/subscribe/{merchant['accountCode']}/{calendar}"
    for i in range(LATENCY_SAMPLES):
        async with session.post(url, json={"subscriberId": f"fan-{i}", "userAgent": "Mozilla/5.0"}) as r:
            answer = await r.json()
            accepted = time.perf_counter()
            assert r.status in (200, 201), answer
        sub = str(answer["subscriptionId"])
        deadline = time.monotonic() + 10
        while (sub not in receiver.by_subscription or sub not in seen_by_consumer) and time.monotonic() < deadline:
            await asyncio.sleep(0.0005)
        webhook_ms.append((receiver.by_subscription[sub] - accepted) * 1000)
        broker_ms.append((seen_by_consumer[sub] - accepted) * 1000)
    await connection.close()
    return webhook_ms, broker_ms


async def _run() -> str:
    with server_urls() as (server_db, amqp_url):
        name = random_name("kalends_bench_webhook")
        await create_database(server_db, name)
        names = Names(random_name("bench") + ".")
        stack = Stack(
            {
                "KALENDS_DATABASE_URL": with_database(server_db, name),
                "KALENDS_AMQP_URL": amqp_url,
                "KALENDS_AMQP_PREFIX": names.prefix,
                "KALENDS_WEBHOOK_ALLOW_PRIVATE": "1",
                "KALENDS_WEBHOOK_TIMEOUT": "5",
                "KALENDS_LOG_LEVEL": "warning",
            }
        )
        receiver = FastReceiver()
        await receiver.start()
        try:
            await stack.start("auth")
            await stack.start("ingest")
            await stack.start("webhook")
            merchant = await stack.new_account()
            token = await stack.token(merchant)
            headers = {"Authorization": f"Bearer {token}"}
            async with aiohttp.ClientSession(headers=headers) as session:
                calendar = "benchcal"
                async with session.post(
                    f"{stack.url('ingest')}/v1/calendars/{merchant['accountCode']}",
                    json={"code": calendar, "name": "Bench", "timezone": "UTC"},
                ) as r:
                    assert r.status == 201, await r.text()
                async with session.post(
                    f"{stack.url('webhook')}/v1/webhooks/{merchant['accountCode']}",
                    json={"url": f"http://127.0.0.1:{receiver.port}/hook", "eventTypes": ["Subscribe"]},
                ) as r:
                    assert r.status == 201, await r.text()
                webhook_ms, broker_ms = await _latency(stack, names, amqp_url, receiver, merchant, session, calendar)
                webhook_rate, raw_rate = await _throughput(stack, names, amqp_url, receiver, merchant, session)
        finally:
            stack.stop_all()
            await receiver.stop()
            await drop_database(server_db, name)
    rows = [
        "| measure | webhook service (1 worker process) | reference |",
        "|---|---|---|",
        f"| deliveries per second, {DELIVERIES} events, fast local receiver | {webhook_rate:,.0f} /s"
        f" | {raw_rate:,.0f} /s (plain aiohttp POSTs, {CONCURRENCY} concurrent) |",
        f"| first-attempt latency p50 (ingest answered -> receiver has it), n={LATENCY_SAMPLES} |"
        f" {statistics.median(webhook_ms):.1f} ms | {statistics.median(broker_ms):.1f} ms (bare AMQP consumer) |",
        f"| first-attempt latency p99 | {_pct(webhook_ms, 0.99):.1f} ms | {_pct(broker_ms, 0.99):.1f} ms |",
    ]
    return "\n".join(rows)


def main() -> str:
    return asyncio.run(_run())


if __name__ == "__main__":
    print(main())
