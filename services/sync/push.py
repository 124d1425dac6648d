"""The push engine: reconciles queued subscriptions with their remote calendars, many at once.

Work is per subscription (`push_queue`, marked by the projection). A bounded pool of `concurrency`
reconciliations runs at a time, so a change fanned out to 1,000 subscribers is spread over the
pool, not burst, and one slow or rate-limited remote user holds one slot while others go on (a
rate-limited user's subscriptions are not even claimed until its backoff ends). Rows are claimed
with a lease (FOR UPDATE SKIP LOCKED), so several workers share the queue and a crashed worker's
claims come back when the lease ends.

Restarts and replays push nothing twice and miss nothing: each reconciliation compares what the
subscription should show with what `pushed` records (domain/reconcile.py) and records each push as
soon as the provider answers; a mark that arrives during a reconciliation keeps the row queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import asyncpg
from prometheus_client import CollectorRegistry

from services.sync.adapters import repository as repo
from services.sync.domain.provider import Provider
from services.sync.reconciler import SCHEMA, Reconciler
from services.sync.settings import SyncSettings
from shared.crypto import SecretBox
from shared.logging import get_logger
from shared.waiting import wait_event

log = get_logger(__name__)

__all__ = ["SCHEMA", "PushEngine"]


class PushEngine:
    def __init__(
        self,
        pool: asyncpg.Pool,
        box: SecretBox,
        providers: Mapping[str, Provider],
        settings: SyncSettings,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self._pool = pool
        self._providers = providers
        self._settings = settings
        self._reconciler = Reconciler(pool, box, providers, settings, registry)
        self._wake = asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()
        self._loop: asyncio.Task[None] | None = None
        self._listener: asyncpg.Connection | None = None
        self._stopping = False
        self._cut: set[uuid.UUID] = set()  # claims whose reconciliation was cancelled at stop

    @property
    def counts(self) -> dict[str, int]:
        return self._reconciler.counts

    async def reconcile(self, subscription_id: uuid.UUID) -> datetime | None:
        """Bring one subscription's remote calendar up to date now; None when done, else when to retry."""
        return await self._reconciler.reconcile(subscription_id)

    # --- the loop -------------------------------------------------------------------------------

    async def start(self) -> None:
        try:
            self._listener = await asyncpg.connect(self._settings.platform.database_url)
            await self._listener.add_listener(repo.CHANNEL, self._notified)
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("sync.listen_failed", error=repr(exc))  # the poll still finds the work
        self._loop = asyncio.create_task(self._run(), name="sync-push-engine")

    async def stop(self, grace: float = 20.0) -> None:
        """Stop claiming; let reconciliations in flight finish (their pushes get recorded).

        Nothing is left leased on the way out: the claim loop is let finish its current step
        rather than cancelled (a claim committed by PostgreSQL but cancelled here would stay leased
        with no task behind it), and the claims of reconciliations cut at the end of `grace` are
        released, so the next worker takes them at once instead of after the lease."""
        self._stopping = True
        self._wake.set()
        if self._loop is not None:
            _, late_loop = await asyncio.wait({self._loop}, timeout=grace)
            for task in late_loop:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._running:
            _, late = await asyncio.wait(set(self._running), timeout=grace)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)
        if self._cut:
            with contextlib.suppress(OSError, asyncpg.PostgresError):
                async with self._pool.acquire() as conn:
                    await repo.release(conn, sorted(self._cut))
            log.info("sync.claims_released", count=len(self._cut))
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()
        for provider in self._providers.values():
            await provider.close()

    def _notified(self, *_: object) -> None:
        self._wake.set()

    async def _run(self) -> None:
        while not self._stopping:
            # Cleared before looking, so a notification that lands while we look is not lost.
            self._wake.clear()
            free = self._settings.concurrency - len(self._running)
            claims: list[repo.Claim] = []
            if free > 0:
                try:
                    async with self._pool.acquire() as conn:
                        claims = await repo.claim_due(conn, free, self._settings.lease)
                except (OSError, asyncpg.PostgresError) as exc:
                    log.warning("sync.claim_failed", error=repr(exc))
            for claim in claims:
                task = asyncio.create_task(self._reconcile_claim(claim), name=f"sync-{claim.subscription_id}")
                self._running.add(task)
                task.add_done_callback(self._done)
            if claims and len(claims) == free:
                continue  # more may be due right now
            await wait_event(self._wake, self._settings.poll_interval)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._wake.set()  # a slot is free

    async def _hold(self, claim: repo.Claim) -> None:
        """Renew the claim's lease while a long reconciliation runs, so no other worker takes it."""
        while True:
            await asyncio.sleep(self._settings.lease / 3)
            with contextlib.suppress(OSError, asyncpg.PostgresError):
                async with self._pool.acquire() as conn:
                    await repo.extend_claim(conn, claim.subscription_id, self._settings.lease)

    async def _reconcile_claim(self, claim: repo.Claim) -> None:
        try:
            holding = asyncio.create_task(self._hold(claim))
            try:
                due = await self.reconcile(claim.subscription_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("sync.reconcile_crashed", subscription_id=str(claim.subscription_id))
                due = datetime.now(UTC) + timedelta(seconds=self._settings.backoff_max)
            finally:
                holding.cancel()
            async with self._pool.acquire() as conn:
                if due is None:
                    await repo.finish(conn, claim)
                else:
                    await repo.retry_at(conn, claim.subscription_id, due)
        except asyncio.CancelledError:
            # Cut by stop(): stop() gives the claim back (releasing a finished one is harmless).
            self._cut.add(claim.subscription_id)
            raise

    async def drain(self) -> int:
        """Reconcile everything due now, in this task (tests and tools); returns how many."""
        done = 0
        while True:
            async with self._pool.acquire() as conn:
                claims = await repo.claim_due(conn, self._settings.concurrency, self._settings.lease)
            if not claims:
                return done
            await asyncio.gather(*(self._reconcile_claim(c) for c in claims))
            done += len(claims)
