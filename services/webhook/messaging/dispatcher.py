"""The dispatcher: claims due deliveries from PostgreSQL in batches, sends each attempt, records the
outcomes in batches; one slow endpoint never holds up the others.

PostgreSQL holds what is due. The dispatcher claims it, a batch per transaction, whenever it may
have changed: the subscription consumer in this process made new deliveries (`nudge`), a
`webhook.due` message arrived (a retry's timer, a manual retry or a test event from the API), an
attempt freed a slot; and every `poll_interval` in any case, which also picks up what a crashed
worker or a lost message left behind. A nudge comes just before the consumer's transaction commits,
so after one the dispatcher looks again a few milliseconds later if it found nothing.

Fairness: at most `endpoint_concurrency` attempts per endpoint are in flight in this worker,
`concurrency` in all. The claim takes at most as many again per endpoint (and in all), which wait in
claim order for a slot: a freed slot starts the next attempt at once instead of after a claim's round
trip, and the lease covers that wait (settings.lease). What an endpoint cannot take yet stays pending
in PostgreSQL, oldest first, so a dead endpoint's backlog costs nothing but rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import asyncpg
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection
from prometheus_client import CollectorRegistry, Counter

from services.webhook import attempts
from services.webhook.adapters.batches import CLAIM_MAX, OpenSecrets
from services.webhook.adapters.repository import ClaimedAttempt
from services.webhook.adapters.sender import WebhookSender
from services.webhook.messaging.timers import TimerPublisher
from services.webhook.messaging.topology import declare_due_queue
from shared.amqp import Names
from shared.crypto import SecretBox
from shared.logging import get_logger
from shared.messages import WebhookDeliveryDue, parse_envelope
from shared.waiting import wait_event

log = get_logger(__name__)

# Outcomes recorded in one transaction at most; more wait for the next.
RECORD_BATCH = 512
# After a nudge that found nothing, look again after 1, 2, 4 ... ms, for this long.
NUDGE_WINDOW = 0.5
NUDGE_BACKOFF_MAX = 0.064


@dataclass
class DispatcherStats:
    attempts: int = 0
    claims: int = 0
    records: int = 0
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
        poll_interval: float = 1.0,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self._secrets = OpenSecrets(box)  # decrypted once per worker, not per claimed attempt
        # Recorded attempts by result (the receiver's 2xx or not) and the delivery's status after it:
        # the webhook failure rate the alerting rules watch (deploy/prometheus/kalends.rules.yaml).
        self._attempts_metric = Counter(
            "webhook_attempts",
            "Webhook delivery attempts recorded",
            ["result", "delivery_status"],
            registry=registry if registry is not None else CollectorRegistry(),
        )
        self._connection = connection
        self._pool = pool
        self._names = names
        self._sender = sender
        self._timers = timers
        self._schedule = tuple(schedule)
        self._lease = lease
        self._concurrency = concurrency
        self._endpoint_concurrency = endpoint_concurrency
        self._poll_interval = poll_interval
        self._active: dict[uuid.UUID, int] = {}  # attempts claimed and not yet sent, per endpoint
        self._lanes: dict[uuid.UUID, asyncio.Semaphore] = {}  # sending, per endpoint
        self._sending_slots = asyncio.Semaphore(concurrency)
        self._in_flight = 0  # attempts claimed and not yet sent, in all
        self._wake = asyncio.Event()
        self._nudged_at = float("-inf")
        self._sent: list[attempts.SentAttempt] = []
        self._sent_ready = asyncio.Event()
        self._recorded = asyncio.Event()  # set when every sent attempt is recorded
        self._recorded.set()
        self._sending: set[asyncio.Task[None]] = set()
        self._timers_starting: set[asyncio.Task[None]] = set()
        self._loops: list[asyncio.Task[None]] = []
        self._channel: AbstractChannel | None = None
        self.stats = DispatcherStats()

    async def start(self) -> None:
        self._channel = await self._connection.channel()
        await self._channel.set_qos(prefetch_count=256)
        queue = await declare_due_queue(self._channel, self._names)
        await queue.consume(self._on_due)
        self._loops = [
            asyncio.create_task(self._claim_loop(), name="webhook-claims"),
            asyncio.create_task(self._record_loop(), name="webhook-records"),
        ]

    async def stop(self, grace: float = 5.0) -> None:
        """Stop claiming; let attempts in flight finish and be recorded (up to `grace` s). What is
        cut short stays claimed until its lease ends, then another worker takes it over."""
        if self._channel is not None and not self._channel.is_closed:
            with contextlib.suppress(Exception):
                await self._channel.close()
        claims, records = self._loops or (None, None)
        if claims is not None:
            claims.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await claims
        if self._sending:
            await asyncio.wait(set(self._sending), timeout=grace)
        for task in list(self._sending):
            task.cancel()
        if records is not None:
            await wait_event(self._recorded, grace)
            records.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await records
        if self._timers_starting:  # a timer not started is no loss: the poll finds the retry when due
            await asyncio.wait(set(self._timers_starting), timeout=grace)
        for timer in list(self._timers_starting):
            timer.cancel()

    def nudge(self) -> None:
        """New deliveries may be due (called by the consumer as it creates them)."""
        self._nudged_at = asyncio.get_running_loop().time()
        self._wake.set()

    async def _on_due(self, message: AbstractIncomingMessage) -> None:
        """A `webhook.due` message only says "look now": PostgreSQL has the rest."""
        try:
            due = parse_envelope(message.body).parsed()
        except ValueError as exc:
            log.error("dispatcher.poison", error=str(exc)[:500])
            await message.reject(requeue=False)
            return
        if not isinstance(due, WebhookDeliveryDue):
            await message.reject(requeue=False)
            return
        self.nudge()
        await message.ack()

    # --- claiming ------------------------------------------------------------------------------

    async def _claim_loop(self) -> None:
        loop = asyncio.get_running_loop()
        backoff = 0.0
        while True:
            free = min(self._concurrency * 2 - self._in_flight, CLAIM_MAX)
            self._wake.clear()
            if free <= 0:
                # Full: wait for a slot (an attempt ending wakes this loop) or the poll. The wake is
                # cleared first: a set one (a nudge while full) would return at once without
                # yielding, and this loop would spin forever, holding the event loop, so that no
                # attempt could ever end and free a slot.
                await self._wait(self._poll_interval)
                continue
            try:
                claimed = await attempts.claim_batch(
                    self._pool,
                    self._secrets,
                    limit=free,
                    endpoint_limit=self._endpoint_concurrency * 2,
                    active=self._active,
                    lease=self._lease,
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database is away: try again at the next poll
                log.warning("dispatcher.claim_failed", error=repr(exc))
                await asyncio.sleep(min(self._poll_interval, 1.0))
                continue
            self.stats.claims += 1
            for attempt in claimed:
                self._start(attempt)
            if claimed and len(claimed) == free:
                continue  # there may be more
            if loop.time() - self._nudged_at < NUDGE_WINDOW:
                backoff = 0.001 if claimed else min(max(backoff * 2, 0.001), NUDGE_BACKOFF_MAX)
                await self._wait(backoff)
            else:
                await self._wait(self._poll_interval)

    async def _wait(self, timeout: float) -> None:
        await wait_event(self._wake, timeout)

    def _start(self, claimed: ClaimedAttempt) -> None:
        endpoint = claimed.endpoint_id
        self._active[endpoint] = self._active.get(endpoint, 0) + 1
        if endpoint not in self._lanes:
            self._lanes[endpoint] = asyncio.Semaphore(self._endpoint_concurrency)
        self._in_flight += 1
        task = asyncio.create_task(self._send(claimed, self._lanes[endpoint]))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, claimed: ClaimedAttempt, lane: asyncio.Semaphore) -> None:
        endpoint = claimed.endpoint_id
        try:
            # Semaphores wake their waiters first come, first served: attempts start in claim order.
            async with lane, self._sending_slots:
                sent = await attempts.send_attempt(self._sender, claimed)
        finally:
            left = self._active[endpoint] - 1
            if left:
                self._active[endpoint] = left
            else:
                del self._active[endpoint]
                del self._lanes[endpoint]
            self._in_flight -= 1
            # Claim again once this endpoint has nothing waiting behind its slots (a claim then tops
            # it up by a slot's worth, not one by one), or when the whole worker is half empty.
            if left <= self._endpoint_concurrency or self._in_flight == self._concurrency:
                self._wake.set()
        self._sent.append(sent)
        self._recorded.clear()
        self._sent_ready.set()

    # --- recording -----------------------------------------------------------------------------

    async def _record_loop(self) -> None:
        """Record what was sent, everything that arrived since the last batch in one transaction."""
        while True:
            await self._sent_ready.wait()
            self._sent_ready.clear()
            while self._sent:
                batch, self._sent = self._sent[:RECORD_BATCH], self._sent[RECORD_BATCH:]
                await self._record(batch)
            self._recorded.set()  # `_send` clears it with each attempt it hands over

    async def _record(self, batch: list[attempts.SentAttempt]) -> None:
        try:
            results = await attempts.record_batch(self._pool, self._schedule, batch, self._lease)
        except asyncio.CancelledError:
            raise
        except Exception:
            # The database stayed away for the whole lease: the attempts stay open; once their
            # leases end they are claimed again and these are marked as orphaned.
            log.exception("dispatcher.record_failed", attempts=len(batch))
            return
        self.stats.records += 1
        for sent, (status, step) in zip(batch, results, strict=True):
            claimed, outcome = sent.claimed, sent.outcome
            self.stats.attempts += 1
            self.stats.outcomes[status] = self.stats.outcomes.get(status, 0) + 1
            self._attempts_metric.labels("success" if outcome.succeeded else "failure", status).inc()
            log.info(
                "webhook.attempt",
                delivery_id=str(claimed.delivery_id),
                event_type=claimed.event_type,
                attempt=claimed.number,
                status_code=outcome.status_code,
                error=outcome.error,
                duration_ms=outcome.duration_ms,
                delivery_status=status,
            )
            if step is not None:
                # In the background: a slow broker must not hold up the next records (an outcome
                # recorded late would be timed late, and its retries with it).
                timer = asyncio.create_task(self._start_timer(claimed, step))
                self._timers_starting.add(timer)
                timer.add_done_callback(self._timers_starting.discard)

    async def _start_timer(self, claimed: ClaimedAttempt, step: int) -> None:
        try:
            await self._timers.start(claimed.delivery_id, claimed.number, step)
        except Exception as exc:  # the next poll sends it when it falls due
            log.warning("webhook.timer_failed", delivery_id=str(claimed.delivery_id), error=repr(exc))
