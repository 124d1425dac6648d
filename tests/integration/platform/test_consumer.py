"""The idempotent consumer against real PostgreSQL and RabbitMQ: once-only effects, poison and retries."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable

import aio_pika
import asyncpg
import pytest
import structlog

from shared.amqp import Names, Publisher
from shared.consumer import IdempotentConsumer, QueueSpec
from shared.logging import configure_logging, get_logger
from shared.messages import AccountCreated, Envelope, make_envelope
from tests.integration.platform.conftest import SCHEMA, drain_queue, eventually, message_count

Handler = Callable[[asyncpg.Connection, Envelope], Awaitable[None]]


def account_created(code: str = "acct") -> Envelope:
    return make_envelope("account.created", AccountCreated(account_id=uuid.uuid4(), account_code=code, name=code))


async def record_effect(conn: asyncpg.Connection, envelope: Envelope) -> None:
    await conn.execute(f"INSERT INTO {SCHEMA}.effects VALUES ($1, $2)", envelope.id, envelope.data["accountCode"])


class Harness:
    """One consumer on a queue of the test's own, and a publisher onto the events exchange."""

    def __init__(
        self,
        connection: aio_pika.abc.AbstractRobustConnection,
        pool: asyncpg.Pool,
        names: Names,
        spec: QueueSpec,
        handler: Handler,
    ) -> None:
        self.connection, self.pool, self.names, self.spec = connection, pool, names, spec
        self.consumer = IdempotentConsumer(
            connection=connection, pool=pool, names=names, schema=SCHEMA, spec=spec, handler=handler
        )
        self.publisher = Publisher(connection, names)

    async def publish(self, envelope: Envelope) -> None:
        await self.publisher.publish(envelope.to_bytes(), envelope.type, str(envelope.id))

    async def publish_raw(self, body: bytes, routing_key: str = "account.created") -> None:
        await self.publisher.publish(body, routing_key, str(uuid.uuid4()))

    async def effects(self) -> Counter[str]:
        rows = await self.pool.fetch(f"SELECT payload FROM {SCHEMA}.effects")
        return Counter(r["payload"] for r in rows)

    async def dead_letters(self) -> list[aio_pika.abc.AbstractIncomingMessage]:
        channel = await self.connection.channel()
        try:
            return await drain_queue(channel, self.names(f"{self.spec.name}.dlq"))
        finally:
            await channel.close()


@pytest.fixture
async def harness_factory(
    amqp_connection: aio_pika.abc.AbstractRobustConnection,
    plt_pool: asyncpg.Pool,
    amqp_names: Names,
    broker_cleanup: list[str],
) -> AsyncIterator[Callable[..., Awaitable[Harness]]]:
    started: list[Harness] = []

    async def make(handler: Handler = record_effect, **spec_args: object) -> Harness:
        spec = QueueSpec(name="effects", routing_keys=["account.created"], **spec_args)  # type: ignore[arg-type]
        broker_cleanup.append(spec.name)
        harness = Harness(amqp_connection, plt_pool, amqp_names, spec, handler)
        await harness.consumer.start()
        started.append(harness)
        return harness

    yield make
    for harness in started:
        await harness.consumer.stop()
        await harness.publisher.close()


async def test_a_redelivered_message_is_a_no_op(harness_factory: Callable[..., Awaitable[Harness]]) -> None:
    harness = await harness_factory()
    envelope = account_created("once")

    await harness.publish(envelope)
    await harness.publish(envelope)  # the same id again, as after a relay crash
    await eventually(lambda: reached(harness.consumer, "processed", 2))

    assert await harness.effects() == {"once": 1}
    assert (harness.consumer.applied, harness.consumer.duplicates) == (1, 1)
    recorded = await harness.pool.fetch(f"SELECT consumer, message_id FROM {SCHEMA}.processed_messages")
    assert [(r["consumer"], r["message_id"]) for r in recorded] == [("effects", envelope.id)]


async def test_a_poison_message_goes_to_the_dead_letter_queue_and_the_next_message_is_processed(
    harness_factory: Callable[..., Awaitable[Harness]],
) -> None:
    harness = await harness_factory()

    await harness.publish_raw(b"{ this is not an envelope")
    await harness.publish(account_created("after-poison"))
    await eventually(lambda: reached(harness.consumer, "applied", 1))

    assert await harness.effects() == {"after-poison": 1}
    dead = await harness.dead_letters()
    assert [m.body for m in dead] == [b"{ this is not an envelope"]
    assert harness.consumer.poisoned == 1


