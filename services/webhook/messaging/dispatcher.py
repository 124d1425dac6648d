"""The dispatcher: consumes `webhook.due` and makes each attempt, one slow endpoint never holding
up the others; and the sweeper that re-enqueues anything overdue.

Fairness: every endpoint has its own lane (a concurrency bound per endpoint), all lanes share a
global bound. A lane holds at most `hold` waiting messages; beyond that a message is acked and
"parked": the delivery stays pending in PostgreSQL and the sweeper re-enqueues it later, so a dead
endpoint's backlog cannot fill the prefetch window the healthy endpoints need.

Messages are acked after their attempt is recorded, or at once when there is nothing to do.
Acking is always safe: PostgreSQL holds what is due, and the sweeper resends anything overdue.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import asyncpg
import structlog
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection

from services.webhook import attempts
from services.webhook.adapters.repository import SCHEMA
from services.webhook.adapters.sender import WebhookSender
from services.webhook.messaging.timers import TimerPublisher
from services.webhook.messaging.topology import declare_due_queue
from shared.amqp import Names
from shared.crypto import SecretBox
from shared.logging import get_logger
from shared.messages import WebhookDeliveryDue, parse_envelope

log = get_logger(__name__)


@dataclass
class Lane:
    semaphore: asyncio.Semaphore
    waiting: int = 0
    active: int = 0


@dataclass
class DispatcherStats:
    attempts: int = 0
    noops: int = 0
    parked: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)


class Dispatcher:
    def __init__(
        self,
        *,
        connection: AbstractRobustConnection,
        pool: asyncpg.Pool,
        names: Names,
        sender: WebhookSender,
        timers: TimerPublisher,
        schedule: Sequence[float],
        lease: float,
        concurrency: int,
        endpoint_concurrency: int,
        box: SecretBox,
        hold: int | None = None,
    ) -> None:
        self._box = box
        self._connection = connection
        self._pool = pool
        self._names = names
        self._sender = sender
        self._timers = timers
        self._schedule = tuple(schedule)
        self._lease = lease
        self._global = asyncio.Semaphore(concurrency)
        self._concurrency = concurrency
        self._endpoint_concurrency = endpoint_concurrency
        self._hold = hold if hold is not None else endpoint_concurrency * 4
        self._lanes: dict[uuid.UUID, Lane] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._channel: AbstractChannel | None = None
        self.stats = DispatcherStats()

    async def start(self) -> None:
        self._channel = await self._connection.channel()
        await self._channel.set_qos(prefetch_count=self._concurrency * 4)
        queue = await declare_due_queue(self._channel, self._names)
        await queue.consume(self._on_message)

    async def stop(self) -> None:
        if self._channel is not None and not self._channel.is_closed:
            with contextlib.suppress(Exception):
                await self._channel.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        try:
            due = parse_envelope(message.body).parsed()
        except ValueError as exc:
            log.error("dispatcher.poison", error=str(exc)[:500])
            await message.reject(requeue=False)
            return
        if not isinstance(due, WebhookDeliveryDue):
            await message.reject(requeue=False)
            return
        try:
            async with self._pool.acquire() as conn:
                endpoint_id = await conn.fetchval(
                    f"SELECT endpoint_id FROM {SCHEMA}.deliveries"
                    " WHERE id = $1 AND status = 'pending' AND attempts_made = $2",
                    due.delivery_id,
                    due.attempt,
                )
        except Exception as exc:
            # The database is away: drop the message, the sweeper will find the delivery overdue.
            log.warning("dispatcher.lookup_failed", error=repr(exc))
            await message.ack()
            return
        if endpoint_id is None:
            self.stats.noops += 1
            await message.ack()
            return
        lane = self._lanes.get(endpoint_id)
        if lane is None:
            lane = self._lanes[endpoint_id] = Lane(asyncio.Semaphore(self._endpoint_concurrency))
        if lane.waiting >= self._hold:
            self.stats.parked += 1
            await message.ack()
            return
        lane.waiting += 1
        task = asyncio.create_task(self._run(message, endpoint_id, lane, due))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(
        self, message: AbstractIncomingMessage, endpoint_id: uuid.UUID, lane: Lane, due: WebhookDeliveryDue
    ) -> None:
        try:
            async with lane.semaphore:
                lane.waiting -= 1
                lane.active += 1
                try:
                    async with self._global:
                        with structlog.contextvars.bound_contextvars(delivery_id=str(due.delivery_id)):
                            report = await attempts.attempt_delivery(
                                self._pool,
                                self._sender,
                                self._timers,
                                self._schedule,
                                due.delivery_id,
                                due.attempt,
                                lease=self._lease,
                                box=self._box,
                            )
                finally:
                    lane.active -= 1
            if report is None:
                self.stats.noops += 1
            else:
                self.stats.attempts += 1
                self.stats.outcomes[report.status] = self.stats.outcomes.get(report.status, 0) + 1
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("dispatcher.attempt_failed")
        finally:
            if lane.waiting == 0 and lane.active == 0 and self._lanes.get(endpoint_id) is lane:
                del self._lanes[endpoint_id]
        with contextlib.suppress(Exception):
            await message.ack()


class Sweeper:
    """Every `interval`, re-enqueue deliveries overdue by more than `grace` that nobody holds."""

    def __init__(self, pool: asyncpg.Pool, *, interval: float, grace: float, requeue_after: float) -> None:
        self._pool = pool
        self._interval = interval
        self._grace = grace
        self._requeue_after = requeue_after
        self.swept = 0

    async def run(self) -> None:
        while True:
            try:
                count = await attempts.sweep_overdue(self._pool, grace=self._grace, requeue_after=self._requeue_after)
                if count:
                    self.swept += count
                    log.info("webhook.swept", count=count)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("webhook.sweep_failed", error=repr(exc))
            await asyncio.sleep(self._interval)
