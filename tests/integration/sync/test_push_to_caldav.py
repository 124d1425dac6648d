"""The sync service against real PostgreSQL, RabbitMQ and Radicale: what reaches the subscriber's
CalDAV calendar, read back with the `caldav` client library, and how often."""

from __future__ import annotations

import asyncio
import uuid

from services.sync.adapters.caldav import CalDavProvider
from shared.messages import CalendarData, SubscriptionData
from tests.integration.feed import messages as m
from tests.integration.sync.conftest import SyncHarness
from tests.tools.dav_proxy import DavProxy


async def pushed_subscription(
    sync: SyncHarness, cal: CalendarData, url: str | None = None, **overrides: object
) -> tuple[SubscriptionData, object, str, str]:
    connected, user, password = await sync.connect(cal.account_id, url)
    subscription = m.subscription(
        cal, subscription_type="caldav", sync_connection_id=connected.connection_id, **overrides
    )
    return subscription, connected, user, password


def puts(sync: SyncHarness, connected: object) -> list[str]:
    path = connected.calendar_url.split("/", 3)[3]  # type: ignore[attr-defined]
    return sync.radicale.requests("PUT", path)


async def test_a_pushed_subscription_gets_what_its_filter_selects_and_a_replay_pushes_nothing(
    sync: SyncHarness,
) -> None:
    cal = m.calendar(uuid.uuid4())
    tag_a, tag_b = m.tag(cal, "A"), m.tag(cal, "B")
    first = m.event(cal, "First A", 1, tag_ids=[tag_a.tag_id])
    second = m.event(cal, "Only B", 2, tag_ids=[tag_b.tag_id])
    third = m.event(cal, "Third A", 3, tag_ids=[tag_a.tag_id], all_day=True, start="2026-03-03", end="2026-03-04")
    subscription, connected, user, password = await pushed_subscription(sync, cal, calendar_tags=m.tags_of(tag_a))
    sent = [
        ("calendar.created", cal),
        ("event.created", first),
        ("event.created", second),
        ("event.created", third),
        ("subscription.created", subscription),
    ]
    for kind, data in sent:
        await sync.publish(kind, data)
    await sync.settle()
    remote = await sync.remote(connected, user, password)
    assert {uid: e["summary"] for uid, e in remote.items()} == {
        str(first.event_id): "First A",
        str(third.event_id): "Third A",
    }
    assert len(puts(sync, connected)) == 2

    # The same messages again (new message ids, so the consumer applies them): nothing is pushed twice.
    for kind, data in sent:
        await sync.publish(kind, data)
    await sync.settle()
    assert len(puts(sync, connected)) == 2


async def test_an_update_is_pushed_once_and_an_older_version_changes_nothing(sync: SyncHarness) -> None:
    cal = m.calendar(uuid.uuid4())
    game = m.event(cal, "Kick-off 19:00", 1)
    subscription, connected, user, password = await pushed_subscription(sync, cal)
    for kind, data in (("calendar.created", cal), ("event.created", game), ("subscription.created", subscription)):
        await sync.publish(kind, data)
    await sync.settle()
    moved = game.model_copy(update={"title": "Kick-off 20:00", "sequence": 2, "start": "2026-03-01T20:00:00"})
    await sync.publish("event.updated", moved)
    await sync.settle()
    remote = await sync.remote(connected, user, password)
    assert remote[str(game.event_id)]["summary"] == "Kick-off 20:00"
    assert remote[str(game.event_id)]["sequence"] == "2"
    assert len(puts(sync, connected)) == 2
    await sync.publish("event.updated", game)  # the older version, late
    await sync.settle()
    assert (await sync.remote(connected, user, password))[str(game.event_id)]["summary"] == "Kick-off 20:00"
    assert len(puts(sync, connected)) == 2


