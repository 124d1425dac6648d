"""Where the feed API reads a feed from: a streaming replica while it is provably fresh, else the primary.

`KALENDS_FEED_READ_DATABASE_URL` points the feed API's feed reads at a hot standby of the primary;
the projection (the consumer's writes), the LISTEN connection, the periodic re-check of versions and
the small cached look-ups (calendar codes, API keys, popular calendars' directories) stay on the
primary (`KALENDS_DATABASE_URL`), which is the truth. Two rules keep the replica from ever giving a
wrong answer or one that stays stale:

1. Bounded staleness, by replay position. Every `interval` seconds the watcher notes the primary's
   WAL position (`pg_current_wal_lsn()`) with the time just before it asked, then asks the replica
   how far it has replayed (`pg_last_wal_replay_lsn()`). Once the replica has replayed past a noted
   position, everything the primary had committed at that time is visible on the replica: that time
   is the replica's watermark. Feeds are read from the replica only while `now - watermark` is at
   most `KALENDS_FEED_READ_MAX_LAG_SECONDS`. An idle primary writes no WAL, so an idle replica stays
   fresh (a lag computed from `pg_last_xact_replay_timestamp()` would grow while nothing happens). A
   replica that does not answer, is no longer in recovery (promoted: its history diverges) or falls
   behind the bound is not read from until it proves fresh again; reads go to the primary meanwhile,
   and a read that fails on the replica (dead, or cancelled by a recovery conflict) is done again
   on the primary at once.
2. Never older than heard. The feed service hears every version the projection commits (NOTIFY on
   the primary, services/feed/services.py). A feed read from the replica at a calendar or
   subscription version older than one already heard of raises `ReplicaBehind` in the caller's load
   and is read again from the primary, so a change that was announced is never hidden by replica lag.
   "Not found" on the replica (a subscription created a moment ago) is confirmed on the primary
   before it is answered.

The cost of rule 2: the first read of a feed after a change may go to the primary while the replica
has not replayed the change yet (`behind` counts those); reads between changes stay on the replica.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg

from shared import db
from shared.logging import get_logger

log = get_logger(__name__)

T = TypeVar("T")

# What a replica that is down, restarting or in conflict with recovery raises.
REPLICA_FAILED = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)
WAL_POSITION = "SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint"
REPLAY_POSITION = (
    "SELECT pg_is_in_recovery() AS standby, (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint AS replayed"
)


class ReplicaBehind(Exception):
    """What the replica returned is older than a version already heard of from the primary."""


class ReadRouter:
    """Chooses the pool a feed is read from, and reads it again from the primary when the replica's
    answer cannot be trusted (see the module docstring for the two rules)."""

    def __init__(
        self,
        primary: asyncpg.Pool,
        replica_url: str | None,
        *,
        max_lag: float = 5.0,
        interval: float = 0.25,
        pool_max: int = 10,
    ) -> None:
        self.primary = primary
        self.replica_url = replica_url
        self.max_lag = max_lag
        self.interval = interval
        self._pool_max = pool_max
        self.replica: asyncpg.Pool | None = None
        self._watermark: float | None = None  # monotonic time the replica is known to be complete up to
        self._samples: collections.deque[tuple[float, int]] = collections.deque(maxlen=10_000)
        self._task: asyncio.Task[None] | None = None
        self._was_fresh = False
        self.replica_reads = 0
        self.primary_reads = 0
        self.behind = 0  # replica reads redone on the primary: older than a version heard of
        self.confirmed = 0  # "not found" on the replica, asked again of the primary
        self.failed = 0  # replica reads that raised (down, recovery conflict) and went to the primary

    async def start(self) -> None:
        if not self.replica_url:
            return
        # min_size=0: nothing is dialled now, so a replica down at start does not stop the service.
        self.replica = await db.create_pool(self.replica_url, min_size=0, max_size=self._pool_max, connect_timeout=2)
        self._task = asyncio.create_task(self._watch(), name="feed-replica-watch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.replica is not None:
            await self.replica.close()

    @property
    def lag(self) -> float | None:
        """Seconds the replica may be behind the primary (an upper bound), None when it is unusable."""
        if self._watermark is None:
            return None
        return time.monotonic() - self._watermark

    @property
    def fresh(self) -> bool:
        lag = self.lag
        return self.replica is not None and lag is not None and lag <= self.max_lag

    async def read(self, load: Callable[[asyncpg.Pool, bool], Awaitable[T]], confirm: tuple[type[Exception], ...]) -> T:
        """`load(pool, from_replica)` on the replica when it is fresh, else (or when the replica's
        answer is `ReplicaBehind`, one of `confirm`, or an error) on the primary."""
        if self.replica is not None and self.fresh:
            try:
                result = await load(self.replica, True)
            except ReplicaBehind as exc:
                self.behind += 1
                log.info("feed.read_on_primary", reason="behind", detail=str(exc))
            except confirm:
                self.confirmed += 1
                log.info("feed.read_on_primary", reason="not_found_on_replica")
            except REPLICA_FAILED as exc:
                self.failed += 1
                self._watermark = None  # not read from again until the watcher finds it fresh
                log.warning("feed.replica_read_failed", error=repr(exc))
            else:
                self.replica_reads += 1
                return result
        self.primary_reads += 1
        return await load(self.primary, False)

    async def _watch(self) -> None:
        while True:
            await self.check()
            fresh = self.fresh
            if fresh != self._was_fresh:
                self._was_fresh = fresh
                log.info("feed.replica_fresh" if fresh else "feed.replica_unusable", lag=self.lag)
            await asyncio.sleep(self.interval)

    async def check(self) -> None:
        """Note the primary's WAL position, then move the watermark up to what the replica replayed."""
        assert self.replica is not None
        asked = time.monotonic()
        try:
            async with self.primary.acquire(timeout=2) as conn:
                self._samples.append((asked, int(await conn.fetchval(WAL_POSITION, timeout=2))))
        except REPLICA_FAILED as exc:
            # Without the primary's position freshness cannot be proven: the watermark stays put and
            # the replica turns stale after max_lag (reads to the primary fail too meanwhile).
            log.warning("feed.replica_watch_primary_failed", error=repr(exc))
        try:
            async with self.replica.acquire(timeout=2) as conn:
                row = await conn.fetchrow(REPLAY_POSITION, timeout=2)
        except REPLICA_FAILED as exc:
            if self._watermark is not None:
                log.warning("feed.replica_down", error=repr(exc))
            self._watermark = None
            return
        if row is None or not row["standby"] or row["replayed"] is None:
            self._watermark = None  # promoted, or never replayed anything: not a replica of ours
            return
        while self._samples and self._samples[0][1] <= row["replayed"]:
            self._watermark = self._samples.popleft()[0]
