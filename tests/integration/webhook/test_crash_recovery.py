"""A webhook worker killed with SIGKILL mid-delivery and restarted loses nothing and, after a
recorded success, sends nothing again."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from typing import Any

import asyncpg
import pytest

from services.webhook import services
from services.webhook.adapters.repository import ORPHANED_ATTEMPT
from shared.amqp import Names
from shared.testing import ServiceProcess
from tests.integration.webhook.conftest import BOX, ENCRYPTION_KEY, subscription, subscription_message
from tests.integration.webhook.receiver import Receiver, Reply


def worker_process(
    database_url: str, amqp_url: str, names: Names, schedule: tuple[float, ...] = (0, 1, 2, 3)
) -> ServiceProcess:
    return ServiceProcess(
        "webhook",
        {
            "KALENDS_DATABASE_URL": database_url,
            "KALENDS_AMQP_URL": amqp_url,
            "KALENDS_AMQP_PREFIX": names.prefix,
            "KALENDS_WEBHOOK_RETRY_SCHEDULE": ",".join(f"{step:g}" for step in schedule),
            "KALENDS_WEBHOOK_TIMEOUT": "2.5",
            "KALENDS_WEBHOOK_ALLOW_PRIVATE": "1",
            "KALENDS_ENCRYPTION_KEYS": ENCRYPTION_KEY,
            "KALENDS_WEBHOOK_SWEEP_INTERVAL": "0.2",
            "KALENDS_WEBHOOK_SWEEP_GRACE": "0.5",
        },
        ["--role", "worker"],
    )


async def delivery_states(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        return await conn.fetch("SELECT id, event_id, status FROM webhook.deliveries")


async def test_a_worker_killed_mid_delivery_loses_nothing_and_resends_nothing_after_a_success(
    database_url: str, amqp_url: str, amqp_names: Names, pool: asyncpg.Pool, receiver: Receiver, publish: Any
) -> None:
    events = 12
    account = uuid.uuid4()
    # The first eight requests hang for 2 s: the worker is killed while they are in flight.
    url = receiver.script("/hook", *[Reply(200, delay=2.0)] * 8)
    endpoint = await services.create_endpoint(
        pool, account, url=url, event_types=None, enabled=True, description="", allow_private=True, box=BOX
    )
    first = worker_process(database_url, amqp_url, amqp_names).start()
    second = worker_process(database_url, amqp_url, amqp_names)
    try:
        await first.wait_ready()
        envelopes = [subscription_message("subscription.created", subscription(account)) for _ in range(events)]
        for envelope in envelopes:
            await publish(envelope)
        await receiver.wait_for("/hook", 8)
        first.stop(signal.SIGKILL)
        second.start()
        await second.wait_ready()

        deadline = time.monotonic() + 30
        while True:
            states = await delivery_states(pool)
            if len(states) == events and all(s["status"] == "succeeded" for s in states):
                break
            assert time.monotonic() < deadline, [s["status"] for s in states]
            await asyncio.sleep(0.2)
        await asyncio.sleep(2.0)  # anything sent again would arrive by now

        page = await services.list_deliveries(pool, account, endpoint.id, limit=100, status=None, before=None)
        assert {str(row["event_id"]) for row, _ in page.deliveries} == {str(e.id) for e in envelopes}
        orphaned = 0
        for row, attempts in page.deliveries:
            successes = [a for a in attempts if a["succeeded"]]
            assert len(successes) == 1 and successes[0] is attempts[-1], attempts
            orphaned += sum(1 for a in attempts if a["error"] == ORPHANED_ATTEMPT)
            received = [r for r in receiver.at("/hook") if r.headers["webhook-id"] == str(row["event_id"])]
            assert received, f"event {row['event_id']} never reached the receiver"
            # Nothing arrived after the success was recorded.
            assert all(r.at <= successes[0]["finished_at"].timestamp() + 0.05 for r in received)
            assert len(received) <= len(attempts)
        assert orphaned >= 1  # the killed attempts are on the record, marked as such
    finally:
        first.kill()
        second.stop()


@pytest.fixture(autouse=True)
async def _cleanup_queues(amqp_connection: Any, amqp_names: Names) -> Any:
    yield
    from services.webhook.messaging.topology import delete_topology
    from tests.integration.webhook.conftest import SCHEDULE

    channel = await amqp_connection.channel()
    await delete_topology(channel, amqp_names, SCHEDULE)