async def test_a_filter_change_and_a_deleted_event_remove_what_is_no_longer_selected(sync: SyncHarness) -> None:
    cal = m.calendar(uuid.uuid4())
    tag_a, tag_b = m.tag(cal, "A"), m.tag(cal, "B")
    a, b = m.event(cal, "A game", 1, tag_ids=[tag_a.tag_id]), m.event(cal, "B game", 2, tag_ids=[tag_b.tag_id])
    c = m.event(cal, "Another A", 3, tag_ids=[tag_a.tag_id])
    subscription, connected, user, password = await pushed_subscription(sync, cal)
    for kind, data in [("calendar.created", cal), *[("event.created", e) for e in (a, b, c)]]:
        await sync.publish(kind, data)
    await sync.publish("subscription.created", subscription)
    await sync.settle()
    assert len(await sync.remote(connected, user, password)) == 3

    narrowed = subscription.model_copy(update={"calendar_tags": m.tags_of(tag_a), "version": 2})
    await sync.publish("subscription.updated", narrowed)
    await sync.publish("event.deleted", c.model_copy(update={"deleted": True, "sequence": 2}))
    await sync.settle()
    assert set(await sync.remote(connected, user, password)) == {str(a.event_id)}
    assert len(sync.radicale.requests("DELETE", connected.calendar_url.split("/", 3)[3])) == 2


async def test_a_deactivated_subscription_is_no_longer_pushed_and_its_calendar_is_left_alone(
    sync: SyncHarness,
) -> None:
    cal = m.calendar(uuid.uuid4())
    game = m.event(cal, "Game", 1)
    subscription, connected, user, password = await pushed_subscription(sync, cal)
    for kind, data in (("calendar.created", cal), ("event.created", game), ("subscription.created", subscription)):
        await sync.publish(kind, data)
    await sync.settle()
    deactivated = subscription.model_copy(
        update={"active": False, "deactivated_at": m.BASE, "version": 2, "action_type": "DeactivatedById"}
    )
    await sync.publish("subscription.deactivated", deactivated)
    await sync.settle()
    await sync.publish("event.updated", game.model_copy(update={"title": "Changed", "sequence": 2}))
    await sync.publish("event.created", m.event(cal, "New game", 4))
    await sync.settle()
    remote = await sync.remote(connected, user, password)
    assert {e["summary"] for e in remote.values()} == {"Game"}
    assert len(puts(sync, connected)) == 1
    assert sync.radicale.requests("DELETE", connected.calendar_url.split("/", 3)[3]) == []


async def test_manual_events_in_either_message_shape_reach_only_their_own_subscription(sync: SyncHarness) -> None:
    cal = m.calendar(uuid.uuid4())
    mine, connected, user, password = await pushed_subscription(sync, cal)
    other, other_connected, other_user, other_password = await pushed_subscription(sync, cal)
    in_message = m.event(cal, "Manual, old shape", 5, subscription_ids=[mine.subscription_id])
    as_event = m.event(cal, "Manual, new shape", 6, subscription_ids=[mine.subscription_id])
    await sync.publish("calendar.created", cal)
    await sync.publish("subscription.created", mine.model_copy(update={"events": [in_message]}))
    await sync.publish("subscription.created", other)
    await sync.publish("event.created", as_event)
    await sync.settle()
    assert {e["summary"] for e in (await sync.remote(connected, user, password)).values()} == {
        "Manual, old shape",
        "Manual, new shape",
    }
    assert await sync.remote(other_connected, other_user, other_password) == {}
    # The old shape lists every manual event: one left out is removed.
    await sync.publish("subscription.updated", mine.model_copy(update={"events": [], "version": 2}))
    await sync.settle()
    assert {e["summary"] for e in (await sync.remote(connected, user, password)).values()} == {"Manual, new shape"}


