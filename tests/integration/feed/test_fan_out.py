"""A subscription event for many subscriptions costs the projection a bounded number of statements
and notifications, not one round trip per subscription, and every feed process still hears of each."""

from __future__ import annotations

import asyncio
import math
import time
import uuid

import asyncpg

from services.feed.adapters import repository as repo
from services.feed.messaging import projection
from services.feed.services import FeedService
from services.feed.settings import FeedSettings
from shared import db
from shared.messages import SubscriptionEventAccepted, make_envelope
from shared.settings import PlatformSettings
from tests.integration.feed import messages as m

SUBSCRIPTIONS = 1000


async def test_a_subscription_event_for_1000_subscriptions_takes_a_few_statements_and_notifications(
    database_url: str,
) -> None:
    cal = m.calendar(uuid.uuid4())
    subscriptions = [m.subscription(cal) for _ in range(SUBSCRIPTIONS)]
    conn, listener = await db.connect(database_url), await db.connect(database_url)
    pool = await db.create_pool(database_url, min_size=1, max_size=2)
    # A feed process with its fallback re-check far away: only the notifications can tell it.
    platform = PlatformSettings(database_url=database_url)
    feeds = FeedService(pool, FeedSettings(platform=platform, recheck_seconds=3600))
    heard: list[str] = []
    try:
        async with conn.transaction():
            await projection.apply_calendar(conn, cal)
            for subscription in subscriptions:
                await projection.apply_subscription(conn, subscription)
        await feeds.start()
        await listener.add_listener(repo.CHANNEL, lambda *args: heard.append(args[3]))
        ids = [s.subscription_id for s in subscriptions]
        accepted = SubscriptionEventAccepted(
            event=m.event(cal, "Meet the team", subscription_ids=ids), subscription_ids=ids
        )
        statements: list[str] = []

        def count(record: asyncpg.connection.LoggedQuery) -> None:
            statements.append(record.query)

        conn.add_query_logger(count)
        started = time.monotonic()
        async with conn.transaction():
            await projection.handle(conn, make_envelope("subscription_event.accepted", accepted))
        elapsed = time.monotonic() - started
        conn.remove_query_logger(count)

        # Lock the event, store it, bump and announce every subscription: not 1,000 round trips.
        assert len(statements) <= 5, statements
        assert elapsed < 5.0
        deadline = time.monotonic() + 5
        while len({e for p in heard for e in p.split(";")}) < SUBSCRIPTIONS and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        entries = [entry.split(":") for payload in heard for entry in payload.split(";")]
        assert sorted(uuid.UUID(sid) for kind, sid, _ in entries if kind == "s") == sorted(ids)
        assert len(heard) <= math.ceil(SUBSCRIPTIONS / repo.NOTIFY_CHUNK)
        assert all(len(payload.encode()) < 8000 for payload in heard)
        # The feed process took every entry of every payload: it knows each subscription's new version.
        _, current = await repo.current_versions(conn, [], ids)
        assert {sid: feeds.subscription_versions.get(sid) for sid in ids} == current
        assert set(current.values()) == {3}  # created (1), its own bump (2), the subscription event (3)
    finally:
        await feeds.stop()
        await pool.close()
        await listener.close()
        await conn.close()
