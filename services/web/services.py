"""The calendar pages' use-cases: show a calendar (cached), subscribe a visitor (through ingest).

What is public is cached: a page's data (calendar, tags, events) for `page_ttl` seconds, and its HTML
per device kind, so a popular page costs a dictionary lookup and a join. An expired page is served
as it was while one task fetches it again (stale-while-revalidate); only a page never seen, or far
past its time, waits for ingest. Whatever a visitor brings (UTM parameters, referrer) is not cached:
it is spliced into the cached HTML at one marked place.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from services.web.adapters.ingest import IngestClient
from services.web.domain.devices import App, Device, device_of, is_mobile
from services.web.domain.links import app_link
from services.web.domain.page import CalendarPage, calendar_page
from services.web.domain.subscribe import SubscribeChoice, subscribe_body
from services.web.settings import WebSettings
from shared.errors import ApiError, NotFound
from shared.logging import get_logger

log = get_logger(__name__)

MAX_PAGES = 10_000  # calendars whose page is kept in memory per process
STALE_FACTOR = 20  # an expired page is served stale for up to this many TTLs while it refreshes
NOT_FOUND_TTL = 5.0
VISIT_MARK = "<!--kalends:visit-->"

# Renders a page variant to HTML with VISIT_MARK where the visit's hidden fields go.
PageRenderer = Callable[[CalendarPage, Device, bool], str]


@dataclass
class _Entry:
    page: CalendarPage | None  # None: the calendar does not exist
    fetched_at: float
    html: dict[tuple[Device, bool], tuple[bytes, bytes]] = field(default_factory=dict)
    refreshing: asyncio.Task[None] | None = None


@dataclass(frozen=True)
class Confirmation:
    page: CalendarPage
    app: App
    subscription_id: str
    feed_link: str  # where the device is sent for `app`
    feed_url: str  # the http(s) address (copy it, download it)
    unsubscribe_url: str
    redirect: str | None = None  # Google's consent screen, when sync runs the Google flow


class CalendarPages:
    def __init__(self, ingest: IngestClient, settings: WebSettings, render: PageRenderer) -> None:
        self._ingest = ingest
        self._settings = settings
        self._render = render
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._loading: dict[tuple[str, str], asyncio.Future[_Entry]] = {}

    # --- reading -------------------------------------------------------------------------------

    async def _fetch(self, account_code: str, code: str) -> _Entry:
        try:
            calendar = await self._ingest.calendar(account_code, code)
            tags, events = await asyncio.gather(
                self._ingest.tags(account_code, code), self._ingest.events(account_code, code)
            )
        except NotFound:
            return _Entry(None, time.monotonic())
        page = calendar_page(account_code, calendar, tags, events, datetime.now(UTC))
        return _Entry(page, time.monotonic())

    async def _load(self, key: tuple[str, str], account_code: str, code: str) -> _Entry:
        """One fetch per key at a time, however many requests wait for it."""
        waiting = self._loading.get(key)
        if waiting is not None:
            return await asyncio.shield(waiting)
        future: asyncio.Future[_Entry] = asyncio.get_running_loop().create_future()
        self._loading[key] = future
        try:
            entry = await self._fetch(account_code, code)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it, nobody logs it as lost
            raise
        finally:
            self._loading.pop(key, None)
        previous = self._entries.get(key)
        if previous is not None and previous.page == entry.page:
            entry.html = previous.html  # nothing changed: the rendered variants still hold
        if len(self._entries) >= MAX_PAGES and key not in self._entries:
            self._entries.pop(next(iter(self._entries)))
        self._entries[key] = entry
        future.set_result(entry)
        return entry

    def _refresh_later(self, key: tuple[str, str], entry: _Entry, account_code: str, code: str) -> None:
        async def refresh() -> None:
            try:
                await self._load(key, account_code, code)
            except ApiError as exc:
                entry.refreshing = None  # the next request past the TTL tries again
                log.warning("web.page_refresh_failed", calendar=code, error=str(exc))

        entry.refreshing = asyncio.get_running_loop().create_task(refresh())

    async def _entry(self, account_code: str, code: str) -> _Entry:
        key = (account_code.lower(), code.lower())
        entry = self._entries.get(key)
        now = time.monotonic()
        if entry is None:
            return await self._load(key, account_code, code)
        ttl = self._settings.page_ttl if entry.page is not None else min(NOT_FOUND_TTL, self._settings.page_ttl)
        age = now - entry.fetched_at
        if age <= ttl:
            return entry
        if entry.page is None or age > ttl * STALE_FACTOR:
            return await self._load(key, account_code, code)
        if entry.refreshing is None:
            self._refresh_later(key, entry, account_code, code)
        return entry

    async def page(self, account_code: str, code: str) -> CalendarPage:
        entry = await self._entry(account_code, code)
        if entry.page is None:
            raise NotFound(f"there is no calendar '{code[:64]}' of '{account_code[:64]}'", code="CalendarNotFound")
        return entry.page

    async def html(self, account_code: str, code: str, user_agent: str | None) -> tuple[bytes, bytes]:
        """The page's HTML for this device, in two halves around the visit's hidden fields."""
        entry = await self._entry(account_code, code)
        if entry.page is None:
            raise NotFound(f"there is no calendar '{code[:64]}' of '{account_code[:64]}'", code="CalendarNotFound")
        variant = (device_of(user_agent), not is_mobile(user_agent))
        halves = entry.html.get(variant)
        if halves is None:
            before, _, after = self._render(entry.page, *variant).partition(VISIT_MARK)
            halves = entry.html[variant] = (before.encode(), after.encode())
        return halves

    async def close(self) -> None:
        for entry in self._entries.values():
            if entry.refreshing is not None and not entry.refreshing.done():
                entry.refreshing.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await entry.refreshing

    # --- subscribing ---------------------------------------------------------------------------

    async def subscribe(
        self,
        page: CalendarPage,
        choice: SubscribeChoice,
        *,
        user_agent: str | None,
        ip_address: str | None,
        google_return: str,
    ) -> Confirmation:
        # A protected calendar's feed has a username: a page visitor gets a random one of their own.
        subscriber = f"page-{secrets.token_urlsafe(12)}" if page.protected else None
        body = subscribe_body(choice, user_agent=user_agent, ip_address=ip_address, subscriber_id=subscriber)
        if choice.app is App.GOOGLE:
            answer = await self._google(page, body, google_return)
        else:
            answer = await self._ingest.subscribe(page.account_code, page.code, body)
        redirect = answer.get("redirectTo") if answer.get("subscriptionType") == "google" else None
        feed = str(answer.get("subscriptionUrl") or "")
        public_feed = self._settings.platform.public_feed_url
        log.info("web.subscribed", calendar=page.code, app=choice.app.value, subscription=answer.get("subscriptionId"))
        return Confirmation(
            page=page,
            app=choice.app,
            subscription_id=str(answer["subscriptionId"]),
            feed_link=app_link(choice.app, feed, public_feed, page.name) if feed else "",
            feed_url=app_link(App.COPY, feed, public_feed, page.name) if feed else "",
            unsubscribe_url=f"{self._settings.public_api_url}/v1/unsubscribe/{answer['subscriptionId']}",
            redirect=str(redirect) if redirect else None,
        )

    async def _google(self, page: CalendarPage, body: dict[str, Any], google_return: str) -> dict[str, Any]:
        """sync's consent flow when it runs Google; otherwise a webcal feed for Google's add-by-URL page."""
        try:
            return await self._ingest.subscribe(page.account_code, page.code, {**body, "redirectTo": google_return})
        except ApiError as exc:
            if exc.status != 409:
                raise
        return await self._ingest.subscribe(page.account_code, page.code, {**body, "subscriptionMethod": "webcal"})
