"""The transactional outbox: record messages with the state change, then relay them to RabbitMQ.

`enqueue` runs inside the caller's transaction, so the message exists exactly when the change
does. The relay publishes unsent rows with publisher confirms and marks them sent only after the
confirm: a relay killed in between publishes the row again, and the idempotent consumer drops the
duplicate. Several relays may run; `FOR UPDATE SKIP LOCKED` gives each row to one of them.

A row that cannot be published never holds up the rows behind it: one larger than the broker's
message limit is parked at once, and one that fails on its own while other rows get through is
retried on later passes and parked after `max_attempts`. A parked row keeps its reason
(`parked_at`, `park_reason`), is logged, counted (`outbox_parked_total`) and never sent. When no
row gets through at all the broker is the problem, not the rows: nothing is counted against them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from dataclasses import dataclass

import asyncpg
from prometheus_client import CollectorRegistry, Counter, Gauge

from shared.amqp import Publisher
from shared.logging import get_logger
from shared.messages import Envelope
from shared.waiting import wait_event

log = get_logger(__name__)

# RabbitMQ's `max_message_size` default since 3.8 (128 MiB); 4.x lowers it to 16 MiB.
BROKER_MAX_MESSAGE_BYTES = 128 * 1024 * 1024
MAX_ATTEMPTS = 5
# Rows of a failed batch tried one by one before the relay concludes the broker, not a row, is at fault.
ISOLATION_TRIES = 3


async def enqueue(conn: asyncpg.Connection, schema: str, envelopes: Iterable[Envelope]) -> None:
    rows = [(e.id, e.type, e.to_bytes()) for e in envelopes]
    if rows:
        await conn.executemany(f"INSERT INTO {schema}.outbox (id, routing_key, body) VALUES ($1, $2, $3)", rows)


@dataclass(frozen=True)
class OutboxMetrics:
    """The relay's Prometheus metrics, labelled by schema."""

    parked: Counter
    backlog: Gauge
    parked_rows: Gauge

    @classmethod
    def register(cls, registry: CollectorRegistry) -> OutboxMetrics:
        return cls(
            parked=Counter(
                "outbox_parked", "Outbox rows parked as unpublishable", ["schema", "cause"], registry=registry
            ),
            # Both measure the schema's table, whichever process's relay read it: the pod's figure is the
            # largest live reading when several processes share a pod (shared.metrics), not their sum.
            backlog=Gauge(
                "outbox_backlog",
                "Outbox rows waiting to be published",
                ["schema"],
                registry=registry,
                multiprocess_mode="livemax",
            ),
            parked_rows=Gauge(
                "outbox_parked_rows",
                "Parked outbox rows kept for an operator",
                ["schema"],
                registry=registry,
                multiprocess_mode="livemax",
            ),
        )


@dataclass(frozen=True)
class _Park:
    seq: int
    cause: str  # "too_large" or "failing": the metric's label
    reason: str


