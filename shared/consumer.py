"""Idempotent consumers: each message's effect and its id commit together, then the ack.

A redelivered message finds its id recorded and is acked without effect. A message that cannot be
parsed goes straight to the dead-letter queue; one whose handler keeps failing is requeued until
the quorum queue's delivery limit dead-letters it. Neither blocks the messages behind it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import asyncpg
import structlog
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue, AbstractRobustConnection

from shared.amqp import Names, declare_platform
from shared.logging import get_logger
from shared.messages import Envelope, parse_envelope

log = get_logger(__name__)

Handler = Callable[[asyncpg.Connection, Envelope], Awaitable[None]]

# Errors that say the database is away, not that the message is bad: wait and retry, keeping the
# message unacked, rather than spend its delivery limit.
_TRANSIENT = (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError, asyncpg.CannotConnectNowError)


@dataclass(frozen=True)
class QueueSpec:
    """A consumer's quorum queue, bound to `routing_keys` on the events exchange."""

    name: str
    routing_keys: Sequence[str]
    delivery_limit: int = 5
    prefetch: int = 64


async def declare_consumer_queue(channel: AbstractChannel, names: Names, spec: QueueSpec) -> AbstractQueue:
    events = await declare_platform(channel, names)
    queue_name = names(spec.name)
    dead_letters = await channel.declare_queue(f"{queue_name}.dlq", durable=True, arguments={"x-queue-type": "quorum"})
    await dead_letters.bind(names.dead_letter, routing_key=queue_name)
    queue = await channel.declare_queue(
        queue_name,
        durable=True,
        arguments={
            "x-queue-type": "quorum",
            "x-delivery-limit": spec.delivery_limit,
            "x-dead-letter-exchange": names.dead_letter,
            "x-dead-letter-routing-key": queue_name,
        },
    )
    for key in spec.routing_keys:
        await queue.bind(events, routing_key=key)
    return queue


class IdempotentConsumer:
    """Consumes one queue into one schema, applying each message id at most once."""

    def __init__(
        self,
        *,
        connection: AbstractRobustConnection,
        pool: asyncpg.Pool,
        names: Names,
        schema: str,
        spec: QueueSpec,
        handler: Handler,
    ) -> None:
        self._connection = connection
        self._pool = pool
        self._names = names
        self._schema = schema
        self._spec = spec
        self._handler = handler
        self._channel: AbstractChannel | None = None
        self.processed = 0

    async def start(self) -> None:
        self._channel = await self._connection.channel()
        await self._channel.set_qos(prefetch_count=self._spec.prefetch)
        queue = await declare_consumer_queue(self._channel, self._names, self._spec)
        await queue.consume(self._on_message)

    async def stop(self) -> None:
        if self._channel is not None and not self._channel.is_closed:
            await self._channel.close()

    async def _apply(self, envelope: Envelope) -> bool:
        """Apply in one transaction with the processed-id record; False when already applied."""
        async with self._pool.acquire() as conn, conn.transaction():
            fresh = await conn.fetchval(
                f"INSERT INTO {self._schema}.processed_messages (consumer, message_id) VALUES ($1, $2)"
                " ON CONFLICT DO NOTHING RETURNING true",
                self._spec.name,
                envelope.id,
            )
            if fresh:
                await self._handler(conn, envelope)
            return bool(fresh)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        with structlog.contextvars.bound_contextvars(message_id=message.message_id, queue=self._spec.name):
            try:
                envelope = parse_envelope(message.body)
            except ValueError as exc:
                log.error("consumer.poison", error=str(exc)[:500])
                await message.reject(requeue=False)
                return
            structlog.contextvars.bind_contextvars(
                message_type=envelope.type, account=str(envelope.account_id) if envelope.account_id else None
            )
            delay = 0.2
            while True:
                try:
                    fresh = await self._apply(envelope)
                except _TRANSIENT as exc:
                    log.warning("consumer.database_unavailable", error=repr(exc), retry_in=delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 10.0)
                    continue
                except Exception:
                    log.exception("consumer.failed", redelivered=message.redelivered)
                    await message.nack(requeue=True)
                    return
                break
            await message.ack()
            self.processed += 1
            log.debug("consumer.applied" if fresh else "consumer.duplicate")