async def test_a_message_whose_handler_keeps_failing_is_retried_then_dead_lettered_after_the_delivery_limit(
    harness_factory: Callable[..., Awaitable[Harness]],
) -> None:
    attempts: Counter[str] = Counter()

    async def fails_for_doomed(conn: asyncpg.Connection, envelope: Envelope) -> None:
        code = envelope.data["accountCode"]
        attempts[code] += 1
        await record_effect(conn, envelope)  # rolled back with the failure below
        if code == "doomed":
            raise RuntimeError("this handler never copes with doomed")

    harness = await harness_factory(fails_for_doomed, delivery_limit=3)
    doomed = account_created("doomed")
    await harness.publish(doomed)
    await harness.publish(account_created("fine"))

    await eventually(lambda: dead_letter_count(harness, 1), what="doomed message dead-lettered")

    # RabbitMQ's quorum queue delivers it once, then re-delivers it `delivery_limit` times.
    assert attempts["doomed"] == 1 + 3
    assert attempts["fine"] == 1
    assert await harness.effects() == {"fine": 1}  # every failed attempt rolled back
    dead = await harness.dead_letters()
    assert [m.message_id for m in dead] == [str(doomed.id)]
    assert Envelope.model_validate_json(dead[0].body) == doomed
    recorded = {
        r["message_id"] for r in await harness.pool.fetch(f"SELECT message_id FROM {SCHEMA}.processed_messages")
    }
    assert doomed.id not in recorded


async def test_a_handler_that_fails_twice_then_succeeds_applies_the_message_once(
    harness_factory: Callable[..., Awaitable[Harness]],
) -> None:
    failures = {"left": 2}

    async def flaky(conn: asyncpg.Connection, envelope: Envelope) -> None:
        await record_effect(conn, envelope)
        if failures["left"]:
            failures["left"] -= 1
            raise ConnectionResetError("the downstream hiccupped")  # an OSError of the handler's own

    harness = await harness_factory(flaky, delivery_limit=5)
    await harness.publish(account_created("flaky"))
    await eventually(lambda: reached(harness.consumer, "applied", 1))

    assert await harness.effects() == {"flaky": 1}
    assert harness.consumer.failed == 2
    assert await harness.dead_letters() == []


async def test_the_queue_is_a_quorum_queue_with_a_delivery_limit_and_a_dead_letter_queue(
    harness_factory: Callable[..., Awaitable[Harness]], amqp_connection: aio_pika.abc.AbstractRobustConnection
) -> None:
    harness = await harness_factory(delivery_limit=7)
    channel = await amqp_connection.channel()
    underlay = await channel.get_underlay_channel()
    name = harness.names("effects")
    # Redeclaring with other arguments fails with PRECONDITION_FAILED, so these are exactly its arguments.
    same = {
        "x-queue-type": "quorum",
        "x-delivery-limit": 7,
        "x-dead-letter-exchange": harness.names.dead_letter,
        "x-dead-letter-routing-key": name,
    }
    await underlay.queue_declare(name, durable=True, arguments=same)
    with pytest.raises(aio_pika.exceptions.ChannelPreconditionFailed):
        await underlay.queue_declare(name, durable=True, arguments={**same, "x-queue-type": "classic"})
    channel = await amqp_connection.channel()
    assert await message_count(channel, f"{name}.dlq") == 0


async def test_messages_wait_unacked_while_the_consumer_is_stopped_and_are_applied_after(
    harness_factory: Callable[..., Awaitable[Harness]],
) -> None:
    harness = await harness_factory()
    await harness.consumer.stop()
    await harness.publish(account_created("later"))
    await asyncio.sleep(0.2)
    assert await harness.effects() == {}
    await harness.consumer.start()
    await eventually(lambda: reached(harness.consumer, "applied", 1))
    assert await harness.effects() == {"later": 1}


