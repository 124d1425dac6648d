"""Fault runs: PostgreSQL restarted, RabbitMQ restarted, workers SIGKILLed, each in the middle of load.

Afterwards every accepted change is in every affected feed and every due webhook was delivered to a
real receiver, each exactly once. The servers are private to this module (tests/faults/servers.py):
the shared ones are never touched. Run with `-s` to see the counts of each run.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import pytest

from shared.testing import Stack
from tests.faults.load import Outcome, converge, prepare, under_fault
from tests.faults.servers import PrivatePostgres, PrivateRabbit
from tests.integration.webhook.receiver import Receiver

# The private RabbitMQ node runs with its own epmd (tests/faults/servers.py): registered with the
# shared node's port mapper, its starts and kills once left the shared broker unable to answer the AMQP
# handshake. Three runs with its own epmd left the shared broker answering. KALENDS_TEST_FAULTS=0 skips.
pytestmark = [
    pytest.mark.serial,
    pytest.mark.e2e,
    pytest.mark.timeout(150),
    pytest.mark.skipif(os.environ.get("KALENDS_TEST_FAULTS") == "0", reason="KALENDS_TEST_FAULTS=0"),
]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    yield r
    await r.stop()


def assert_exactly_once(name: str, recovered: int, outcome: Outcome) -> None:
    print(f"\nfault run [{name}]: {outcome.summary()}; {recovered} accepted after the fault")
    assert recovered > 0, f"{name}: nothing was accepted after the fault: {outcome.summary()}"
    assert not outcome.missing, f"{name}: accepted events missing from feeds: {outcome.missing}"
    assert not outcome.duplicated, f"{name}: events more than once in feeds: {outcome.duplicated}"
    assert not outcome.undelivered, f"{name}: Subscribe webhooks never delivered: {outcome.undelivered}"
    assert not outcome.redelivered, f"{name}: Subscribe webhooks delivered more than once: {outcome.redelivered}"


async def test_every_accepted_change_arrives_once_after_postgresql_restarts_mid_load(
    fault_stack: Stack, private_postgres: PrivatePostgres, receiver: Receiver
) -> None:
    tenant = await prepare(fault_stack, receiver)
    started = await private_postgres.started_at()
    recovered = await under_fault(tenant, lambda: private_postgres.restart("immediate", down_for=2.0))
    assert await private_postgres.started_at() > started  # it did restart
    assert_exactly_once("postgresql restart", recovered, await converge(tenant, receiver))


async def test_every_accepted_change_arrives_once_after_rabbitmq_restarts_mid_load(
    fault_stack: Stack, private_rabbit: PrivateRabbit, receiver: Receiver
) -> None:
    tenant = await prepare(fault_stack, receiver)
    recovered = await under_fault(tenant, lambda: private_rabbit.restart(down_for=1.0))
    assert_exactly_once("rabbitmq restart", recovered, await converge(tenant, receiver))


async def test_every_accepted_change_arrives_once_after_workers_are_sigkilled_mid_batch(
    fault_stack: Stack, receiver: Receiver
) -> None:
    tenant = await prepare(fault_stack, receiver)
    workers = ("ingest", "feed", "webhook")  # the outbox relay, the projection, the dispatcher

    async def kill_and_restart() -> None:
        for name in workers:
            fault_stack.processes[name].kill()  # SIGKILL: no cleanup, whatever batch was in flight
        await asyncio.sleep(0.5)
        feed_env = {"KALENDS_PUBLIC_API_URL": fault_stack.url("ingest")}
        await asyncio.gather(*(fault_stack.start(n, env=feed_env if n == "feed" else None) for n in workers))

    recovered = await under_fault(tenant, kill_and_restart, before=1.2)
    assert_exactly_once("workers sigkilled", recovered, await converge(tenant, receiver))
