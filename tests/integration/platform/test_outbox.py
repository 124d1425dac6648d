"""The outbox relay against real PostgreSQL and RabbitMQ: confirms, NOTIFY, sweeps, SKIP LOCKED, a kill."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
import textwrap
import uuid
from collections import Counter

import aio_pika
import asyncpg
import pytest

from shared import amqp, db
from shared.amqp import Names, Publisher, declare_platform
from shared.consumer import IdempotentConsumer, QueueSpec
from shared.messages import AccountCreated, Envelope, make_envelope
from shared.outbox import OutboxRelay, enqueue
from shared.testing import ROOT
from tests.integration.platform.conftest import SCHEMA, drain_queue, eventually, ids, message_count


def account_created(n: int = 0) -> Envelope:
    return make_envelope(
        "account.created", AccountCreated(account_id=uuid.uuid4(), account_code=f"acct{n}", name=f"Account {n}")
    )


async def capture_queue(
    channel: aio_pika.abc.AbstractChannel, names: Names, cleanup: list[str], name: str = "capture"
) -> aio_pika.abc.AbstractQueue:
    """A queue bound to every routing key of the events exchange (classic: its declare-ok count is exact)."""
    events = await declare_platform(channel, names)
    cleanup.append(name)
    queue = await channel.declare_queue(names(name), durable=True)
    await queue.bind(events, routing_key="#")
    return queue


async def enqueue_committed(pool: asyncpg.Pool, envelopes: list[Envelope]) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await enqueue(conn, SCHEMA, envelopes)


async def unsent(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval(f"SELECT count(*) FROM {SCHEMA}.outbox WHERE sent_at IS NULL"))


async def test_the_relay_publishes_unsent_rows_persistent_with_their_ids_and_then_marks_them_sent(
    plt_pool: asyncpg.Pool,
    amqp_connection: aio_pika.abc.AbstractRobustConnection,
    amqp_names: Names,
    broker_cleanup: list[str],
) -> None:
    channel = await amqp_connection.channel()
    await capture_queue(channel, amqp_names, broker_cleanup)
    envelopes = [account_created(n) for n in range(3)]
    await enqueue_committed(plt_pool, envelopes)
    relay = OutboxRelay(plt_pool, Publisher(amqp_connection, amqp_names), SCHEMA)

    assert await relay.relay_once() == 3

    assert await unsent(plt_pool) == 0
    received = await drain_queue(channel, amqp_names("capture"))
    assert ids(received) == [e.id for e in envelopes]  # in outbox order
    for message, envelope in zip(received, envelopes, strict=True):
        assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
        assert message.content_type == "application/json"
        assert message.routing_key == "account.created"
        assert Envelope.model_validate_json(message.body) == envelope
    assert await relay.relay_once() == 0


async def test_a_message_the_broker_cannot_route_is_not_marked_sent(
    plt_pool: asyncpg.Pool,
    amqp_connection: aio_pika.abc.AbstractRobustConnection,
    amqp_names: Names,
    broker_cleanup: list[str],
) -> None:
    publisher = Publisher(amqp_connection, amqp_names)
    relay = OutboxRelay(plt_pool, publisher, SCHEMA)
    await enqueue_committed(plt_pool, [account_created()])
    assert await relay.relay_once() == 1  # the alternate exchange takes what nobody is bound to
    # Without the alternate exchange nothing can take it: the mandatory publish comes back, no confirm.
    channel = await amqp_connection.channel()
    await channel.exchange_delete(amqp_names.unrouted)
    await enqueue_committed(plt_pool, [account_created()])

    with pytest.raises(Exception):  # noqa: B017 - aio-pika's DeliveryError or PublishError, per version
        await relay.relay_once()

    assert await unsent(plt_pool) == 1


async def test_the_unrouted_queue_keeps_messages_no_consumer_is_bound_to(
    plt_pool: asyncpg.Pool,
    amqp_connection: aio_pika.abc.AbstractRobustConnection,
    amqp_names: Names,
    broker_cleanup: list[str],
) -> None:
    envelope = account_created()
    await enqueue_committed(plt_pool, [envelope])
    await OutboxRelay(plt_pool, Publisher(amqp_connection, amqp_names), SCHEMA).drain()
    channel = await amqp_connection.channel()
    assert ids(await drain_queue(channel, amqp_names.unrouted)) == [envelope.id]


async def test_notify_wakes_the_relay_long_before_its_sweep(
    plt_pool: asyncpg.Pool,
    amqp_connection: aio_pika.abc.AbstractRobustConnection,
    amqp_names: Names,
    broker_cleanup: list[str],
) -> None:
    channel = await amqp_connection.channel()
    await capture_queue(channel, amqp_names, broker_cleanup)
    relay = OutboxRelay(plt_pool, Publisher(amqp_connection, amqp_names), SCHEMA, sweep_interval=60)
    task = asyncio.create_task(relay.run())
    try:
        await asyncio.sleep(0.3)  # let it sweep once and start waiting
        envelope = account_created()
        await enqueue_committed(plt_pool, [envelope])
        # Far less than the 60 s sweep: only the NOTIFY can have woken it.
        await eventually(lambda: message_count_is(channel, amqp_names("capture"), 1), timeout=5, what="NOTIFY wake-up")
        # Marked sent right after the confirm (the message can arrive a moment before the commit).
        await eventually(lambda: unsent_is(plt_pool, 0), timeout=5, what="row marked sent")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def unsent_is(pool: asyncpg.Pool, expected: int) -> bool:
    return await unsent(pool) == expected


async def message_count_is(channel: aio_pika.abc.AbstractChannel, queue: str, expected: int) -> bool:
    return await message_count(channel, queue) == expected


async def test_the_relay_sweeps_on_its_timer_when_no_notify_comes(
    plt_pool: asyncpg.Pool,
    amqp_connection: aio_pika.abc.AbstractRobustConnection,
    amqp_names: Names,
    broker_cleanup: list[str],
) -> None:
    channel = await amqp_connection.channel()
    await capture_queue(channel, amqp_names, broker_cleanup)
    await plt_pool.execute(f"ALTER TABLE {SCHEMA}.outbox DISABLE TRIGGER outbox_notify")
    relay = OutboxRelay(plt_pool, Publisher(amqp_connection, amqp_names), SCHEMA, sweep_interval=0.3)
    task = asyncio.create_task(relay.run())
    try:
        await asyncio.sleep(0.2)
        await enqueue_committed(plt_pool, [account_created(), account_created()])
        await eventually(lambda: message_count_is(channel, amqp_names("capture"), 2), timeout=5, what="timer sweep")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_purge_deletes_only_rows_sent_before_the_retention_window(
    plt_pool: asyncpg.Pool, amqp_connection: aio_pika.abc.AbstractRobustConnection, amqp_names: Names
) -> None:
    old_sent, recent_sent, old_unsent = account_created(1), account_created(2), account_created(3)
    await enqueue_committed(plt_pool, [old_sent, recent_sent, old_unsent])
    await plt_pool.execute(
        f"UPDATE {SCHEMA}.outbox SET created_at = now() - interval '3 days',"
        " sent_at = CASE WHEN id = $1 THEN now() - interval '2 days' WHEN id = $2 THEN now() END",
        old_sent.id,
        recent_sent.id,
    )
    relay = OutboxRelay(plt_pool, Publisher(amqp_connection, amqp_names), SCHEMA, retention_hours=24)

    assert await relay.purge_sent() == 1

    left = {r["id"] for r in await plt_pool.fetch(f"SELECT id FROM {SCHEMA}.outbox")}
    assert left == {recent_sent.id, old_unsent.id}


async def test_two_relays_at_once_send_every_row_exactly_once(
    database_url: str,
    plt_pool: asyncpg.Pool,
    amqp_url: str,
    amqp_connection: aio_pika.abc.AbstractRobustConnection,
    amqp_names: Names,
    broker_cleanup: list[str],
) -> None:
    channel = await amqp_connection.channel()
    await capture_queue(channel, amqp_names, broker_cleanup)
    envelopes = [account_created(n) for n in range(2000)]
    await enqueue_committed(plt_pool, envelopes)

    # Two relays as two processes would have them: their own pools and broker connections.
    pools = [await db.create_pool(database_url, min_size=1, max_size=2) for _ in range(2)]
    connections = [await amqp.connect(amqp_url) for _ in range(2)]
    try:
        relays = [
            OutboxRelay(pool, Publisher(conn, amqp_names), SCHEMA, batch_size=50)
            for pool, conn in zip(pools, connections, strict=True)
        ]
        sent = await asyncio.gather(*(relay.drain() for relay in relays))
    finally:
        for conn in connections:
            await conn.close()
        for pool in pools:
            await pool.close()

    assert sum(sent) == 2000
    assert min(sent) > 0, f"one relay did all the work ({sent}): they did not run at once"
    assert await unsent(plt_pool) == 0
    # Every publish was confirmed before drain() returned, so the queue holds exactly what was sent.
    assert await message_count(channel, amqp_names("capture")) == 2000
    deliveries = Counter(ids(await drain_queue(channel, amqp_names("capture"))))
    assert len(deliveries) == 2000
    assert set(deliveries.values()) == {1}
    assert set(deliveries) == {e.id for e in envelopes}


RELAY_PROCESS = textwrap.dedent(
    """
    import asyncio, sys
    from shared import amqp, db
    from shared.amqp import Names, Publisher
    from shared.outbox import OutboxRelay

    async def main():
        pool = await db.create_pool(sys.argv[1], min_size=1, max_size=2)
        connection = await amqp.connect(sys.argv[2])
        relay = OutboxRelay(pool, Publisher(connection, Names(sys.argv[3])), "plt")
        print("sent", await relay.drain(), flush=True)

    asyncio.run(main())
    """
)


async def test_a_relay_killed_between_publish_and_mark_sent_publishes_again_and_the_consumer_applies_once(
    database_url: str,
    plt_pool: asyncpg.Pool,
    amqp_url: str,
    amqp_connection: aio_pika.abc.AbstractRobustConnection,
    amqp_names: Names,
    broker_cleanup: list[str],
) -> None:
    spec = QueueSpec("effects", ["account.created"])
    broker_cleanup.append(spec.name)

    async def apply(conn: asyncpg.Connection, envelope: Envelope) -> None:
        await conn.execute(f"INSERT INTO {SCHEMA}.effects VALUES ($1, $2)", envelope.id, envelope.type)

    consumer = IdempotentConsumer(
        connection=amqp_connection, pool=plt_pool, names=amqp_names, schema=SCHEMA, spec=spec, handler=apply
    )
    await consumer.start()
    envelopes = [account_created(n) for n in range(5)]
    await enqueue_committed(plt_pool, envelopes)

    # Hold a SHARE lock on the outbox: the relay's SELECT ... FOR UPDATE passes, its UPDATE (mark
    # sent) waits. The relay in the other process is the unmodified code; it stops exactly after the
    # broker confirmed every publish and before the commit, and is SIGKILLed there.
    blocker = await db.connect(database_url)
    blocker_tx = blocker.transaction()
    await blocker_tx.start()
    await blocker.execute(f"LOCK TABLE {SCHEMA}.outbox IN SHARE MODE")
    process = subprocess.Popen(
        [sys.executable, "-c", RELAY_PROCESS, database_url, amqp_url, amqp_names.prefix], cwd=ROOT
    )
    try:
        # The first copies reach the consumer: the broker had confirmed them.
        await eventually(lambda: has(consumer.processed, 5), timeout=20, what="first publication")

        async def relay_waits_on_the_lock() -> bool:
            waiting = await plt_pool.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock' AND query LIKE 'UPDATE plt.outbox%'"
            )
            return bool(waiting)

        await eventually(relay_waits_on_the_lock, what="relay blocked before mark-sent")
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
        await blocker_tx.rollback()
        await blocker.close()

    async def killed_backend_gone() -> bool:
        return not await plt_pool.fetchval(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND query LIKE 'UPDATE plt.outbox%'"
        )

    await eventually(killed_backend_gone, what="the killed relay's transaction rolled back")
    assert await unsent(plt_pool) == 5  # never marked sent

    # A relay that lives publishes them again; the consumer sees every id twice and applies it once.
    assert await OutboxRelay(plt_pool, Publisher(amqp_connection, amqp_names), SCHEMA).drain() == 5
    await eventually(lambda: has(consumer.processed, 10), what="second publication consumed")
    await consumer.stop()
    assert (consumer.applied, consumer.duplicates) == (5, 5)
    effects = Counter(r["message_id"] for r in await plt_pool.fetch(f"SELECT message_id FROM {SCHEMA}.effects"))
    assert effects == {e.id: 1 for e in envelopes}
    assert await unsent(plt_pool) == 0


async def has(value: int, expected: int) -> bool:
    return value >= expected


async def parked_rows(pool: asyncpg.Pool) -> dict[uuid.UUID, str]:
    rows = await pool.fetch(f"SELECT id, park_reason FROM {SCHEMA}.outbox WHERE parked_at IS NOT NULL")
    return {r["id"]: r["park_reason"] for r in rows}


async def test_a_row_larger_than_the_broker_allows_is_parked_and_the_rows_behind_it_are_published_at_once(
    plt_pool: asyncpg.Pool,
    amqp_connection: aio_pika.abc.AbstractRobustConnection,
    amqp_names: Names,
    broker_cleanup: list[str],
) -> None:
    channel = await amqp_connection.channel()
    await capture_queue(channel, amqp_names, broker_cleanup)
    before, after = account_created(1), [account_created(n) for n in range(2, 5)]
    huge = make_envelope(
        "account.created", AccountCreated(account_id=uuid.uuid4(), account_code="huge", name="x" * 20_000)
    )
    await enqueue_committed(plt_pool, [before, huge, *after])
    # The broker's own limit is 128 MiB; the relay is told a small one so the test sends kilobytes.
    relay = OutboxRelay(
        plt_pool, Publisher(amqp_connection, amqp_names), SCHEMA, batch_size=2, max_message_bytes=16 * 1024
    )

    assert await relay.drain() == 4

    received = await drain_queue(channel, amqp_names("capture"))
    assert ids(received) == [before.id, *(e.id for e in after)]
    parked = await parked_rows(plt_pool)
    assert list(parked) == [huge.id]
    assert "exceeds the broker's limit of 16384 bytes" in parked[huge.id]
    assert await unsent(plt_pool) == 1  # the parked row: never marked sent, kept for an operator
    assert relay.metrics.parked.labels(SCHEMA, "too_large")._value.get() == 1
    assert await relay.measure() == (0, 1)
    assert relay.metrics.backlog.labels(SCHEMA)._value.get() == 0
    assert relay.metrics.parked_rows.labels(SCHEMA)._value.get() == 1
    assert await relay.relay_once() == 0  # a parked row is not tried again


async def test_a_row_that_keeps_failing_alone_is_parked_after_max_attempts_while_the_others_go_out(
    plt_pool: asyncpg.Pool,
    amqp_connection: aio_pika.abc.AbstractRobustConnection,
    amqp_names: Names,
    broker_cleanup: list[str],
) -> None:
    channel = await amqp_connection.channel()
    await capture_queue(channel, amqp_names, broker_cleanup)
    poison = account_created(0)
    good = [account_created(n) for n in range(1, 7)]
    async with plt_pool.acquire() as conn, conn.transaction():
        # AMQP caps a routing key at 255 bytes: this row can never be published, whatever the broker.
        await conn.execute(
            f"INSERT INTO {SCHEMA}.outbox (id, routing_key, body) VALUES ($1, $2, $3)",
            poison.id,
            "account.created." + "x" * 300,
            poison.to_bytes(),
        )
        await enqueue(conn, SCHEMA, good)
    relay = OutboxRelay(plt_pool, Publisher(amqp_connection, amqp_names), SCHEMA, batch_size=2, max_attempts=3)

    assert await relay.drain() == 6

    assert ids(await drain_queue(channel, amqp_names("capture"))) == [e.id for e in good]
    parked = await parked_rows(plt_pool)
    assert list(parked) == [poison.id]
    assert parked[poison.id].startswith("publishing failed 3 times")
    assert relay.metrics.parked.labels(SCHEMA, "failing")._value.get() == 1


async def test_when_nothing_gets_through_no_attempt_is_counted_against_the_rows(
    plt_pool: asyncpg.Pool,
    amqp_connection: aio_pika.abc.AbstractRobustConnection,
    amqp_names: Names,
    broker_cleanup: list[str],
) -> None:
    publisher = Publisher(amqp_connection, amqp_names)
    await enqueue_committed(plt_pool, [account_created(0)])
    assert await OutboxRelay(plt_pool, publisher, SCHEMA).drain() == 1  # the publisher declares its exchanges
    channel = await amqp_connection.channel()
    await channel.exchange_delete(amqp_names.unrouted)  # every publish now comes back unconfirmed
    await enqueue_committed(plt_pool, [account_created(1), account_created(2)])
    relay = OutboxRelay(plt_pool, publisher, SCHEMA, max_attempts=1)

    for _ in range(3):
        with pytest.raises(Exception):  # noqa: B017 - aio-pika's DeliveryError or PublishError, per version
            await relay.relay_once()

    assert await parked_rows(plt_pool) == {}
    assert await plt_pool.fetchval(f"SELECT max(attempts) FROM {SCHEMA}.outbox") == 0
