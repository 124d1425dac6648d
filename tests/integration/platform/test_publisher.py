"""The confirming publisher against real RabbitMQ: properties, confirms, and a channel that goes away."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import aio_pika
import pytest

from shared.amqp import Names, Publisher, declare_platform
from tests.integration.platform.conftest import drain_queue, ids, message_count


async def bound_queue(
    connection: aio_pika.abc.AbstractRobustConnection, names: Names, cleanup: list[str]
) -> aio_pika.abc.AbstractChannel:
    channel = await connection.channel()
    events = await declare_platform(channel, names)
    cleanup.append("published")
    queue = await channel.declare_queue(names("published"), durable=True)
    await queue.bind(events, routing_key="thing.#")
    return channel


async def test_a_published_message_is_persistent_json_with_its_id_type_and_correlation(
    amqp_connection: aio_pika.abc.AbstractRobustConnection, amqp_names: Names, broker_cleanup: list[str]
) -> None:
    channel = await bound_queue(amqp_connection, amqp_names, broker_cleanup)
    publisher = Publisher(amqp_connection, amqp_names)
    message_id = str(uuid.uuid4())

    await publisher.publish(b'{"x": 1}', "thing.happened", message_id, correlation_id="req-7")

    # publish() returned: the broker confirmed, so the message is in the queue now.
    assert await message_count(channel, amqp_names("published")) == 1
    (message,) = await drain_queue(channel, amqp_names("published"))
    assert message.body == b'{"x": 1}'
    assert message.message_id == message_id
    assert message.correlation_id == "req-7"
    assert message.content_type == "application/json"
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert message.type == "thing.happened"
    assert message.exchange == amqp_names.events
    await publisher.close()


async def test_many_concurrent_publishes_are_each_confirmed_and_delivered_once(
    amqp_connection: aio_pika.abc.AbstractRobustConnection, amqp_names: Names, broker_cleanup: list[str]
) -> None:
    channel = await bound_queue(amqp_connection, amqp_names, broker_cleanup)
    publisher = Publisher(amqp_connection, amqp_names)
    sent = [uuid.uuid4() for _ in range(500)]
    await asyncio.gather(*(publisher.publish(b"{}", "thing.counted", str(i)) for i in sent))
    assert await message_count(channel, amqp_names("published")) == 500
    assert Counter(ids(await drain_queue(channel, amqp_names("published")))) == dict.fromkeys(sent, 1)
    await publisher.close()


async def test_the_publisher_opens_a_new_channel_after_its_channel_was_closed(
    amqp_connection: aio_pika.abc.AbstractRobustConnection, amqp_names: Names, broker_cleanup: list[str]
) -> None:
    channel = await bound_queue(amqp_connection, amqp_names, broker_cleanup)
    publisher = Publisher(amqp_connection, amqp_names)
    await publisher.publish(b"{}", "thing.first", str(uuid.uuid4()))
    assert publisher._channel is not None
    await publisher._channel.close()

    await publisher.publish(b"{}", "thing.second", str(uuid.uuid4()))

    assert await message_count(channel, amqp_names("published")) == 2
    await publisher.close()


async def test_the_publisher_recovers_when_the_broker_closes_its_channel(
    amqp_connection: aio_pika.abc.AbstractRobustConnection, amqp_names: Names, broker_cleanup: list[str]
) -> None:
    channel = await bound_queue(amqp_connection, amqp_names, broker_cleanup)
    publisher = Publisher(amqp_connection, amqp_names)
    await publisher.publish(b"{}", "thing.first", str(uuid.uuid4()))
    assert publisher._channel is not None
    # A channel error (redeclaring the events exchange with another type) makes the broker close
    # the publisher's channel, as any channel-level failure would.
    with pytest.raises(aio_pika.exceptions.ChannelPreconditionFailed):
        underlay = await publisher._channel.get_underlay_channel()
        await underlay.exchange_declare(amqp_names.events, exchange_type="fanout", durable=True)

    async def publish_again() -> None:
        await publisher.publish(b"{}", "thing.second", str(uuid.uuid4()), timeout=5)

    await asyncio.wait_for(publish_again(), 20)
    assert await message_count(channel, amqp_names("published")) == 2
    await publisher.close()


async def test_a_test_runs_leftovers_under_its_prefix_are_deleted_and_nothing_else(
    amqp_url: str, amqp_connection: aio_pika.abc.AbstractRobustConnection, amqp_names: Names, broker_cleanup: list[str]
) -> None:
    from shared.testing import _rabbitmqctl_list, delete_prefixed

    channel = await amqp_connection.channel()
    other = Names(amqp_names.prefix.rstrip(".") + "x.")
    await declare_platform(channel, amqp_names)
    await channel.declare_queue(amqp_names("left.behind"), durable=True, arguments={"x-queue-type": "quorum"})
    await channel.declare_queue(other("not.mine"), durable=True)
    broker_cleanup.append("left.behind")
    try:
        if amqp_names("left.behind") not in await asyncio.to_thread(_rabbitmqctl_list, "list_queues"):
            pytest.skip("rabbitmqctl cannot list this broker's queues")

        deleted = await delete_prefixed(amqp_url, {amqp_names.prefix})

        # left.behind and the unrouted queue; the three platform exchanges.
        assert deleted == 5
        queues = await asyncio.to_thread(_rabbitmqctl_list, "list_queues")
        assert not [q for q in queues if q.startswith(amqp_names.prefix)]
        assert other("not.mine") in queues
    finally:
        await channel.queue_delete(other("not.mine"))


async def test_a_batch_is_delivered_in_order_with_the_properties_of_a_single_publish_once_all_are_confirmed(
    amqp_connection: aio_pika.abc.AbstractRobustConnection, amqp_names: Names, broker_cleanup: list[str]
) -> None:
    channel = await bound_queue(amqp_connection, amqp_names, broker_cleanup)
    publisher = Publisher(amqp_connection, amqp_names)
    sent = [str(uuid.uuid4()) for _ in range(300)]

    results = await publisher.publish_many([(f'{{"n": {n}}}'.encode(), "thing.batched", i) for n, i in enumerate(sent)])

    assert results == [None] * 300
    # Returned: every message was confirmed, so all are in the queue now, in the order given.
    assert await message_count(channel, amqp_names("published")) == 300
    messages = await drain_queue(channel, amqp_names("published"))
    assert [m.message_id for m in messages] == sent
    first = messages[0]
    assert first.body == b'{"n": 0}'
    assert first.content_type == "application/json"
    assert first.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert first.type == "thing.batched"
    await publisher.close()


async def test_a_message_of_a_batch_that_cannot_be_published_fails_alone(
    amqp_connection: aio_pika.abc.AbstractRobustConnection, amqp_names: Names, broker_cleanup: list[str]
) -> None:
    channel = await bound_queue(amqp_connection, amqp_names, broker_cleanup)
    publisher = Publisher(amqp_connection, amqp_names)
    good = [str(uuid.uuid4()) for _ in range(3)]

    results = await publisher.publish_many(
        [
            (b"{}", "thing.one", good[0]),
            (b"{}", "thing." + "x" * 300, str(uuid.uuid4())),  # AMQP caps a routing key at 255 bytes
            (b"{}", "thing.two", good[1]),
            (b"{}", "thing.three", good[2]),
        ]
    )

    assert results[0] is None and results[2] is None and results[3] is None
    assert isinstance(results[1], Exception)
    assert ids(await drain_queue(channel, amqp_names("published"))) == [uuid.UUID(i) for i in good]
    await publisher.close()


async def test_a_batch_the_broker_cannot_route_anywhere_comes_back_as_errors_not_confirms(
    amqp_connection: aio_pika.abc.AbstractRobustConnection, amqp_names: Names, broker_cleanup: list[str]
) -> None:
    await bound_queue(amqp_connection, amqp_names, broker_cleanup)
    publisher = Publisher(amqp_connection, amqp_names)
    await publisher.publish(b"{}", "thing.first", str(uuid.uuid4()))  # declares the exchanges
    admin = await amqp_connection.channel()
    await admin.exchange_delete(amqp_names.unrouted)  # the alternate exchange is gone: mandatory returns

    results = await publisher.publish_many([(b"{}", "nobody.listens", str(uuid.uuid4())) for _ in range(3)])

    assert all(isinstance(r, Exception) for r in results)
    await publisher.close()
