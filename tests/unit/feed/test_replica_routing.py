"""Which database a feed is read from (services/feed/replica.py), as pure routing: a replica is read
only while proven fresh, and its answer is redone on the primary when behind, not found, or failed."""

from __future__ import annotations

import time
from typing import Any

import asyncpg
import pytest

from services.feed.replica import ReadRouter, ReplicaBehind
from services.feed.settings import FeedSettings
from shared.settings import PlatformSettings, SettingsError

PRIMARY: Any = object()
REPLICA: Any = object()


class NotFound(Exception):
    pass


def router(watermark_age: float | None, max_lag: float = 1.0) -> ReadRouter:
    reads = ReadRouter(PRIMARY, "postgresql://replica/k", max_lag=max_lag)
    reads.replica = REPLICA
    reads._watermark = None if watermark_age is None else time.monotonic() - watermark_age
    return reads


async def where(pool: Any, from_replica: bool) -> str:
    assert (pool is REPLICA) == from_replica
    return "replica" if from_replica else "primary"


async def test_a_replica_proven_fresh_within_the_bound_is_read() -> None:
    reads = router(watermark_age=0.2)
    assert reads.fresh and await reads.read(where, ()) == "replica"
    assert (reads.replica_reads, reads.primary_reads) == (1, 0)


@pytest.mark.parametrize("age", [None, 1.5])
async def test_a_replica_never_proven_fresh_or_behind_the_bound_is_not_read(age: float | None) -> None:
    reads = router(watermark_age=age)
    assert not reads.fresh and await reads.read(where, ()) == "primary"
    assert (reads.replica_reads, reads.primary_reads) == (0, 1)


async def test_without_a_replica_every_read_goes_to_the_primary() -> None:
    reads = ReadRouter(PRIMARY, None)
    assert not reads.fresh and await reads.read(where, ()) == "primary"


@pytest.mark.parametrize(
    ("error", "counter"),
    [
        (ReplicaBehind("calendar at 3, heard 4"), "behind"),
        (NotFound("no subscription"), "confirmed"),
        (asyncpg.exceptions.SerializationError("conflict with recovery"), "failed"),
        (ConnectionRefusedError(), "failed"),
    ],
)
async def test_an_answer_the_replica_cannot_be_trusted_with_is_read_again_from_the_primary(
    error: Exception, counter: str
) -> None:
    reads = router(watermark_age=0.0)

    async def load(pool: Any, from_replica: bool) -> str:
        if from_replica:
            raise error
        return "primary"

    assert await reads.read(load, (NotFound,)) == "primary"
    assert getattr(reads, counter) == 1 and reads.primary_reads == 1


async def test_a_failed_replica_read_stops_further_replica_reads_until_the_watcher_proves_it_fresh() -> None:
    reads = router(watermark_age=0.0)

    async def load(pool: Any, from_replica: bool) -> str:
        if from_replica:
            raise OSError("connection reset")
        return "primary"

    await reads.read(load, ())
    assert not reads.fresh and await reads.read(where, ()) == "primary"


async def test_not_found_on_the_primary_too_is_the_answer() -> None:
    reads = router(watermark_age=0.0)

    async def load(pool: Any, from_replica: bool) -> str:
        raise NotFound("nowhere")

    with pytest.raises(NotFound):
        await reads.read(load, (NotFound,))


def test_the_read_database_and_its_lag_bound_come_from_the_environment() -> None:
    platform = PlatformSettings.from_env({})
    assert FeedSettings.from_env(platform, {}).read_database_url == ""
    settings = FeedSettings.from_env(
        platform,
        {
            "KALENDS_FEED_READ_DATABASE_URL": "postgresql://u:secret@replica/k",
            "KALENDS_FEED_READ_MAX_LAG_SECONDS": "0.5",
        },
    )
    assert (settings.read_database_url, settings.read_max_lag) == ("postgresql://u:secret@replica/k", 0.5)
    assert settings.for_log()["read_database_url"] == "postgresql://u:***@replica/k"
    with pytest.raises(SettingsError, match="KALENDS_FEED_READ_DATABASE_URL must be a postgres/postgresql URL"):
        FeedSettings.from_env(platform, {"KALENDS_FEED_READ_DATABASE_URL": "mysql://replica/k"})
    with pytest.raises(SettingsError, match="KALENDS_FEED_READ_MAX_LAG_SECONDS must be positive"):
        FeedSettings.from_env(platform, {"KALENDS_FEED_READ_MAX_LAG_SECONDS": "0"})
