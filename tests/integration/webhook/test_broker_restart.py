"""RabbitMQ stopped and started mid-run (`rabbitmqctl stop_app` / `start_app`): nothing is lost
and nothing is sent again after a success.

This stops the broker, so it is short (about 3 s down), lives in a module of its own, and always
starts the broker again. On a broker other clients are using at the same moment (a shared
development machine) it skips rather than disrupt them, unless KALENDS_TEST_BROKER_RESTART=1.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
import uuid
from typing import Any

import asyncpg
import pytest

from services.webhook import services
from services.webhook.messaging.topology import delete_topology
from shared.amqp import Names
from tests.integration.webhook.conftest import BOX, SCHEDULE, subscription, subscription_message
from tests.integration.webhook.receiver import Receiver
from tests.integration.webhook.test_crash_recovery import worker_process

# The retry window must outlast the outage (stop_app, 3 s down, start_app and the reconnects take
# several seconds): attempts due while the broker is away are made late, and an attempt made after
# the window has closed fails the delivery, as it should. Steps every second keep the test short.
RESTART_SCHEDULE = (0.0, *(float(s) for s in range(1, 31)))

pytestmark = [
    # It stops the broker every other test uses: make test runs it alone, after the rest.
    pytest.mark.serial,
    pytest.mark.skipif(shutil.which("rabbitmqctl") is None, reason="needs a local rabbitmqctl"),
]


def rabbitmqctl(*args: str) -> str:
    done = subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=120, text=True)
    return done.stdout


def other_clients_connected() -> bool:
    """More AMQP connections than this test's own one: someone else is using the broker now."""
    listed = rabbitmqctl("list_connections", "-q", "--no-table-headers", "pid")
    return len([line for line in listed.splitlines() if line.strip()]) > 1


async def publish_with_retry(publish: Any, envelope: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            await publish(envelope)
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


async def test_deliveries_survive_a_broker_stop_and_start_without_loss_or_resends_after_success(
    database_url: str,
    amqp_url: str,
    amqp_names: Names,
    pool: asyncpg.Pool,
    receiver: Receiver,
    publish: Any,
    amqp_connection: Any,
) -> None:
    if os.environ.get("KALENDS_TEST_BROKER_RESTART") != "1" and other_clients_connected():
        pytest.skip("other clients are using this broker right now; KALENDS_TEST_BROKER_RESTART=1 forces the test")
    account = uuid.uuid4()
    # Every event fails twice here, so retry timers sit in the delay queues when the broker stops.
    flaky = await services.create_endpoint(
        pool,
        account,
        url=receiver.fail_each("/flaky", 2),
        event_types=None,
        enabled=True,
        description="",
        allow_private=True,
        box=BOX,
    )
    steady = await services.create_endpoint(
        pool,
        account,
        url=receiver.url("/steady"),
        event_types=None,
        enabled=True,
        description="",
        allow_private=True,
        box=BOX,
    )
    worker = worker_process(database_url, amqp_url, amqp_names, RESTART_SCHEDULE).start()
    try:
        await worker.wait_ready()
        before = [subscription_message("subscription.created", subscription(account)) for _ in range(5)]
        for envelope in before:
            await publish(envelope)
        await receiver.wait_for("/flaky", 5)
        try:
            rabbitmqctl("stop_app")
            await asyncio.sleep(3)
        finally:
            rabbitmqctl("start_app")
        after = [subscription_message("subscription.created", subscription(account)) for _ in range(3)]
        for envelope in after:
            await publish_with_retry(publish, envelope)

        expected = {str(e.id) for e in before + after}
        deadline = time.monotonic() + 60
        while True:
            async with pool.acquire() as conn:
                rows = await conn.fetch("SELECT event_id, endpoint_id, status FROM webhook.deliveries")
            done = {(str(r["event_id"]), r["endpoint_id"]) for r in rows if r["status"] == "succeeded"}
            if len(done) == 2 * len(expected):
                break
            assert time.monotonic() < deadline, f"{len(done)} of {2 * len(expected)} delivered"
            await asyncio.sleep(0.3)
        await asyncio.sleep(2.0)

        for endpoint, path in ((flaky, "/flaky"), (steady, "/steady")):
            page = await services.list_deliveries(pool, account, endpoint.id, limit=100, status=None, before=None)
            assert {str(row["event_id"]) for row, _ in page.deliveries} == expected
            for row, attempts in page.deliveries:
                success = attempts[-1]
                assert success["succeeded"] and sum(1 for a in attempts if a["succeeded"]) == 1
                received = [r for r in receiver.at(path) if r.headers["webhook-id"] == str(row["event_id"])]
                assert all(r.at <= success["finished_at"].timestamp() + 0.05 for r in received)
                assert sum(1 for r in received if r.status == 200) == 1
    finally:
        worker.stop()
        channel = await amqp_connection.channel()
        await delete_topology(channel, amqp_names, SCHEDULE)
        await delete_topology(channel, amqp_names, RESTART_SCHEDULE)
