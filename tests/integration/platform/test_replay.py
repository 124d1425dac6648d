"""`python -m shared.replay` against real RabbitMQ: dead letters back to their one queue, unrouted
messages back to the exchange under their own routing keys, nothing lost on the way."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import aio_pika
import pytest

from shared.amqp import Names, Publisher, declare_platform
from shared.consumer import QueueSpec, declare_consumer_queue
from shared.replay import replay_dead_letters, replay_unrouted
from shared.testing import ROOT
from tests.integration.platform.conftest import drain_queue, eventually, message_count

Connection = aio_pika.abc.AbstractRobustConnection


async def test_a_message_published_before_its_queue_existed_reaches_it_after_a_replay(
    amqp_connection: Connection, amqp_names: Names, amqp_url: str, broker_cleanup: list[str]
) -> None:
    # The start-order case: ingest published calendar.created before the feed had ever declared its queue.
    publisher = Publisher(amqp_connection, amqp_names)
    message_id = str(uuid.uuid4())
    await publisher.publish(b'{"calendar": 1}', "calendar.created", message_id, correlation_id="req-1")
    stray = str(uuid.uuid4())
    await publisher.publish(b"{}", "nobody.listens", stray)
    channel = await amqp_connection.channel()
    assert await message_count(channel, amqp_names.unrouted) == 2

    broker_cleanup.append("feedish.projection")
    await declare_consumer_queue(channel, amqp_names, QueueSpec("feedish.projection", ("calendar.*",)))
    replayed = await replay_unrouted(amqp_connection, amqp_names)

    # The one with a queue now went there; the other is still unbound, so it is back in unrouted, and
    # the replay did not take it round again.
    assert (replayed.count, replayed.left) == (2, 1)
    (message,) = await drain_queue(channel, amqp_names("feedish.projection"))
    assert (message.message_id, message.type, message.body) == (message_id, "calendar.created", b'{"calendar": 1}')
    assert message.correlation_id == "req-1"
    assert message.routing_key == "calendar.created"
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    (left,) = await drain_queue(channel, amqp_names.unrouted)
    assert left.message_id == stray
    await publisher.close()


async def test_dead_letters_go_back_to_their_own_queue_only(
    amqp_connection: Connection, amqp_names: Names, broker_cleanup: list[str]
) -> None:
    channel = await amqp_connection.channel()
    broker_cleanup.extend(["a.projection", "b.projection"])
    for name in ("a.projection", "b.projection"):
        await declare_consumer_queue(channel, amqp_names, QueueSpec(name, ("thing.happened",)))
    publisher = Publisher(amqp_connection, amqp_names)
    message_id = str(uuid.uuid4())
    await publisher.publish(b'{"n": 7}', "thing.happened", message_id)
    await eventually(lambda: _count_is(channel, amqp_names("b.projection"), 1), what="b has the message")

    # a's consumer gives up on it: the broker dead-letters it into a.projection.dlq, with death records.
    queue = await channel.declare_queue(amqp_names("a.projection"), passive=True)
    failed = await queue.get(no_ack=False)
    assert failed is not None
    await failed.reject(requeue=False)
    await eventually(lambda: _count_is(channel, amqp_names("a.projection.dlq"), 1), what="a's dead letter")

    replayed = await replay_dead_letters(amqp_connection, amqp_names, "a.projection")

    assert (replayed.count, replayed.left) == (1, 0)
    (back,) = await drain_queue(channel, amqp_names("a.projection"))
    assert (back.message_id, back.type, back.body) == (message_id, "thing.happened", b'{"n": 7}')
    assert "x-death" not in (back.headers or {})
    # b had it all along and is not sent it a second time.
    assert await message_count(channel, amqp_names("b.projection")) == 1
    await publisher.close()


async def _count_is(channel: aio_pika.abc.AbstractChannel, queue: str, expected: int) -> bool:
    return await message_count(channel, queue) == expected


@pytest.mark.parametrize(
    ("args", "status", "says"),
    [
        (["dlq", "no.such.queue"], 1, "no such queue"),
        (["--limit", "0", "unrouted"], 2, "--limit must be 1 or more"),
    ],
)
def test_the_command_refuses_what_it_cannot_do_with_a_reason(
    amqp_url: str, amqp_names: Names, args: list[str], status: int, says: str
) -> None:
    env = {**os.environ, "KALENDS_AMQP_URL": amqp_url, "KALENDS_AMQP_PREFIX": amqp_names.prefix}
    done = subprocess.run(
        [sys.executable, "-m", "shared.replay", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == status, done.stderr
    assert says in done.stderr


async def test_the_command_prints_what_it_replayed(
    amqp_connection: Connection, amqp_names: Names, amqp_url: str, broker_cleanup: list[str]
) -> None:
    channel = await amqp_connection.channel()
    await declare_platform(channel, amqp_names)
    publisher = Publisher(amqp_connection, amqp_names)
    for _ in range(3):
        await publisher.publish(b"{}", "calendar.created", str(uuid.uuid4()))
    broker_cleanup.append("late.projection")
    await declare_consumer_queue(channel, amqp_names, QueueSpec("late.projection", ("calendar.created",)))
    env = {**os.environ, "KALENDS_AMQP_URL": amqp_url, "KALENDS_AMQP_PREFIX": amqp_names.prefix}

    done = subprocess.run(
        [sys.executable, "-m", "shared.replay", "--limit", "2", "unrouted"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {"source": amqp_names.unrouted, "replayed": 2, "left": 1}
    assert await message_count(channel, amqp_names("late.projection")) == 2
    await publisher.close()
