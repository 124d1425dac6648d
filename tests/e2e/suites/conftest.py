"""The whole platform as processes, and a populated account to aim whole-API suites at.

`world` starts every service of SUITE_SERVICES (auth first: the others fetch its keys) and gives
account A a calendar with tags, an event (its attendee invited by mail), a subscription and a webhook
with a delivery, plus a second ("doomed") set that destructive operations may delete; account B has a
calendar of the same code. Mail sends to a local SMTP server (aiosmtpd).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest

from shared.amqp import Names
from shared.testing import (
    Stack,
    create_database,
    delete_prefixed,
    drop_database,
    random_name,
    remember_prefix,
)
from shared.testing_smtp import SmtpServer
from tests.integration.webhook.receiver import Receiver

# Every service with an HTTP API; a new service is one more name here (auth first).
SUITE_SERVICES = ("auth", "ingest", "feed", "webhook", "sync", "mail", "web")
# The services whose secured routes take a bearer token. web's routes are public pages or console pages
# behind a session cookie, whose account comes from the session (never the URL) and whose every read
# and write is a call of these APIs with the session user's token: the tenant sweep covers those calls.
BEARER_SERVICES = tuple(s for s in SUITE_SERVICES if s != "web")
SERVICE_ENV: dict[str, dict[str, str]] = {
    "webhook": {"KALENDS_WEBHOOK_RETRY_SCHEDULE": "0,1", "KALENDS_WEBHOOK_TIMEOUT": "1"},
    "sync": {"KALENDS_SYNC_ALLOW_PRIVATE": "1", "KALENDS_SYNC_TIMEOUT": "2", "KALENDS_SYNC_POLL_INTERVAL": "0.2"},
    "mail": {"KALENDS_MAIL_RETRY_SCHEDULE": "0,1", "KALENDS_SMTP_TIMEOUT": "2"},
}
CALENDAR = "cal-a"
DOOMED = "cal-doomed"
SUBSCRIBER = "subscriber-a"
EVENT = "event-a"


@dataclass
class Account:
    """An account, a fresh-token helper, and the ids of what the suites created in it."""

    stack: Stack
    account: dict[str, Any]
    ids: dict[str, str] = field(default_factory=dict)

    @property
    def code(self) -> str:
        return str(self.account["accountCode"])

    async def token(self) -> str:
        return await self.stack.token(self.account)

    async def call(self, method: str, service: str, path: str, body: Any = None, want: int | None = 200) -> Any:
        headers = {"Authorization": f"Bearer {await self.token()}"}
        async with (
            aiohttp.ClientSession() as session,
            session.request(method, self.stack.url(service) + path, json=body, headers=headers) as response,
        ):
            text = await response.text()
            assert want is None or response.status == want, (method, path, response.status, text)
            return await response.json(content_type=None) if text.strip() else None


@dataclass
class World:
    stack: Stack
    a: Account
    b: Account
    receiver: Receiver


async def _calendar(owner: Account, code: str) -> dict[str, str]:
    """A calendar with a tag, an event and a subscription; its ids."""
    cal = f"/v1/calendars/{owner.code}/{code}"
    calendar = await owner.call(
        "POST", "ingest", f"/v1/calendars/{owner.code}", {"code": code, "name": f"Calendar {code}"}, 201
    )
    tag = await owner.call("POST", "ingest", cal + "/tags", {"name": "Team A", "externalId": "team-a"}, 201)
    event = {"externalId": EVENT, "title": "Match", "start": "2031-05-01T18:00:00", "timezone": "Europe/Paris"}
    # An attendee to invite: mail then has a delivery of the account's to list.
    event |= {"attendees": [{"email": f"guest@{code}.example.com"}], "notify": True}
    created = await owner.call("POST", "ingest", cal + "/events", {**event, "tags": [{"internalId": tag["id"]}]}, 201)
    subscribed = await owner.call(
        "POST",
        "ingest",
        f"/v1/subscribe/{owner.code}/{code}",
        {"subscriberId": SUBSCRIBER, "userAgent": "suite", "subscriptionMethod": "WebCal"},
    )
    return {
        "calendarId": calendar["id"],
        "tagId": tag["id"],
        "eventId": created["id"],
        "subscriptionId": subscribed["subscriptionId"],
    }


async def _delivery(owner: Account, webhook_id: str, timeout: float = 20.0) -> str:
    """The id of the first finished delivery of `webhook_id` (the subscription's Subscribe event)."""
    deadline = time.monotonic() + timeout
    while True:
        page = await owner.call("GET", "webhook", f"/v1/webhooks/{owner.code}/{webhook_id}/deliveries")
        finished = [d for d in page["deliveries"] if d["status"] != "pending"]
        if finished:
            return str(finished[0]["id"])
        assert time.monotonic() < deadline, f"no finished delivery for webhook {webhook_id}: {page}"
        await asyncio.sleep(0.2)


async def _sent_invitations(owner: Account, count: int, timeout: float = 20.0) -> None:
    """Until mail has sent `count` invitations of the account (to the local SMTP server)."""
    deadline = time.monotonic() + timeout
    while True:
        page = await owner.call("GET", "mail", f"/v1/mail/{owner.code}/deliveries")
        if sum(d["status"] == "sent" for d in page["deliveries"]) >= count:
            return
        assert time.monotonic() < deadline, f"mail did not send {count} invitations: {page}"
        await asyncio.sleep(0.2)


async def populate(stack: Stack, receiver: Receiver) -> World:
    a = Account(stack, await stack.new_account(name="Tenant A"))
    b = Account(stack, await stack.new_account(name="Tenant B"))
    hooks = f"/v1/webhooks/{a.code}"
    webhook = await a.call("POST", "webhook", hooks, {"url": receiver.url("/a")}, 201)
    doomed_hook = await a.call("POST", "webhook", hooks, {"url": receiver.url("/doomed")}, 201)
    a.ids = {"webhookId": webhook["id"], "doomedWebhookId": doomed_hook["id"]}
    a.ids |= await _calendar(a, CALENDAR)
    doomed = await _calendar(a, DOOMED)
    a.ids |= {f"doomed{k[0].upper()}{k[1:]}": v for k, v in doomed.items()}
    a.ids["deliveryId"] = await _delivery(a, webhook["id"])
    await _sent_invitations(a, 2)  # the attendees of A's two events
    a.ids["apiKey"] = str((await stack.admin("create-api-key", a.code))["apiKey"])
    # B has a calendar of the same code, so paths of B's account with A's ids reach the id lookups.
    b.ids = await _calendar(b, CALENDAR)
    return World(stack, a, b, receiver)


@pytest.fixture(scope="package")
async def suite_stack(server_db_url: str, template_db: str, amqp_url: str) -> AsyncIterator[Stack]:
    """Every service, once for the package (each module populates accounts of its own)."""
    name = random_name("kalends_suites")
    names = Names(prefix=random_name("suites") + ".")
    remember_prefix(amqp_url, names.prefix)
    env = {
        "KALENDS_DATABASE_URL": await create_database(server_db_url, name, template=template_db),
        "KALENDS_AMQP_URL": amqp_url,
        "KALENDS_AMQP_PREFIX": names.prefix,
        "KALENDS_WEBHOOK_ALLOW_PRIVATE": "1",
    }
    smtp = SmtpServer().start()  # where mail sends the invitations of attendees' events
    env["KALENDS_SMTP_URL"] = smtp.url
    stack = Stack(env)
    try:
        await stack.start(SUITE_SERVICES[0])  # auth: the others fetch its keys when they start
        await asyncio.gather(*(stack.start(s, env=service_env(stack, s)) for s in SUITE_SERVICES[1:] if s != "web"))
        # web as a deployment runs it: an OAuth client of its own to read calendars from ingest.
        await stack.start_web(service_env(stack, "web"))
        yield stack
    finally:
        stack.stop_all()
        smtp.stop()
        await delete_prefixed(amqp_url, {names.prefix})
        await drop_database(server_db_url, name)


def service_env(stack: Stack, service: str) -> dict[str, str]:
    env = dict(SERVICE_ENV.get(service, {}))
    if service in ("feed", "web"):
        env["KALENDS_PUBLIC_API_URL"] = stack.url("ingest")
    if service == "web":
        env["KALENDS_PUBLIC_WEB_URL"] = stack.url("web")
    return env


@pytest.fixture(scope="module")
async def world(suite_stack: Stack) -> AsyncIterator[World]:
    receiver = await Receiver().start()
    try:
        yield await populate(suite_stack, receiver)
    finally:
        await receiver.stop()