class OutboxRelay:
    """Publishes one schema's outbox; woken by LISTEN/NOTIFY (at most once per `drain_interval`),
    sweeping every `sweep_interval`."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        publisher: Publisher,
        schema: str,
        *,
        batch_size: int = 200,
        sweep_interval: float = 1.0,
        drain_interval: float = 0.01,
        retention_hours: int = 24,
        purge_interval: float = 3600.0,
        max_message_bytes: int = BROKER_MAX_MESSAGE_BYTES,
        max_attempts: int = MAX_ATTEMPTS,
        metrics: OutboxMetrics | None = None,
    ) -> None:
        self._pool = pool
        self._publisher = publisher
        self._schema = schema
        self._batch_size = batch_size
        self._sweep_interval = sweep_interval
        self._drain_interval = drain_interval
        self._retention_hours = retention_hours
        self._purge_interval = purge_interval
        self._max_message_bytes = max_message_bytes
        self._max_attempts = max_attempts
        self.metrics = metrics or OutboxMetrics.register(CollectorRegistry())
        self._wake = asyncio.Event()
        self.published = 0
        self.parked = 0

    async def _publish(self, row: asyncpg.Record) -> None:
        await self._publisher.publish(bytes(row["body"]), row["routing_key"], str(row["id"]))

    async def _publish_all(
        self, rows: list[asyncpg.Record]
    ) -> tuple[list[int], list[tuple[asyncpg.Record, Exception]]]:
        """Publish the rows; returns the seqs confirmed and the rows that failed on their own."""
        # All written in order, then the confirms awaited together: one round trip of latency per batch.
        results = await self._publisher.publish_many([(bytes(r["body"]), r["routing_key"], str(r["id"])) for r in rows])
        sent = [r["seq"] for r, result in zip(rows, results, strict=True) if result is None]
        failed = [(r, result) for r, result in zip(rows, results, strict=True) if result is not None]
        if failed and len(rows) > 1:
            # One bad row may have failed its neighbours (a closed channel): try each alone, in order,
            # but give up after a few failures in a row with none through: then the broker is away.
            retried, failed = failed, []
            for row, error in retried:
                if not sent and len(failed) >= ISOLATION_TRIES:
                    failed.append((row, error))
                    continue
                try:
                    await self._publish(row)
                except Exception as exc:
                    failed.append((row, exc))
                else:
                    sent.append(row["seq"])
        return sent, failed

    async def relay_once(self) -> int:
        """Publish one batch of pending rows; returns how many were sent.

        Raises the publish error when no row of the batch got through (the broker is away).
        """
        sent, _, _ = await self._relay_batch()
        return sent

    async def _relay_batch(self) -> tuple[int, int, int]:
        """One batch: (rows sent, rows parked, rows claimed)."""
        error: Exception | None = None
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                f"SELECT seq, id, routing_key, body, attempts FROM {self._schema}.outbox"
                " WHERE sent_at IS NULL AND parked_at IS NULL ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED",
                self._batch_size,
            )
            if not rows:
                return 0, 0, 0
            parks = [
                _Park(
                    r["seq"],
                    "too_large",
                    f"body of {len(r['body'])} bytes exceeds the broker's limit of {self._max_message_bytes} bytes",
                )
                for r in rows
                if len(r["body"]) > self._max_message_bytes
            ]
            too_large = {p.seq for p in parks}
            sent, failed = await self._publish_all([r for r in rows if r["seq"] not in too_large])
            retries: list[tuple[int, str]] = []
            if failed and not sent:
                error = failed[0][1]
            for row, exc in failed if sent else ():
                attempts = row["attempts"] + 1
                if attempts >= self._max_attempts:
                    parks.append(_Park(row["seq"], "failing", f"publishing failed {attempts} times, last: {exc!r}"))
                else:
                    retries.append((row["seq"], repr(exc)))
            await self._mark(conn, sent, parks, retries)
        self._parked(parks)
        self.published += len(sent)
        if error is not None:
            raise error
        return len(sent), len(parks), len(rows)

    async def _mark(
        self, conn: asyncpg.Connection, sent: list[int], parks: list[_Park], retries: list[tuple[int, str]]
    ) -> None:
        if sent:
            await conn.execute(f"UPDATE {self._schema}.outbox SET sent_at = now() WHERE seq = ANY($1::bigint[])", sent)
        if parks:
            await conn.executemany(
                f"UPDATE {self._schema}.outbox SET parked_at = now(), park_reason = $2, attempts = attempts + 1"
                " WHERE seq = $1",
                [(p.seq, p.reason) for p in parks],
            )
        if retries:
            await conn.executemany(
                f"UPDATE {self._schema}.outbox SET attempts = attempts + 1, last_error = $2 WHERE seq = $1", retries
            )

    def _parked(self, parks: list[_Park]) -> None:
        for park in parks:
            log.error("outbox.parked", schema=self._schema, seq=park.seq, cause=park.cause, reason=park.reason)
            self.metrics.parked.labels(self._schema, park.cause).inc()
        self.parked += len(parks)

    async def measure(self) -> tuple[int, int]:
        """Set the backlog and parked-rows gauges; returns (backlog, parked)."""
        async with self._pool.acquire() as conn:
            # Two counts, each over its partial index: one count with FILTERs read every row of the
            # outbox, sent ones included (a sequential scan of a day of traffic).
            row = await conn.fetchrow(
                f"SELECT (SELECT count(*) FROM {self._schema}.outbox WHERE sent_at IS NULL AND parked_at IS NULL)"
                f" AS backlog, (SELECT count(*) FROM {self._schema}.outbox"
                f" WHERE parked_at IS NOT NULL AND sent_at IS NULL) AS parked"
            )
        assert row is not None
        self.metrics.backlog.labels(self._schema).set(row["backlog"])
        self.metrics.parked_rows.labels(self._schema).set(row["parked"])
        return int(row["backlog"]), int(row["parked"])

    async def drain(self) -> int:
        """Relay batches until none is left; returns how many rows were sent."""
        total = 0
        while True:
            sent, parked, claimed = await self._relay_batch()
            total += sent
            # A batch short of full claimed every row there was: no empty round trip to find that out.
            if (not sent and not parked) or claimed < self._batch_size:
                return total

    async def purge_sent(self) -> int:
        """Delete rows sent more than `retention_hours` ago; returns how many went."""
        async with self._pool.acquire() as conn:
            status = await conn.execute(
                f"DELETE FROM {self._schema}.outbox WHERE sent_at < now() - make_interval(hours => $1)",
                self._retention_hours,
            )
        purged = int(status.split()[-1])
        if purged:
            log.info("outbox.purged", schema=self._schema, count=purged)
        return purged

    def _notified(self, *_: object) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Relay until cancelled. Errors (broker or database away) are logged and retried."""
        listener: asyncpg.Connection | None = None
        channel = f"{self._schema}_outbox"
        next_purge = next_measure = drained_at = 0.0
        loop = asyncio.get_running_loop()
        try:
            while True:
                try:
                    if listener is None or listener.is_closed():
                        listener = await self._pool.acquire()
                        await listener.add_listener(channel, self._notified)
                    # At most one drain per `drain_interval`: under load NOTIFY arrives for nearly every
                    # commit, and draining at each claimed a row or two per batch at four round trips
                    # (measured: 2.5 relay transactions per subscribe). Sparse commits wait for nothing.
                    pause = drained_at + self._drain_interval - loop.time()
                    if pause > 0:
                        await asyncio.sleep(pause)
                    drained_at = loop.time()
                    # Cleared before the sweep: a NOTIFY that arrives while it runs wakes the next one.
                    self._wake.clear()
                    sent = await self.drain()
                    if sent:
                        log.debug("outbox.relayed", schema=self._schema, count=sent)
                    # The gauges once per sweep, not on every wake-up: under load NOTIFY wakes the relay
                    # for nearly every commit, and the count was a query per wake.
                    if loop.time() >= next_measure:
                        await self.measure()
                        next_measure = loop.time() + self._sweep_interval
                    if loop.time() >= next_purge:
                        await self.purge_sent()
                        next_purge = loop.time() + self._purge_interval
                    await wait_event(self._wake, self._sweep_interval)
                except Exception as exc:
                    log.warning("outbox.relay_failed", schema=self._schema, error=repr(exc))
                    if listener is not None:
                        with contextlib.suppress(Exception):
                            await self._pool.release(listener)
                        listener = None
                    await asyncio.sleep(min(self._sweep_interval * 2, 5.0))
        finally:
            if listener is not None:
                with contextlib.suppress(Exception):
                    await listener.remove_listener(channel, self._notified)
                    await self._pool.release(listener)
