"""The transactional outbox: record messages with the state change, then relay them to RabbitMQ.

`enqueue` runs inside the caller's transaction, so the message exists exactly when the change
does. The relay publishes unsent rows with publisher confirms and marks them sent only after the
confirm: a relay killed in between publishes the row again, and the idempotent consumer drops the
duplicate. Several relays may run; `FOR UPDATE SKIP LOCKED` gives each row to one of them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable

import asyncpg

from shared.amqp import Publisher
from shared.logging import get_logger
from shared.messages import Envelope

log = get_logger(__name__)


async def enqueue(conn: asyncpg.Connection, schema: str, envelopes: Iterable[Envelope]) -> None:
    rows = [(e.id, e.type, e.to_bytes()) for e in envelopes]
    if rows:
        await conn.executemany(f"INSERT INTO {schema}.outbox (id, routing_key, body) VALUES ($1, $2, $3)", rows)


class OutboxRelay:
    """Publishes one schema's outbox; woken by LISTEN/NOTIFY, sweeping every `sweep_interval`."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        publisher: Publisher,
        schema: str,
        *,
        batch_size: int = 200,
        sweep_interval: float = 1.0,
        retention_hours: int = 24,
        purge_interval: float = 3600.0,
    ) -> None:
        self._pool = pool
        self._publisher = publisher
        self._schema = schema
        self._batch_size = batch_size
        self._sweep_interval = sweep_interval
        self._retention_hours = retention_hours
        self._purge_interval = purge_interval
        self._wake = asyncio.Event()
        self.published = 0

    async def relay_once(self) -> int:
        """Publish one batch of unsent rows; returns how many were sent."""
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                f"SELECT seq, id, routing_key, body FROM {self._schema}.outbox"
                " WHERE sent_at IS NULL ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED",
                self._batch_size,
            )
            if not rows:
                return 0
            # Confirms are awaited together: one round trip of latency per batch, not per row.
            await asyncio.gather(
                *(self._publisher.publish(bytes(r["body"]), r["routing_key"], str(r["id"])) for r in rows)
            )
            await conn.execute(
                f"UPDATE {self._schema}.outbox SET sent_at = now() WHERE seq = ANY($1::bigint[])",
                [r["seq"] for r in rows],
            )
        self.published += len(rows)
        return len(rows)

    async def drain(self) -> int:
        total = 0
        while (sent := await self.relay_once()) > 0:
            total += sent
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
        next_purge = 0.0
        loop = asyncio.get_running_loop()
        try:
            while True:
                try:
                    if listener is None or listener.is_closed():
                        listener = await self._pool.acquire()
                        await listener.add_listener(channel, self._notified)
                    # Cleared before the sweep: a NOTIFY that arrives while it runs wakes the next one.
                    self._wake.clear()
                    sent = await self.drain()
                    if sent:
                        log.debug("outbox.relayed", schema=self._schema, count=sent)
                    if loop.time() >= next_purge:
                        await self.purge_sent()
                        next_purge = loop.time() + self._purge_interval
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self._sweep_interval)
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