async def test_refused_credentials_stop_the_subscription_and_ask_ingest_to_deactivate_it(sync: SyncHarness) -> None:
    cal = m.calendar(uuid.uuid4())
    subscription, _connected, user, _password = await pushed_subscription(sync, cal)
    await sync.publish("calendar.created", cal)
    await sync.publish("subscription.created", subscription)
    await sync.settle()
    # The subscriber changes their app password on the server.
    lines = [line for line in sync.radicale.users_path.read_text().splitlines() if not line.startswith(f"{user}:")]
    sync.radicale.users_path.write_text("\n".join([*lines, f"{user}:changed"]) + "\n")
    await sync.publish("event.created", m.event(cal, "Unreachable", 1))
    await sync.settle()
    async with sync.pool.acquire() as conn:
        target = await conn.fetchrow(
            "SELECT state, reason FROM sync.targets WHERE subscription_id = $1", subscription.subscription_id
        )
        stopped = await conn.fetch("SELECT routing_key, body FROM sync.outbox WHERE routing_key = 'push.stopped'")
    assert target["state"] == "stopped" and "refused the stored credentials" in target["reason"]
    assert len(stopped) == 1 and str(subscription.subscription_id).encode() in stopped[0]["body"]


async def test_a_push_whose_record_was_lost_overwrites_the_event_instead_of_duplicating_it(sync: SyncHarness) -> None:
    cal = m.calendar(uuid.uuid4())
    games = [m.event(cal, f"Game {i}", i) for i in range(1, 4)]
    subscription, connected, user, password = await pushed_subscription(sync, cal)
    for kind, data in [("calendar.created", cal), *[("event.created", g) for g in games]]:
        await sync.publish(kind, data)
    await sync.publish("subscription.created", subscription)
    await sync.settle()
    # As if the worker died after the PUTs and before recording them.
    async with sync.pool.acquire() as conn:
        await conn.execute("DELETE FROM sync.pushed WHERE subscription_id = $1", subscription.subscription_id)
        await conn.execute("INSERT INTO sync.push_queue (subscription_id) VALUES ($1)", subscription.subscription_id)
    await sync.engine.drain()
    remote = await sync.remote(connected, user, password)
    assert sorted(remote) == sorted(str(g.event_id) for g in games)
    async with sync.pool.acquire() as conn:
        recorded = await conn.fetchval(
            "SELECT count(*) FROM sync.pushed WHERE subscription_id = $1", subscription.subscription_id
        )
    assert recorded == 3


async def test_a_rate_limited_remote_user_waits_without_holding_back_the_others(sync: SyncHarness) -> None:
    proxy = await DavProxy(sync.radicale.url).start()
    try:
        cal = m.calendar(uuid.uuid4())
        slow, slow_connected, slow_user, _ = await pushed_subscription(sync, cal, proxy.url)
        fast, fast_connected, fast_user, fast_password = await pushed_subscription(sync, cal, proxy.url)
        proxy.limited_users.add(slow_user)
        for kind, data in (("calendar.created", cal), ("event.created", m.event(cal, "Game", 1))):
            await sync.publish(kind, data)
        await sync.publish("subscription.created", slow)
        await sync.publish("subscription.created", fast)

        async def fast_has_it() -> bool:
            return len(await sync.remote(fast_connected, fast_user, fast_password)) == 1

        async def slow_is_blocked() -> bool:
            async with sync.pool.acquire() as conn:
                return bool(
                    await conn.fetchval(
                        "SELECT blocked_until IS NOT NULL FROM sync.connections WHERE connection_id = $1",
                        slow_connected.connection_id,  # type: ignore[attr-defined]
                    )
                )

        await sync.wait_for(fast_has_it)
        await sync.wait_for(slow_is_blocked)
        async with sync.pool.acquire() as conn:
            blocked = await conn.fetchval(
                "SELECT blocked_until - now() FROM sync.connections WHERE connection_id = $1",
                slow_connected.connection_id,  # type: ignore[attr-defined]
            )
            waiting = await conn.fetchval(
                "SELECT due_at > now() + interval '20 seconds' FROM sync.push_queue WHERE subscription_id = $1",
                slow.subscription_id,
            )
        assert proxy.refused >= 1
        assert blocked is not None and blocked.total_seconds() > 20  # Retry-After: 30 is honoured
        assert waiting is True
    finally:
        await proxy.stop()


