"""The feed routes' lean path and sectioned serving, over HTTP against the real projection."""

from __future__ import annotations

import asyncio
import gzip
import shutil
import uuid

import aiohttp
import pytest

from services.feed.app_keys import FEEDS
from tests.integration.feed import messages as m
from tests.integration.feed.conftest import FeedHarness
from tests.integration.feed.test_feed_projection import has, publish_calendar


async def test_feed_answers_carry_cors_and_request_ids_and_are_counted_not_logged(feed: FeedHarness) -> None:
    cal = await publish_calendar(feed)
    await feed.publish("event.created", m.event(cal, "Kick-off"))
    sub = m.subscription(cal)
    await feed.publish("subscription.created", sub)
    path = f"/v1/webcal/{sub.subscription_id}"
    await feed.wait_for(path, has("Kick-off"))

    mine = await feed.client.get(path, headers={"X-Request-Id": "poll-42"})
    assert mine.status == 200 and mine.headers["X-Request-Id"] == "poll-42"
    assert mine.headers["Access-Control-Allow-Origin"] == "*"
    etag = mine.headers["ETag"]
    first, second = await feed.client.get(path), await feed.client.get(path, headers={"If-None-Match": etag})
    assert second.status == 304 and second.headers["Access-Control-Allow-Origin"] == "*"
    assert first.headers["X-Request-Id"] and first.headers["X-Request-Id"] != second.headers["X-Request-Id"]

    missing = await feed.client.get(f"/v1/webcal/{uuid.uuid4()}")
    assert missing.status == 404 and missing.headers["Access-Control-Allow-Origin"] == "*"
    assert (await missing.json())["errors"][0]["code"] == "SubscriptionNotFound"
    not_an_id = await feed.client.get("/v1/webcal/not-a-uuid")
    assert not_an_id.status == 404 and (await not_an_id.json())["errors"][0]["code"] == "SubscriptionNotFound"

    metrics = await (await feed.client.get("/metrics")).text()
    assert 'feed_http_requests_total{route="subscription_feed_get",status="304"}' in metrics
    assert 'feed_http_requests_total{route="subscription_feed_get",status="404"}' in metrics


async def test_conditional_requests_follow_rfc_9110_on_the_lean_path(feed: FeedHarness) -> None:
    cal = await publish_calendar(feed)
    await feed.publish("event.created", m.event(cal, "Derby"))
    sub = m.subscription(cal)
    await feed.publish("subscription.created", sub)
    path = f"/v1/webcal/{sub.subscription_id}"
    await feed.wait_for(path, has("Derby"))
    full = await feed.client.get(path)
    etag, last_modified = full.headers["ETag"], full.headers["Last-Modified"]

    async def status(**headers: str) -> int:
        return (await feed.client.get(path, headers=headers)).status

    assert await status(**{"If-None-Match": f'"other", W/{etag}'}) == 304  # a list, a weak tag
    assert await status(**{"If-None-Match": "*"}) == 304
    assert await status(**{"If-None-Match": '"other"'}) == 200
    # If-None-Match wins over If-Modified-Since (RFC 9110 13.1.3).
    assert await status(**{"If-None-Match": '"other"', "If-Modified-Since": last_modified}) == 200
    assert await status(**{"If-Modified-Since": last_modified}) == 304
    assert await status(**{"If-Modified-Since": "Thu, 01 Jan 2015 00:00:00 GMT"}) == 200
    assert await status(**{"If-Modified-Since": "not a date"}) == 200

    zipped = await feed.client.get(path, headers={"Accept-Encoding": "gzip"}, auto_decompress=False)
    head = await feed.client.head(path, headers={"Accept-Encoding": "gzip"})
    body = await zipped.read()
    assert head.status == 200 and await head.read() == b""
    assert int(head.headers["Content-Length"]) == len(body) and head.headers["ETag"] == zipped.headers["ETag"]
    plain_head = await feed.client.head(path, headers={"Accept-Encoding": "identity"})
    assert int(plain_head.headers["Content-Length"]) == len(await full.read())
    assert await status(**{"If-None-Match": zipped.headers["ETag"], "Accept-Encoding": "gzip"}) == 304


async def test_every_client_decodes_the_gzip_to_the_identity_bytes(feed: FeedHarness) -> None:
    cal = await publish_calendar(feed)
    for day in range(1, 29):
        await feed.publish("event.created", m.event(cal, f"Game {day}", day=day))
    sub = m.subscription(cal)
    await feed.publish("subscription.created", sub)
    path = f"/v1/webcal/{sub.subscription_id}"
    await feed.wait_for(path, has(*(f"Game {day}" for day in range(1, 29))))
    body = await (await feed.client.get(path, headers={"Accept-Encoding": "identity"})).read()

    zipped = await (await feed.client.get(path, headers={"Accept-Encoding": "gzip"}, auto_decompress=False)).read()
    assert gzip.decompress(zipped) == body
    url = str(feed.client.make_url(path))
    async with aiohttp.ClientSession() as session, session.get(url, headers={"Accept-Encoding": "gzip"}) as response:
        assert response.headers["Content-Encoding"] == "gzip"
        decoded = await response.read()
    assert decoded == body
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    # The server runs on this loop: curl must not block it.
    curl = await asyncio.create_subprocess_exec("curl", "-sf", "--compressed", url, stdout=asyncio.subprocess.PIPE)
    out, _ = await asyncio.wait_for(curl.communicate(), 30)
    assert curl.returncode == 0 and out == body


