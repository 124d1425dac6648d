"""Publishing `webhook_delivery.due` messages: into a delay queue (a retry's timer) or due now."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractRobustConnection

from services.webhook.domain.schedule import step_delay_ms
from services.webhook.messaging.topology import declare_delay_queues
from shared.amqp import Names
from shared.messages import Envelope, WebhookDeliveryDue, make_envelope


def due_envelope(delivery_id: uuid.UUID, attempts_made: int) -> Envelope:
    """ "Attempt this delivery now"; `attempt` is how many attempts it has had, so a stale copy
    (the attempt already happened) claims nothing."""
    return make_envelope("webhook_delivery.due", WebhookDeliveryDue(delivery_id=delivery_id, attempt=attempts_made))


class TimerPublisher:
    """Starts a retry's timer: a confirmed, persistent message into the step's delay queue."""

    def __init__(self, connection: AbstractRobustConnection, names: Names, schedule: Sequence[float]) -> None:
        self._connection = connection
        self._names = names
        self._schedule = tuple(schedule)
        self._channel: AbstractChannel | None = None
        self._queues: dict[int, str] = {}
        self._lock = asyncio.Lock()

    async def _ensure(self) -> AbstractChannel:
        async with self._lock:
            if self._channel is None or self._channel.is_closed:
                self._channel = await self._connection.channel(publisher_confirms=True, on_return_raises=True)
                self._queues = await declare_delay_queues(self._channel, self._names, self._schedule)
            return self._channel

    async def start(self, delivery_id: uuid.UUID, attempts_made: int, step: int) -> None:
        channel = await self._ensure()
        envelope = due_envelope(delivery_id, attempts_made)
        await channel.default_exchange.publish(
            aio_pika.Message(
                envelope.to_bytes(),
                message_id=str(envelope.id),
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                type=envelope.type,
            ),
            routing_key=self._queues[step_delay_ms(self._schedule, step)],
            mandatory=True,
            timeout=10,
        )

    async def close(self) -> None:
        if self._channel is not None and not self._channel.is_closed:
            await self._channel.close()
