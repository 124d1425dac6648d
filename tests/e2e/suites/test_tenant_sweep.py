"""Tenant sweep: account B's token on account A's objects, on every secured route that takes an id.

The routes come from each service's /openapi.json, so a new route is swept the day it is added (and a
path parameter the sweep has no value of A for fails the test, naming it). Two aims per route: the
path exactly as A would call it, and, where the path names an object by id, B's own account (with a
calendar of the same code as A's) around A's ids. Every answer must be 403 or 404, and everything A
can read (every GET with A's values, with A's token) must be unchanged afterwards.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from tests.e2e.suites.conftest import BEARER_SERVICES, CALENDAR, EVENT, SUBSCRIBER, Account, World

pytestmark = pytest.mark.e2e

ACCOUNT_PARAMS = {"accountCode", "merchantCode"}
# Names that are only unique inside an account (B has its own calendar `cal-a`): not ids of A's objects.
SCOPED_NAMES = ACCOUNT_PARAMS | {"calendarCode", "calCode", "username"}
PARAM = re.compile(r"\{([^}]+)\}")
REFUSED = {403, 404}
# Request bodies whose sample (below) names A's objects by id.
BODIES_WITH_IDS = {"UpdateSubscriptionBody", "DeactivateBody", "SubscriptionEventBody", "CalDavConnect"}


def a_values(world: World) -> dict[str, str]:
    a = world.a
    return {
        "accountCode": a.code,
        "merchantCode": a.code,
        "calendarCode": CALENDAR,
        "calCode": CALENDAR,
        "username": SUBSCRIBER,
        "eventId": a.ids["eventId"],
        "tagId": a.ids["tagId"],
        "subscriptionId": a.ids["subscriptionId"],
        "webhookId": a.ids["webhookId"],
        "deliveryId": a.ids["deliveryId"],
    }


def sample_bodies(world: World) -> dict[str, Any]:
    """A valid body per request schema, so a refusal can only be about whose objects these are.
    Bodies that carry ids carry A's."""
    event = {"externalId": "intruder", "title": "Hijacked", "start": "2031-06-01T18:00:00"}
    return {
        "CalendarBody": {"code": "hijacked", "name": "Hijacked"},
        "TagBody": {"name": "Hijacked", "externalId": "team-a"},
        "TagRenameBody": {"name": "Hijacked"},
        "EventBody": event,
        "SubscribeBody": {"subscriberId": SUBSCRIBER, "userAgent": "intruder", "subscriptionMethod": "WebCal"},
        "UpdateSubscriptionBody": {"marketingAllowed": True, "requestEventIds": [world.a.ids["eventId"]]},
        "DeactivateBody": {"id": world.a.ids["subscriptionId"]},
        "SubscriptionEventBody": {"event": event, "subscriptionIds": [world.a.ids["subscriptionId"]]},
        "EndpointCreate": {"url": world.receiver.url("/intruder")},
        "EndpointUpdate": {"enabled": False, "url": world.receiver.url("/intruder")},
        "SecretRotation": {"gracePeriodSeconds": 0},
        # A's calendar by id; the server is the receiver (no CalDAV there: a connection can only fail).
        "CalDavConnect": {
            "url": world.receiver.url("/caldav/"),
            "username": "intruder",
            "password": "intruder",
            "calendarId": world.a.ids["calendarId"],
        },
        None: {"title": "Hijacked", "name": "Hijacked", "enabled": False},  # routes without a declared body
    }


@dataclass(frozen=True)
class Operation:
    service: str
    method: str
    path: str
    body_schema: str | None
    secured: bool

    @property
    def params(self) -> list[str]:
        return PARAM.findall(self.path)

    def url(self, values: dict[str, str]) -> str:
        missing = [p for p in self.params if p not in values]
        assert not missing, f"the tenant sweep has no value of account A for {missing} ({self}): add it to a_values"
        return PARAM.sub(lambda m: values[m.group(1)], self.path)


async def operations(world: World) -> list[Operation]:
    found = []
    async with aiohttp.ClientSession() as session:
        for service in BEARER_SERVICES:
            async with session.get(world.stack.url(service) + "/openapi.json") as response:
                document = await response.json()
            for path, methods in document["paths"].items():
                for method, operation in methods.items():
                    content = operation.get("requestBody", {}).get("content", {})
                    schema = next(iter(content.values()), {}).get("schema", {}).get("$ref", "")
                    found.append(
                        Operation(
                            service, method.upper(), path, schema.rsplit("/", 1)[-1] or None, "security" in operation
                        )
                    )
    return found