async def test_an_event_change_rebuilds_only_its_section_and_changes_only_the_etags_it_touches(
    feed: FeedHarness,
) -> None:
    cal = await publish_calendar(feed)
    home, away = m.tag(cal, "Home"), m.tag(cal, "Away")
    await feed.publish("tag.created", home)
    await feed.publish("tag.created", away)
    home_game = m.event(cal, "Home game", tag_ids=[home.tag_id])
    await feed.publish("event.created", home_game)
    await feed.publish("event.created", m.event(cal, "Away game", day=2, tag_ids=[away.tag_id]))
    home_fan, away_fan = (
        m.subscription(cal, calendar_tags=m.tags_of(home)),
        m.subscription(cal, calendar_tags=m.tags_of(away)),
    )
    await feed.publish("subscription.created", home_fan)
    await feed.publish("subscription.created", away_fan)
    home_path, away_path = f"/v1/webcal/{home_fan.subscription_id}", f"/v1/webcal/{away_fan.subscription_id}"
    await feed.wait_for(home_path, has("Home game"))
    _, away_body = await feed.wait_for(away_path, has("Away game"))
    home_etag = (await feed.client.get(home_path)).headers["ETag"]
    away_etag = (await feed.client.get(away_path)).headers["ETag"]
    service = feed.client.app[FEEDS]
    away_section = service.current(str(away_fan.subscription_id)).section  # type: ignore[union-attr]

    moved = home_game.model_copy(update={"title": "Home game, moved", "sequence": 2})
    await feed.publish("event.updated", moved)
    await feed.wait_for(home_path, has("Home game, moved"))
    assert (await feed.client.get(home_path, headers={"If-None-Match": home_etag})).status == 200
    # The away feed was rebuilt at the calendar's new version, to the same bytes: same tag, a 304.
    unchanged = await feed.client.get(away_path, headers={"If-None-Match": away_etag})
    assert unchanged.status == 304 and unchanged.headers["ETag"] == away_etag
    assert await (await feed.client.get(away_path)).read() == away_body
    new_away_section = service.current(str(away_fan.subscription_id)).section  # type: ignore[union-attr]
    assert new_away_section.digest == away_section.digest and new_away_section.version > away_section.version


async def test_the_front_door_and_the_router_answer_a_poll_alike(feed: FeedHarness) -> None:
    cal = await publish_calendar(feed)
    await feed.publish("event.created", m.event(cal, "Opening night"))
    sub = m.subscription(cal)
    await feed.publish("subscription.created", sub)
    path = f"/v1/webcal/{sub.subscription_id}"
    await feed.wait_for(path, has("Opening night"))
    # The plain path takes the front (services/feed/api/front.py); a query string or an escaped
    # character sends the same poll through aiohttp's router and the lean middleware.
    escaped = path[:-1] + f"%{ord(path[-1]):02X}"
    for headers in ({}, {"Accept-Encoding": "gzip"}, {"Accept-Encoding": "identity", "X-Request-Id": "same"}):
        answers = [await feed.client.get(p, headers=headers) for p in (path, f"{path}?from=app", escaped)]
        bodies = [await answer.read() for answer in answers]
        assert {answer.status for answer in answers} == {200} and len(set(bodies)) == 1
        for name in ("ETag", "Last-Modified", "Content-Type", "Content-Encoding", "Cache-Control", "Vary"):
            assert len({answer.headers.get(name) for answer in answers}) == 1, name
        assert all(answer.headers["Access-Control-Allow-Origin"] == "*" for answer in answers)
        assert all(answer.headers["X-Request-Id"] for answer in answers)
    etag = answers[0].headers["ETag"]
    for p in (path, f"{path}?from=app"):
        revalidated = await feed.client.get(p, headers={"If-None-Match": etag, "Accept-Encoding": "identity"})
        assert revalidated.status == 304 and revalidated.headers["ETag"] == etag
        assert revalidated.headers["Access-Control-Allow-Origin"] == "*"
    wrong = str(uuid.uuid4())
    for p in (f"/v1/webcal/{wrong}", f"/v1/webcal/{wrong}?from=app"):
        missing = await feed.client.get(p)
        assert missing.status == 404 and (await missing.json())["errors"][0]["code"] == "SubscriptionNotFound"
    head = await feed.client.head(path, headers={"Accept-Encoding": "identity"})
    assert head.status == 200 and int(head.headers["Content-Length"]) == len(bodies[0])
    metrics = await (await feed.client.get("/metrics")).text()
    assert 'feed_http_requests_total{route="subscription_feed_head",status="200"}' in metrics
