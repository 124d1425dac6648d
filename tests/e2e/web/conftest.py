"""auth, ingest, feed, webhook and web as processes; the web service's platform client (scope
calendar-pages) made with the admin CLI; a merchant's calendar with tags and events made over HTTP."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
import aiohttp
import pytest

from services.webhook.messaging.topology import delete_topology
from services.webhook.settings import parse_retry_schedule
from shared.amqp import Names
from shared.testing import Stack

WEBHOOK_ENV = {"KALENDS_WEBHOOK_RETRY_SCHEDULE": "0,1,2,3", "KALENDS_WEBHOOK_TIMEOUT": "2"}


@dataclass
class Shop:
    """A merchant account talking to ingest (and webhook) with its own bearer token."""

    account: dict[str, Any]
    session: aiohttp.ClientSession  # carries the merchant's token
    stack: Stack

    @property
    def code(self) -> str:
        return str(self.account["accountCode"])

    async def call(self, method: str, service: str, path: str, body: Any = None, want: int = 200) -> Any:
        async with self.session.request(method, self.stack.url(service) + path, json=body) as response:
            payload = await response.json() if response.content_type == "application/json" else await response.text()
            assert response.status == want, (method, path, payload)
            return payload


@dataclass
class Calendar:
    shop: Shop
    code: str
    tags: dict[str, str]  # name -> id
    events: dict[str, str]  # title -> tag name

    @property
    def page_path(self) -> str:
        return f"/c/{self.shop.code}/{self.code}"


@pytest.fixture(scope="module")
async def web_stack(stack: Stack, amqp_url: str, e2e_names: Names) -> AsyncIterator[Stack]:
    await stack.start("auth")
    await stack.start("ingest")
    await stack.start("feed")
    await stack.start("webhook", env=WEBHOOK_ENV)
    await stack.start_web(
        {
            "KALENDS_PUBLIC_API_URL": stack.url("ingest"),
            "KALENDS_PUBLIC_WEB_URL": stack.url("web"),
            "KALENDS_WEB_PAGE_TTL": "1",
        }
    )
    yield stack
    stack.processes["webhook"].stop()
    connection = await aio_pika.connect(amqp_url)
    try:
        await delete_topology(await connection.channel(), e2e_names, parse_retry_schedule("0,1,2,3"))
    finally:
        await connection.close()


@pytest.fixture(scope="module")
async def shop(web_stack: Stack) -> AsyncIterator[Shop]:
    account = await web_stack.new_account(name="Acme Sports")
    token = await web_stack.token(account)
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:
        yield Shop(account, session, web_stack)


async def make_calendar(shop: Shop, *, events_per_tag: int = 2, **fields: Any) -> Calendar:
    """A calendar with two teams' events (upcoming), each event tagged with its team."""
    code = f"cal{uuid.uuid4().hex[:8]}"
    body = {"code": code, "name": "Acme League", "description": "Every match of the season.", "color": "#aa3311"}
    await shop.call("POST", "ingest", f"/v1/calendars/{shop.code}", {**body, **fields}, want=201)
    tags: dict[str, str] = {}
    for name in ("Lions", "Tigers"):
        tag = await shop.call("POST", "ingest", f"/v1/calendars/{shop.code}/{code}/tags", {"name": name}, want=201)
        tags[name] = tag["id"]
    events: dict[str, str] = {}
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    for i in range(events_per_tag):
        for name, tag_id in tags.items():
            title = f"{name} match {i + 1}"
            when = start + timedelta(days=i, hours=2 if name == "Tigers" else 0)
            await shop.call(
                "POST",
                "ingest",
                f"/v1/calendars/{shop.code}/{code}/events",
                {
                    "title": title,
                    "start": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "end": (when + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "tags": [{"internalId": tag_id}],
                },
                want=201,
            )
            events[title] = name
    return Calendar(shop, code, tags, events)