async def call(world: World, op: Operation, url: str, token: str, body: Any) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        aiohttp.ClientSession() as session,
        session.request(op.method, world.stack.url(op.service) + url, json=body, headers=headers) as response,
    ):
        return response.status, await response.text()


async def snapshot(world: World, ops: list[Operation]) -> dict[str, Any]:
    """Everything A can read: every GET that names A's objects, with A's token (feeds without DTSTAMP)."""
    token = await world.a.token()
    values = a_values(world)
    seen: dict[str, Any] = {}
    for op in ops:
        if op.method != "GET" or not op.params:
            continue
        url = op.url(values)
        status, text = await call(world, op, url, token, None)
        seen[f"{op.service} {url}"] = (status, re.sub(r"(?m)^DTSTAMP:.*\r?\n", "", text))
    return seen


async def settled(world: World, ops: list[Operation], timeout: float = 15.0) -> dict[str, Any]:
    """A snapshot that stays the same for a second (deliveries and projections have caught up)."""
    deadline = time.monotonic() + timeout
    before = await snapshot(world, ops)
    while True:
        await asyncio.sleep(1.0)
        after = await snapshot(world, ops)
        if after == before or time.monotonic() > deadline:
            return after
        before = after


def aims(op: Operation, a: dict[str, str], b: Account) -> list[tuple[str, set[int]]]:
    """(URL, acceptable statuses): A's path as A calls it, 403 or 404; B's own account around A's ids
    where the path names an object of A's by id, 403 or 404; B's own account with A's ids only in the
    body, also a 4xx or the 202 of a route that ignores ids not the caller's (the comparison of A's
    objects decides)."""
    aimed = [(op.url(a), REFUSED)]
    if not set(op.params) & ACCOUNT_PARAMS:
        return aimed
    b_path = op.url({**a, **{p: b.code for p in ACCOUNT_PARAMS}})
    if set(op.params) - SCOPED_NAMES:
        aimed.append((b_path, REFUSED))
    elif op.body_schema in BODIES_WITH_IDS:
        aimed.append((b_path, {*range(400, 500), 202}))
    return aimed


async def barrier(world: World) -> None:
    """Until B's own change is in B's feed: whatever the sweep set going has been processed by then."""
    b, title = world.b, f"barrier-{time.monotonic_ns()}"
    event = {"externalId": title, "title": title, "start": "2031-07-01T10:00:00"}
    await b.call("POST", "ingest", f"/v1/calendars/{b.code}/{CALENDAR}/events", event, 201)
    feed = world.stack.url("feed") + f"/v1/webcal/{b.ids['subscriptionId']}"
    deadline = time.monotonic() + 15
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            async with session.get(feed) as response:
                if f"SUMMARY:{title}" in await response.text():
                    return
            await asyncio.sleep(0.2)
    raise AssertionError(f"B's own event never reached B's feed {feed}")


async def test_account_bs_token_on_account_as_objects_is_refused_everywhere_and_changes_nothing(
    world: World,
) -> None:
    ops = await operations(world)
    swept = [op for op in ops if op.secured and op.params]
    assert swept, "no secured route with a path parameter: the documents are not being read"
    before = await settled(world, ops)
    # The comparison covers A's objects: A's event is in what A reads (so a lost or changed one shows).
    assert any(status == 200 and EVENT in text for status, text in before.values()), before
    a, bodies, token = a_values(world), sample_bodies(world), await world.b.token()
    wrong: list[str] = []
    tried = 0
    for op in swept:
        assert op.body_schema in bodies, f"the sweep has no valid sample body of {op.body_schema} ({op})"
        body = bodies[op.body_schema] if op.method in ("POST", "PUT", "PATCH", "DELETE") else None
        for url, acceptable in aims(op, a, world.b):
            status, text = await call(world, op, url, token, body)
            tried += 1
            if status not in acceptable:
                wrong.append(f"{op.method} {op.service}{url} -> {status} {text[:200]}")
    await barrier(world)
    after = await settled(world, ops)
    changed = {key: (before[key], after.get(key)) for key in before if before[key] != after.get(key)}
    assert not wrong, f"{len(wrong)} of {tried} requests of B on A's objects were not refused:\n" + "\n".join(wrong)
    assert not changed, f"B's requests changed what A sees: {changed}"
    assert tried >= len(swept)
