"""The calendar page cache: one fetch for many visitors, stale pages served while one refresh runs."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest

from services.web.adapters.ingest import IngestClient
from services.web.domain.devices import Device
from services.web.domain.page import CalendarPage
from services.web.services import VISIT_MARK, CalendarPages
from services.web.settings import WebSettings
from shared.errors import NotFound

IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) Mobile/15E148"
WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/124.0"


class FakeIngest(IngestClient):
    """ingest's answers from memory, counting calls; `gate` holds every call until it is set."""

    def __init__(self) -> None:
        self.calls = 0
        self.name = "League"
        self.exists = True
        self.gate = asyncio.Event()
        self.gate.set()

    async def calendar(self, account_code: str, calendar_code: str) -> dict[str, Any]:
        self.calls += 1
        await self.gate.wait()
        if not self.exists:
            raise NotFound("calendar not found")
        return {"code": calendar_code, "name": self.name, "version": 1}

    async def tags(self, account_code: str, calendar_code: str) -> list[dict[str, Any]]:
        return []

    async def events(self, account_code: str, calendar_code: str) -> list[dict[str, Any]]:
        return []


def render(page: CalendarPage, device: Device, desktop: bool) -> str:
    return f"<h1>{page.name}</h1><form>{VISIT_MARK}</form><p>{device.value} {desktop}</p>"


def pages(ingest: FakeIngest, ttl: float = 30.0) -> CalendarPages:
    return CalendarPages(ingest, dataclasses.replace(WebSettings(), page_ttl=ttl), render)


async def test_many_visitors_at_once_cost_one_fetch_and_each_device_gets_its_variant() -> None:
    ingest = FakeIngest()
    ingest.gate.clear()
    cache = pages(ingest)
    waiting = [asyncio.create_task(cache.html("acme", "league", ua)) for ua in [IPHONE, WINDOWS] * 20]
    await asyncio.sleep(0.01)
    ingest.gate.set()
    answers = await asyncio.gather(*waiting)
    assert ingest.calls == 1
    assert answers[0] == (b"<h1>League</h1><form>", b"</form><p>apple False</p>")
    assert answers[1] == (b"<h1>League</h1><form>", b"</form><p>windows True</p>")
    assert await cache.html("ACME", "LEAGUE", IPHONE) is answers[0]  # codes are case-insensitive
    assert ingest.calls == 1


async def test_an_expired_page_is_served_stale_while_one_refresh_fetches_the_new_one() -> None:
    ingest = FakeIngest()
    cache = pages(ingest, ttl=0.05)
    assert (await cache.page("acme", "league")).name == "League"
    ingest.name = "Renamed"
    await asyncio.sleep(0.06)
    assert (await cache.page("acme", "league")).name == "League"  # stale, refresh started
    assert (await cache.page("acme", "league")).name == "League"
    await asyncio.sleep(0.01)
    assert (await cache.page("acme", "league")).name == "Renamed"
    assert ingest.calls == 2
    await cache.close()


async def test_a_refresh_that_finds_the_same_page_keeps_its_rendered_html() -> None:
    ingest = FakeIngest()
    cache = pages(ingest, ttl=0.02)
    first = await cache.html("acme", "league", IPHONE)
    await asyncio.sleep(0.03)
    await cache.page("acme", "league")  # stale: starts the refresh
    await asyncio.sleep(0.01)
    assert ingest.calls == 2
    assert await cache.html("acme", "league", IPHONE) is first
    ingest.name = "Renamed"
    await asyncio.sleep(0.03)
    await cache.page("acme", "league")
    await asyncio.sleep(0.01)
    assert (await cache.html("acme", "league", IPHONE))[0] == b"<h1>Renamed</h1><form>"


async def test_an_unknown_calendar_is_a_not_found_remembered_briefly() -> None:
    ingest = FakeIngest()
    ingest.exists = False
    cache = pages(ingest, ttl=0.05)
    for _ in range(3):
        with pytest.raises(NotFound):
            await cache.html("acme", "nope", IPHONE)
    assert ingest.calls == 1
    ingest.exists = True
    await asyncio.sleep(0.06)
    assert (await cache.page("acme", "nope")).name == "League"


async def test_a_failed_fetch_fails_every_waiting_visitor_and_the_next_one_tries_again() -> None:
    ingest = FakeIngest()
    cache = pages(ingest)
    original = ingest.calendar

    async def broken(account_code: str, calendar_code: str) -> dict[str, Any]:
        ingest.calls += 1
        await asyncio.sleep(0.01)
        raise RuntimeError("ingest down")

    ingest.calendar = broken  # type: ignore[method-assign]
    results = await asyncio.gather(*(cache.page("acme", "league") for _ in range(5)), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results) and ingest.calls == 1
    ingest.calendar = original  # type: ignore[method-assign]
    assert (await cache.page("acme", "league")).name == "League"
