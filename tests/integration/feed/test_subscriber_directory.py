"""Feeds put together from the subscriber directory: the same bytes as from the database, never stale."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import uuid
from datetime import timedelta

from services.feed.app_keys import FEEDS
from services.feed.services import FeedService
from shared.lifecycle import POOL
from tests.integration.feed import messages as m
from tests.integration.feed.conftest import FeedHarness
from tests.integration.feed.test_feed_projection import has, publish_calendar, summaries

IDENTITY = {"Accept-Encoding": "identity"}


async def _directory_loaded(service: FeedService, count: int) -> None:
    for _ in range(200):
        if len(service.directory.rows) >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the directory holds {len(service.directory.rows)} rows, not {count}")


async def _projected(feed: FeedHarness, ids: list[uuid.UUID]) -> None:
    """Every one of `ids` is in the feed's projection. A calendar's directory is loaded once, at its first
    poll: a subscription projected after that load joins it only at its own first poll."""
    pool = feed.client.app[POOL]
    for _ in range(200):
        async with pool.acquire() as conn:
            found = await conn.fetchval(
                "SELECT count(*) FROM feed.subscriptions WHERE subscription_id = ANY($1::uuid[])", ids
            )
        if found == len(ids):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{found} of {len(ids)} subscriptions projected")


async def test_feeds_from_the_directory_are_the_bytes_the_database_path_gives_and_follow_changes(
    feed: FeedHarness,
) -> None:
    service = feed.client.app[FEEDS]
    service.directory.min_subscribers = 1
    cal = await publish_calendar(feed)
    home = m.tag(cal, "Home")
    await feed.publish("tag.created", home)
    await feed.publish("event.created", m.event(cal, "Home game", tag_ids=[home.tag_id]))
    await feed.publish("event.created", m.event(cal, "Away game", day=2))
    everyone, home_fans = m.subscription(cal), m.subscription(cal, calendar_tags=m.tags_of(home))
    locked = await publish_calendar(feed, protected=True)
    await feed.publish("event.created", m.event(locked, "Members only"))
    protected = m.subscription(
        locked, feed_username="fan", feed_password_hash="sha256:" + hashlib.sha256(b"secret").hexdigest()
    )
    no_hash = m.subscription(locked)
    mine = m.subscription(cal)
    await feed.publish("event.created", m.event(cal, "My reminder", day=3, subscription_ids=[mine.subscription_id]))
    for sub in (everyone, home_fans, protected, mine, no_hash):
        await feed.publish("subscription.created", sub)
    await _projected(feed, [sub.subscription_id for sub in (everyone, home_fans, protected, mine, no_hash)])
    paths = {s.subscription_id: f"/v1/webcal/{s.subscription_id}" for s in (everyone, home_fans, protected, mine)}
    await feed.wait_for(paths[mine.subscription_id], has("My reminder", "Away game"))
    await feed.wait_for(paths[everyone.subscription_id], has("Home game", "Away game"))
    auth = {"Authorization": "Basic " + base64.b64encode(b"fan:secret").decode()}
    await feed.wait_for(paths[protected.subscription_id], has("Members only"), headers=auth)
    await _directory_loaded(service, 5)
    assert service.directory.rows[str(mine.subscription_id)].private
    from_database = {}
    for sid, path in paths.items():
        from_database[sid] = await (await feed.client.get(path, headers={**IDENTITY, **auth})).read()

    service._feeds.clear()  # what a cache eviction does: the next poll is put together again
    for sid in (everyone.subscription_id, home_fans.subscription_id, protected.subscription_id):
        built = service.from_directory(str(sid))
        assert built is not None, "a current row, calendar and section build a feed without a query"
        assert built.body == from_database[sid]
    assert service.from_directory(str(mine.subscription_id)) is None  # private events
    service._feeds.clear()
    for sid, path in paths.items():
        response = await feed.client.get(path, headers={**IDENTITY, **auth})
        assert response.status == 200 and await response.read() == from_database[sid]
    # Fail closed from the directory too.
    service._feeds.clear()
    assert (await feed.client.get(paths[protected.subscription_id])).status == 401
    wrong = {"Authorization": "Basic " + base64.b64encode(b"fan:guess").decode()}
    assert (await feed.client.get(paths[protected.subscription_id], headers=wrong)).status == 401
    service._feeds.clear()
    assert service.from_directory(str(no_hash.subscription_id)) is not None
    no_hash_path = f"/v1/webcal/{no_hash.subscription_id}"
    assert (await feed.client.get(no_hash_path, headers=auth)).status == 401

    # A changed filter (a newer version announced) is never served from the older row.
    switched = home_fans.model_copy(update={"calendar_tags": [], "version": 2})
    await feed.publish("subscription.updated", switched)
    _, body = await feed.wait_for(paths[home_fans.subscription_id], has("Away game"))
    assert summaries(body) == ["Away game", "Home game"]
    # Nor a deactivation.
    ended = everyone.model_copy(update={"active": False, "deactivated_at": m.BASE - timedelta(days=1), "version": 2})
    await feed.publish("subscription.deactivated", ended)
    _, body = await feed.wait_for(paths[everyone.subscription_id], lambda s, b: s == 200 and b"Away game" not in b)
    assert summaries(body) == []
    assert service.directory.rows[str(everyone.subscription_id)].feed_version > 1


async def test_a_lost_listener_empties_the_directory(feed: FeedHarness) -> None:
    service = feed.client.app[FEEDS]
    service.directory.min_subscribers = 1
    cal = await publish_calendar(feed)
    await feed.publish("event.created", m.event(cal, "Game"))
    sub = m.subscription(cal)
    await feed.publish("subscription.created", sub)
    await feed.wait_for(f"/v1/webcal/{sub.subscription_id}", has("Game"))
    await _directory_loaded(service, 1)
    service._forget_all()
    assert not service.directory.rows and not service.directory.calendars
    assert service.from_directory(str(sub.subscription_id)) is None
