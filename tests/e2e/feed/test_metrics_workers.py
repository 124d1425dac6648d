"""The feed service with two processes on one port (its default on two cores): every scrape of
/metrics counts the feed requests both processes served (shared/metrics.py)."""

from __future__ import annotations

import os
import re

import aiohttp
import pytest

from tests.e2e.feed.conftest import Merchant
from tests.e2e.feed.test_feed_e2e import add_event, new_calendar, subscribe

pytestmark = pytest.mark.e2e
COUNT = re.compile(r'^feed_http_requests_total\{route="subscription_feed_get",status="(\d+)"\} (\S+)$', re.MULTILINE)


async def served_count(url: str) -> float:
    """Feed GETs of subscriptions counted in one scrape, on a new connection (either process may answer)."""
    async with aiohttp.ClientSession() as session, session.get(url + "/metrics") as response:
        assert response.status == 200
        return sum(float(value) for _, value in COUNT.findall(await response.text()))


async def test_every_scrape_counts_the_feed_requests_of_both_processes(merchant: Merchant) -> None:
    if (os.cpu_count() or 1) < 2:
        pytest.skip("the feed runs one process per core: this machine has one, so there is nothing to merge")
    cal = await new_calendar(merchant)
    await add_event(merchant, cal, title="Derby", externalId="d1")
    sub = await subscribe(merchant, cal)
    path = f"/v1/webcal/{sub['subscriptionId']}"
    await merchant.feed(path, lambda status, body: status == 200 and b"Derby" in body)
    feed = merchant.stack.url("feed")

    before = {await served_count(feed) for _ in range(6)}
    assert len(before) == 1, f"scrapes disagree before the polls: {before}"
    processes: dict[str, int] = {}
    polls = 0
    while polls < 40 or len(processes) < 2:
        async with aiohttp.ClientSession() as session, session.get(feed + path) as response:
            assert response.status == 200
            # The lean path's request ids are feed-<pid in hex>-<n>: which process answered.
            process = response.headers["X-Request-Id"].split("-")[1]
        processes[process] = processes.get(process, 0) + 1
        polls += 1
        assert polls < 400, f"one process answered every connection: {processes}"

    after = {await served_count(feed) for _ in range(8)}
    assert after == {before.pop() + polls}, f"polls {processes}, scrapes {after}"
