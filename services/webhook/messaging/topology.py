"""Every queue the webhook service declares, under the Names prefix. Nowhere else declares any.

- `webhook.dispatch` (quorum, via the shared IdempotentConsumer): subscription.created and
  subscription.deactivated from the events exchange become deliveries.
- `webhook.due` (quorum): `webhook_delivery.due` messages, "attempt this delivery now".
- `webhook.delay.<ms>ms` (quorum, one per distinct step of the retry schedule): a queue-wide TTL
  and at-least-once dead-lettering back to the events exchange as `webhook_delivery.due`. Every
  message in one queue waits the same time, so none blocks another (per-message TTLs would).
  The TTL is in the name, so changing the schedule declares new queues instead of clashing.
"""

from __future__ import annotations

from collections.abc import Sequence

from aio_pika.abc import AbstractChannel, AbstractQueue

from services.webhook.domain.schedule import delay_queue_ttls
from shared.amqp import Names, declare_platform
from shared.consumer import QueueSpec

DUE_ROUTING_KEY = "webhook_delivery.due"
# messaging/intake.py applies webhook events a batch per transaction, up to a prefetch's worth;
# other messages (the denylist's) one at a time, six at once at most (each holds a pool connection).
DISPATCH = QueueSpec(
    "webhook.dispatch",
    ("subscription.created", "subscription.deactivated", "attendee.replied"),
    prefetch=256,
    concurrency=6,
)
DUE_QUEUE = "webhook.due"
DUE_DELIVERY_LIMIT = 20


def delay_queue_name(names: Names, ttl_ms: int) -> str:
    return names(f"webhook.delay.{ttl_ms}ms")


async def declare_due_queue(channel: AbstractChannel, names: Names) -> AbstractQueue:
    events = await declare_platform(channel, names)
    name = names(DUE_QUEUE)
    dead_letters = await channel.declare_queue(f"{name}.dlq", durable=True, arguments={"x-queue-type": "quorum"})
    await dead_letters.bind(names.dead_letter, routing_key=name)
    queue = await channel.declare_queue(
        name,
        durable=True,
        arguments={
            "x-queue-type": "quorum",
            "x-delivery-limit": DUE_DELIVERY_LIMIT,
            "x-dead-letter-exchange": names.dead_letter,
            "x-dead-letter-routing-key": name,
        },
    )
    await queue.bind(events, routing_key=DUE_ROUTING_KEY)
    return queue


async def declare_delay_queues(channel: AbstractChannel, names: Names, schedule: Sequence[float]) -> dict[int, str]:
    """The schedule's delay queues; returns their names by TTL in milliseconds."""
    await declare_platform(channel, names)
    declared: dict[int, str] = {}
    for ttl in delay_queue_ttls(schedule):
        name = delay_queue_name(names, ttl)
        await channel.declare_queue(
            name,
            durable=True,
            arguments={
                "x-queue-type": "quorum",
                "x-message-ttl": ttl,
                "x-dead-letter-exchange": names.events,
                "x-dead-letter-routing-key": DUE_ROUTING_KEY,
                # At-least-once dead-lettering (RabbitMQ >= 3.10) needs reject-publish overflow.
                "x-dead-letter-strategy": "at-least-once",
                "x-overflow": "reject-publish",
            },
        )
        declared[ttl] = name
    return declared


async def delete_topology(channel: AbstractChannel, names: Names, schedule: Sequence[float]) -> None:
    """Remove this prefix's queues (tests)."""
    for name in [
        names(DISPATCH.name),
        names(DISPATCH.name) + ".dlq",
        names(DUE_QUEUE),
        names(DUE_QUEUE) + ".dlq",
        *(delay_queue_name(names, ttl) for ttl in delay_queue_ttls(schedule)),
    ]:
        await channel.queue_delete(name)