async def test_a_fan_out_to_many_subscribers_is_spread_over_the_bounded_pool(sync: SyncHarness) -> None:
    proxy = await DavProxy(sync.radicale.url).start()
    try:
        cal = m.calendar(uuid.uuid4())
        await sync.publish("calendar.created", cal)
        subscribers = [await pushed_subscription(sync, cal, proxy.url) for _ in range(12)]
        for subscription, *_ in subscribers:
            await sync.publish("subscription.created", subscription)
        await sync.settle()
        proxy.max_in_flight = 0
        await sync.publish("event.created", m.event(cal, "For everyone", 1))
        await sync.settle(timeout=30)
        for _subscription, connected, user, password in subscribers:
            assert len(await sync.remote(connected, user, password)) == 1  # type: ignore[arg-type]
        assert 1 <= proxy.max_in_flight <= sync.engine._settings.concurrency
    finally:
        await proxy.stop()


def test_the_provider_registered_for_caldav_is_the_real_one(sync: SyncHarness) -> None:
    from services.sync.app import PROVIDERS

    assert isinstance(sync.client.app[PROVIDERS]["caldav"], CalDavProvider)


async def test_subscribing_again_with_another_caldav_account_pushes_everything_there(sync: SyncHarness) -> None:
    cal = m.calendar(uuid.uuid4())
    game = m.event(cal, "Game", 1)
    subscription, first, first_user, first_password = await pushed_subscription(sync, cal)
    for kind, data in (("calendar.created", cal), ("event.created", game), ("subscription.created", subscription)):
        await sync.publish(kind, data)
    await sync.settle()
    second, second_user, second_password = await sync.connect(cal.account_id)
    moved = subscription.model_copy(update={"sync_connection_id": second.connection_id, "version": 2})
    await sync.publish("subscription.updated", moved)
    await sync.settle()
    assert set(await sync.remote(second, second_user, second_password)) == {str(game.event_id)}
    # The first calendar is the subscriber's own now: left as it was.
    assert set(await sync.remote(first, first_user, first_password)) == {str(game.event_id)}  # type: ignore[arg-type]


async def test_a_reconciliation_that_outlasts_its_lease_keeps_its_claim(sync: SyncHarness) -> None:
    from services.sync.adapters import repository as repo

    proxy = await DavProxy(sync.radicale.url).start()
    try:
        cal = m.calendar(uuid.uuid4())
        subscription, connected, user, password = await pushed_subscription(sync, cal, proxy.url)
        await sync.publish("calendar.created", cal)
        for i in range(1, 6):
            await sync.publish("event.created", m.event(cal, f"Slow {i}", i))
        proxy.delay = 0.5  # five PUTs: 2.5 s, over the 1.5 s lease
        object.__setattr__(sync.engine._settings, "lease", 1.5)
        await sync.publish("subscription.created", subscription)

        async def claimed() -> bool:
            async with sync.pool.acquire() as conn:
                return bool(
                    await conn.fetchval(
                        "SELECT claimed_until > now() FROM sync.push_queue WHERE subscription_id = $1",
                        subscription.subscription_id,
                    )
                )

        await sync.wait_for(claimed)
        stolen = []
        for _ in range(12):  # 2.4 s: past the first lease
            async with sync.pool.acquire() as conn:
                stolen += await repo.claim_due(conn, 10, 1.5)
            await asyncio.sleep(0.2)
        assert stolen == []
        await sync.settle()
        assert len(await sync.remote(connected, user, password)) == 5  # type: ignore[arg-type]
        assert len(puts(sync, connected)) == 5
    finally:
        await proxy.stop()


async def test_a_renamed_calendar_is_renamed_in_the_subscribers_calendar_too(sync: SyncHarness) -> None:
    from tests.tools.radicale_server import calendar_name

    cal = m.calendar(uuid.uuid4(), name="Acme Games")
    subscription, connected, user, password = await pushed_subscription(sync, cal)
    await sync.publish("calendar.created", cal)
    await sync.publish("subscription.created", subscription)
    await sync.settle()
    await sync.publish("calendar.updated", cal.model_copy(update={"name": "Acme Games 2027", "version": 2}))
    await sync.settle()
    url = connected.calendar_url  # type: ignore[attr-defined]
    assert await asyncio.to_thread(calendar_name, url, user, password) == "Acme Games 2027"


