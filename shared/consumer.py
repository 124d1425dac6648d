"""Idempotent consumers: each message's effect and its id commit together, then the ack.

A redelivered message finds its id recorded and is acked without effect. A message that cannot be
parsed goes straight to the dead-letter queue; one whose handler keeps failing is requeued until
the quorum queue's delivery limit dead-letters it. Neither blocks the messages behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
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
# message unacked, rather than spend its delivery limit. Only the consumer's own database work
# counts: an OSError out of a handler (an HTTP call that failed, say) spends a delivery like any
# other failure, or a handler that always fails that way would hold its message forever.
_DATABASE_DOWN = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
)


class _DatabaseUnavailable(Exception):
    """The pool could not give a working connection; the message is not at fault."""


def _connection_lost(conn: asyncpg.Connection) -> bool:
    try:
        return conn.is_closed()
    except asyncpg.InterfaceError:
        return True  # the pool already took the dead connection back from its proxy


@dataclass(frozen=True)
class QueueSpec:
    """A consumer's quorum queue, bound to `routing_keys` on the events exchange."""

    name: str
    routing_keys: Sequence[str]
    delivery_limit: int = 5
    prefetch: int = 64
    # Messages handled at once. Deliveries run concurrently up to this; 1 applies them one at a time
    # in delivery order (redeliveries aside), for handlers that cannot compare versions.
    concurrency: int | None = None


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
        self._queue: AbstractQueue | None = None
        self._consumer_tag: str | None = None
        self._slots = asyncio.Semaphore(spec.concurrency or spec.prefetch)
        self._in_flight: set[asyncio.Task[None]] = set()
        self.processed = 0  # acked after a commit: applied or found already applied
        self.applied = 0
        self.duplicates = 0
        self.failed = 0
        self.poisoned = 0

    async def start(self) -> None:
        self._channel = await self._connection.channel()
        await self._channel.set_qos(prefetch_count=self._spec.prefetch)
        self._queue = await declare_consumer_queue(self._channel, self._names, self._spec)
        self._consumer_tag = await self._queue.consume(self._on_message)

    async def stop(self, grace: float = 5.0) -> None:
        """Stop taking messages, let those in hand finish (up to `grace` s), then close the channel.

        Anything unfinished is unacked and comes back to another consumer: nothing is lost.
        """
        if self._queue is not None and self._consumer_tag is not None and not self._channel_closed():
            with contextlib.suppress(Exception):
                await self._queue.cancel(self._consumer_tag)
        if self._in_flight:
            await asyncio.wait(set(self._in_flight), timeout=grace)
        if not self._channel_closed():
            assert self._channel is not None
            await self._channel.close()

    def _channel_closed(self) -> bool:
        return self._channel is None or self._channel.is_closed

    async def _apply(self, envelope: Envelope) -> bool:
        """Apply in one transaction with the processed-id record; False when already applied."""
        try:
            conn_ctx = self._pool.acquire()
            conn = await conn_ctx.__aenter__()
        except _DATABASE_DOWN as exc:
            raise _DatabaseUnavailable(repr(exc)) from exc
        try:
            async with conn.transaction():
                try:
                    fresh = await conn.fetchval(
                        f"INSERT INTO {self._schema}.processed_messages (consumer, message_id) VALUES ($1, $2)"
                        " ON CONFLICT DO NOTHING RETURNING true",
                        self._spec.name,
                        envelope.id,
                    )
                except _DATABASE_DOWN as exc:
                    raise _DatabaseUnavailable(repr(exc)) from exc
                if fresh:
                    await self._handler(conn, envelope)
        except Exception as exc:
            if not isinstance(exc, _DatabaseUnavailable) and _connection_lost(conn):
                # The connection died under the handler: the database went away, not the message.
                raise _DatabaseUnavailable(repr(exc)) from exc
            raise
        finally:
            await conn_ctx.__aexit__(None, None, None)
        return bool(fresh)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
        try:
            async with self._slots:
                await self._handle(message)
        finally:
            if task is not None:
                self._in_flight.discard(task)

    async def _handle(self, message: AbstractIncomingMessage) -> None:
        context: dict[str, object] = {"message_id": message.message_id, "queue": self._spec.name}
        with structlog.contextvars.bound_contextvars(**context):
            try:
                envelope = parse_envelope(message.body)
            except ValueError as exc:
                # Never retried: the same bytes would fail the same way. Straight to `<queue>.dlq`.
                log.error("consumer.poison", error=str(exc)[:500])
                self.poisoned += 1
                await message.reject(requeue=False)
                return
            account = str(envelope.account_id) if envelope.account_id else None
            with structlog.contextvars.bound_contextvars(message_type=envelope.type, account=account):
                await self._apply_with_retry(message, envelope)

    async def _apply_with_retry(self, message: AbstractIncomingMessage, envelope: Envelope) -> None:
        delay = 0.2
        while True:
            try:
                fresh = await self._apply(envelope)
            except _DatabaseUnavailable as exc:
                log.warning("consumer.database_unavailable", error=str(exc), retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
                continue
            except Exception:
                # Requeued; the quorum queue counts deliveries and dead-letters past the limit.
                log.exception("consumer.failed", redelivered=message.redelivered)
                self.failed += 1
                await message.nack(requeue=True)
                return
            break
        await message.ack()
        self.processed += 1
        if fresh:
            self.applied += 1
        else:
            self.duplicates += 1
        log.info("consumer.applied" if fresh else "consumer.duplicate")
