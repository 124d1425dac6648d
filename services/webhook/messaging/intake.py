"""The consumer of `webhook.dispatch`: subscription and reply messages become events and deliveries,
many messages per transaction.

It is the shared idempotent consumer (shared/consumer.py) with one change: messages that become
webhook events are applied in batches, everything that arrived while the previous batch was being
written, in one transaction with their processed-message records, then acked. The guarantee is the
same (a message's effect and its id commit together, then the ack; a redelivered one finds its id
and is acked without effect). Anything else, and every message of a batch the database refused,
goes through the shared consumer's one-message path, with its poison, retry and dead-letter rules:
so one bad message costs its batch one retry, never a lost or duplicated effect.

Acks: a batch's messages are acked with one `basic.ack multiple` up to the highest delivery tag
below which every message of the channel still unsettled is in the batch (usually the whole
batch), the rest one by one. A message still in hand elsewhere (the one-message path, a later batch)
is never covered: the multiple ack stops below it.

Written here rather than in shared/ because the batch needs the handler's own statements for many
messages at once (services.make_deliveries_for); other services keep one message per transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import asyncpg
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from services.webhook import services
from services.webhook.adapters.repository import SCHEMA
from shared.amqp import Names
from shared.consumer import Handler, IdempotentConsumer, QueueSpec
from shared.logging import get_logger

log = get_logger(__name__)

BATCH = 256


@dataclass
class _Waiting:
    message: AbstractIncomingMessage
    event: services.IncomingEvent
    done: asyncio.Future[None]


class DeliveryIntake(IdempotentConsumer):
    """IdempotentConsumer that applies webhook-event messages a batch per transaction."""

    def __init__(
        self,
        *,
        connection: AbstractRobustConnection,
        pool: asyncpg.Pool,
        names: Names,
        spec: QueueSpec,
        handler: Handler,
        on_deliveries: Callable[[], None],
    ) -> None:
        super().__init__(connection=connection, pool=pool, names=names, schema=SCHEMA, spec=spec, handler=handler)
        self._on_deliveries = on_deliveries
        self._waiting: list[_Waiting] = []
        self._arrived = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        # Delivery tags received and not yet acked, nacked or rejected, per channel (tags count
        # from 1 again on a channel the robust connection reopens).
        self._unsettled: dict[object, set[int]] = {}
        self.batches = 0
        self.acks_sent = 0

    async def start(self) -> None:
        self._writer = asyncio.create_task(self._write_loop(), name="webhook-intake")
        await super().start()

    async def stop(self, grace: float = 5.0) -> None:
        await super().stop(grace)  # waits for the messages in hand, which wait for their batch
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        channel, tag = message.channel, message.delivery_tag
        if tag is not None:
            self._unsettled.setdefault(channel, set()).add(tag)
        try:
            await self._take(message)
        finally:
            # Only once the broker was told (acked, nacked, rejected): a message cut short (a stop
            # cancelling it) stays outstanding, so no later multiple ack may cover it.
            if tag is not None and message.processed:
                self._settled(channel, [tag])

    def _settled(self, channel: object, tags: Iterable[int]) -> None:
        unsettled = self._unsettled.get(channel)
        if unsettled is not None:
            unsettled.difference_update(tags)
            if not unsettled:
                del self._unsettled[channel]

    async def _take(self, message: AbstractIncomingMessage) -> None:
        event = _event_of(message)
        if event is None:
            await super()._on_message(message)  # not a webhook event, or not parseable: one at a time
            return
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
        try:
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiting.append(_Waiting(message, event, done))
            self._arrived.set()
            await done
        finally:
            if task is not None:
                self._in_flight.discard(task)

    async def _write_loop(self) -> None:
        while True:
            await self._arrived.wait()
            self._arrived.clear()
            while self._waiting:
                batch, self._waiting = self._waiting[:BATCH], self._waiting[BATCH:]
                try:
                    await self._write(batch)
                except Exception:
                    # This loop is the only writer: it must outlive any batch (an ack or nack on a
                    # channel the broker just closed raises). What was not acked is given back; a
                    # message already applied comes again as a duplicate of its recorded id.
                    log.exception("intake.batch_crashed", messages=len(batch))
                    await self._give_back([w.message for w in batch])
                finally:
                    for waiting in batch:
                        if not waiting.done.done():
                            waiting.done.set_result(None)

    async def _give_back(self, messages: list[AbstractIncomingMessage]) -> None:
        """Nack (requeue) what is still unsettled; on a closed channel the broker requeues it anyway."""
        for message in messages:
            if message.processed:
                continue
            with contextlib.suppress(Exception):
                await message.nack(requeue=True)
            if message.delivery_tag is not None:
                self._settled(message.channel, [message.delivery_tag])

    async def _write(self, batch: list[_Waiting]) -> None:
        try:
            fresh, deliveries = await self._apply_batch(batch)
        except Exception as exc:
            # The whole batch is undone: each message goes again on its own, with the shared rules.
            log.warning("intake.batch_failed", messages=len(batch), error=repr(exc)[:500])
            await asyncio.gather(*(self._one(w.message) for w in batch))
            return
        self.batches += 1
        log.info("intake.applied", messages=len(batch), new=fresh, deliveries=deliveries)
        if deliveries:
            self._on_deliveries()
        await self._ack([w.message for w in batch])
        self.processed += len(batch)
        self.applied += fresh
        self.duplicates += len(batch) - fresh

    async def _ack(self, messages: list[AbstractIncomingMessage]) -> None:
        """Ack committed messages: per channel, one multiple ack for the run of unsettled tags the
        batch starts with, single acks for the rest."""
        by_channel: dict[object, dict[int, AbstractIncomingMessage]] = {}
        for message in messages:
            if message.delivery_tag is not None:
                by_channel.setdefault(message.channel, {})[message.delivery_tag] = message
        for channel, tagged in by_channel.items():
            cover, singles = plan_acks(self._unsettled.get(channel, set()), tagged)
            self._settled(channel, tagged)
            acks = [tagged[cover].ack(multiple=True)] if cover is not None else []
            acks += [tagged[tag].ack() for tag in singles]
            self.acks_sent += len(acks)
            # An ack that cannot go out (the channel closed under it) leaves the message to be
            # redelivered, where its recorded id makes it a duplicate: nothing to do here.
            for result in await asyncio.gather(*acks, return_exceptions=True):
                if isinstance(result, Exception):
                    log.warning("intake.ack_failed", error=repr(result)[:300])

    async def _one(self, message: AbstractIncomingMessage) -> None:
        async with self._slots:
            await self._handle(message)

    async def _apply_batch(self, batch: list[_Waiting]) -> tuple[int, int]:
        """One statement, atomic on its own: record the message ids, apply the new ones; (new
        messages, deliveries)."""
        events: dict[uuid.UUID, services.IncomingEvent] = {}
        for waiting in batch:
            events.setdefault(waiting.event.message_id, waiting.event)  # a message twice in one batch: once
        async with self._pool.acquire() as conn:
            made = await services.apply_incoming_events(conn, self._spec.name, list(events.values()))
        return len(made), sum(made.values())


def plan_acks(unsettled: set[int], batch: Iterable[int]) -> tuple[int | None, list[int]]:
    """How to ack `batch` (delivery tags of one channel, all committed) when `unsettled` are the
    channel's tags not yet acked, nacked or rejected: (the tag to ack with `multiple`, which covers
    every outstanding tag up to it, or None; the tags to ack one by one). The multiple ack covers the
    longest run of the lowest outstanding tags that are all in the batch, and only when that run
    holds more than one tag."""
    committed = set(batch)
    run: list[int] = []
    for tag in sorted(unsettled | committed):
        if tag not in committed:
            break  # still in hand elsewhere: a multiple ack must stop below it
        run.append(tag)
    cover = run[-1] if len(run) > 1 else None
    return cover, sorted(t for t in committed if cover is None or t > cover)


def _event_of(message: AbstractIncomingMessage) -> services.IncomingEvent | None:
    try:
        return services.incoming_event_of(message.body, message.type)
    except Exception:
        return None  # the one-message path says why (poison, bad data) and dead-letters it