async def test_every_log_line_of_a_message_carries_its_message_id(
    harness_factory: Callable[..., Awaitable[Harness]], monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    configure_logging("json", "info", "platform-test")
    handler_log = get_logger("test.handler")

    async def chatty(conn: asyncpg.Connection, envelope: Envelope) -> None:
        handler_log.info("handler.step", step=1)
        await record_effect(conn, envelope)
        logging.getLogger("some.library").warning("library says something")
        if envelope.data["accountCode"] == "grumpy":
            raise ValueError("grumpy")

    try:
        harness = await harness_factory(chatty, delivery_limit=0)
        happy, grumpy = account_created("happy"), account_created("grumpy")
        await harness.publish(happy)
        await harness.publish(grumpy)
        await eventually(lambda: dead_letter_count(harness, 1), what="grumpy dead-lettered")
        await eventually(lambda: reached(harness.consumer, "applied", 1))
    finally:
        structlog.reset_defaults()
        structlog.contextvars.clear_contextvars()
        logging.getLogger().handlers.clear()

    lines = [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]
    by_message = Counter(line.get("message_id") for line in lines if line.get("queue") == "effects")
    assert by_message[str(happy.id)] >= 3  # handler step, library warning, applied
    assert by_message[str(grumpy.id)] >= 3  # handler step, library warning, failure with traceback
    consumer_lines = [line for line in lines if line.get("event") in ("handler.step", "library says something")]
    assert consumer_lines and all(line.get("message_id") for line in consumer_lines)
    failure = next(line for line in lines if line.get("event") == "consumer.failed")
    assert failure["message_id"] == str(grumpy.id)
    assert "ValueError: grumpy" in failure["exception"]


async def reached(consumer: IdempotentConsumer, counter: str, expected: int) -> bool:
    return int(getattr(consumer, counter)) >= expected


async def dead_letter_count(harness: Harness, expected: int) -> bool:
    channel = await harness.connection.channel()
    try:
        return await message_count(channel, harness.names(f"{harness.spec.name}.dlq")) >= expected
    finally:
        await channel.close()


async def test_a_database_connection_lost_under_the_handler_is_retried_without_spending_a_delivery(
    harness_factory: Callable[..., Awaitable[Harness]],
) -> None:
    kills = {"left": 2}

    async def connection_dies(conn: asyncpg.Connection, envelope: Envelope) -> None:
        await record_effect(conn, envelope)
        if kills["left"]:
            kills["left"] -= 1
            # The server ends this session, as a PostgreSQL restart or failover would.
            await conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")

    harness = await harness_factory(connection_dies, delivery_limit=1)
    await harness.publish(account_created("survivor"))
    await eventually(lambda: reached(harness.consumer, "applied", 1))

    assert await harness.effects() == {"survivor": 1}
    assert harness.consumer.failed == 0  # retried in place: the delivery limit of 1 was never touched
    assert await harness.dead_letters() == []


async def test_concurrency_one_applies_messages_one_at_a_time_in_delivery_order(
    harness_factory: Callable[..., Awaitable[Harness]],
) -> None:
    running = {"now": 0, "most": 0}
    order: list[str] = []

    async def slow(conn: asyncpg.Connection, envelope: Envelope) -> None:
        running["now"] += 1
        running["most"] = max(running["most"], running["now"])
        await asyncio.sleep(0.02)
        order.append(envelope.data["accountCode"])
        await record_effect(conn, envelope)
        running["now"] -= 1

    harness = await harness_factory(slow, concurrency=1)
    codes = [f"m{n}" for n in range(8)]
    for code in codes:
        await harness.publish(account_created(code))
    await eventually(lambda: reached(harness.consumer, "applied", 8))
    assert order == codes
    assert running["most"] == 1


async def test_by_default_deliveries_are_handled_concurrently(
    harness_factory: Callable[..., Awaitable[Harness]],
) -> None:
    running = {"now": 0, "most": 0}

    async def slow(conn: asyncpg.Connection, envelope: Envelope) -> None:
        running["now"] += 1
        running["most"] = max(running["most"], running["now"])
        await asyncio.sleep(0.1)
        await record_effect(conn, envelope)
        running["now"] -= 1

    harness = await harness_factory(slow)
    for n in range(6):
        await harness.publish(account_created(f"c{n}"))
    await eventually(lambda: reached(harness.consumer, "applied", 6))
    assert running["most"] > 1