async def test_a_server_error_is_retried_with_backoff_until_the_server_is_back(sync: SyncHarness) -> None:
    proxy = await DavProxy(sync.radicale.url).start()
    try:
        cal = m.calendar(uuid.uuid4())
        subscription, connected, user, password = await pushed_subscription(sync, cal, proxy.url)
        proxy.failing_users.add(user)
        for kind, data in (("calendar.created", cal), ("event.created", m.event(cal, "Game", 1))):
            await sync.publish(kind, data)
        await sync.publish("subscription.created", subscription)

        async def failed_twice() -> bool:
            async with sync.pool.acquire() as conn:
                failures = await conn.fetchval(
                    "SELECT failures FROM sync.targets WHERE subscription_id = $1", subscription.subscription_id
                )
            return bool(failures and failures >= 2)

        await sync.wait_for(failed_twice)  # retried, not given up: the target stays active
        assert proxy.failed >= 2
        proxy.failing_users.clear()
        await sync.settle(timeout=30)
        assert len(await sync.remote(connected, user, password)) == 1  # type: ignore[arg-type]
        async with sync.pool.acquire() as conn:
            target = await conn.fetchrow(
                "SELECT state, failures FROM sync.targets WHERE subscription_id = $1", subscription.subscription_id
            )
        assert target["state"] == "active" and target["failures"] == 0
    finally:
        await proxy.stop()


async def test_a_calendar_the_subscriber_deleted_stops_the_pushes_and_asks_for_deactivation(
    sync: SyncHarness,
) -> None:
    import caldav

    cal = m.calendar(uuid.uuid4())
    subscription, connected, user, password = await pushed_subscription(sync, cal)
    for kind, data in (("calendar.created", cal), ("event.created", m.event(cal, "Game", 1))):
        await sync.publish(kind, data)
    await sync.publish("subscription.created", subscription)
    await sync.settle()
    url = connected.calendar_url  # type: ignore[attr-defined]

    def delete_calendar() -> None:
        with caldav.DAVClient(url=url, username=user, password=password) as client:
            client.calendar(url=url).delete()

    await asyncio.to_thread(delete_calendar)
    await sync.publish("event.created", m.event(cal, "After the deletion", 2))
    await sync.settle()
    async with sync.pool.acquire() as conn:
        target = await conn.fetchrow(
            "SELECT state, reason FROM sync.targets WHERE subscription_id = $1", subscription.subscription_id
        )
        stopped = await conn.fetch("SELECT body FROM sync.outbox WHERE routing_key = 'push.stopped'")
    assert target["state"] == "stopped" and target["reason"].startswith("CalendarGone: ")
    (message,) = stopped
    assert b'"code":"CalendarGone"' in message["body"].replace(b" ", b"")
    puts_after = len(puts(sync, connected))
    await sync.publish("event.created", m.event(cal, "Later still", 3))
    await sync.settle()
    assert len(puts(sync, connected)) == puts_after  # stopped for good: nothing more is tried


async def test_a_stopping_worker_gives_back_the_claims_it_cut_so_the_next_takes_them_at_once(
    sync: SyncHarness,
) -> None:
    proxy = await DavProxy(sync.radicale.url).start()
    try:
        cal = m.calendar(uuid.uuid4())
        subscription, *_ = await pushed_subscription(sync, cal, proxy.url)
        await sync.publish("calendar.created", cal)
        await sync.publish("event.created", m.event(cal, "Stuck", 1))
        proxy.delay = 5.0  # the push cannot finish within the grace below
        await sync.publish("subscription.created", subscription)

        async def claim() -> object:
            async with sync.pool.acquire() as conn:
                return await conn.fetchval(
                    "SELECT claimed_until > now() FROM sync.push_queue WHERE subscription_id = $1",
                    subscription.subscription_id,
                )

        await sync.wait_for(claim)
        await sync.engine.stop(grace=0.5)
        async with sync.pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT claimed_until FROM sync.push_queue WHERE subscription_id = $1", subscription.subscription_id
            )
        assert row is not None  # still to do
        assert row["claimed_until"] is None  # and due for the next worker now, not after the lease
    finally:
        await proxy.stop()
