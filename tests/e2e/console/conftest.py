"""auth, ingest, feed, webhook and web as processes; a merchant with a console user; a console client
that keeps cookies and sends each form's CSRF token, as a browser does."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aio_pika
import aiohttp
import pytest

from services.webhook.messaging.topology import delete_topology
from services.webhook.settings import parse_retry_schedule
from shared.amqp import Names
from shared.testing import Stack
from tests.integration.webhook.receiver import Receiver

RETRY_SCHEDULE = "0,1,2"
WEBHOOK_ENV = {"KALENDS_WEBHOOK_RETRY_SCHEDULE": RETRY_SCHEDULE, "KALENDS_WEBHOOK_TIMEOUT": "2"}
PASSWORD = "console password 1"
CSRF = re.compile(r'name="csrf" value="([^"]*)"')


@pytest.fixture(scope="module")
def auth_env() -> dict[str, str]:
    """The auth service's environment (a module may shorten token lifetimes)."""
    return {}


@pytest.fixture(scope="module")
async def console_stack(
    stack: Stack, amqp_url: str, e2e_names: Names, auth_env: dict[str, str]
) -> AsyncIterator[Stack]:
    await stack.start("auth", env=auth_env)
    await stack.start("ingest")
    await stack.start("feed")
    await stack.start("webhook", env=WEBHOOK_ENV)
    await stack.start(
        "web",
        env={
            "KALENDS_INGEST_URL": stack.url("ingest"),
            "KALENDS_PUBLIC_API_URL": stack.url("ingest"),
            "KALENDS_WEBHOOK_URL": stack.url("webhook"),
            "KALENDS_PUBLIC_WEB_URL": stack.url("web"),
        },
    )
    yield stack
    stack.processes["webhook"].stop()
    connection = await aio_pika.connect(amqp_url)
    try:
        await delete_topology(await connection.channel(), e2e_names, parse_retry_schedule(RETRY_SCHEDULE))
    finally:
        await connection.close()


@dataclass
class Merchant:
    account: dict[str, Any]
    email: str
    token: str  # the account's own API token (to act as the merchant's server does)
    stack: Stack

    @property
    def code(self) -> str:
        return str(self.account["accountCode"])

    async def call(self, method: str, service: str, path: str, body: Any = None, want: int = 200) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"}
        async with (
            aiohttp.ClientSession() as session,
            session.request(method, self.stack.url(service) + path, json=body, headers=headers) as response,
        ):
            payload = await response.json() if response.content_type == "application/json" else await response.text()
            assert response.status == want, (method, path, payload)
            return payload


async def new_merchant(stack: Stack) -> Merchant:
    account = await stack.new_account(name="Acme Sports")
    email = f"ops-{uuid.uuid4().hex[:8]}@example.com"
    user = await stack.admin("create-user", account["accountCode"], email)
    token = user["setPasswordUrl"].rsplit("/", 1)[1]
    async with (
        aiohttp.ClientSession() as session,
        session.post(stack.url("auth") + "/v1/users/password", json={"token": token, "password": PASSWORD}) as r,
    ):
        assert r.status == 200, await r.text()
    return Merchant(account, email, await stack.token(account), stack)


@pytest.fixture
async def merchant(console_stack: Stack) -> Merchant:
    return await new_merchant(console_stack)


class Console:
    """A browser without a screen: cookies kept, forms posted with the token their page carried."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.csrf = ""

    async def get(self, path: str, want: int = 200) -> str:
        async with self.session.get(self.base + path) as response:
            text = await response.text()
            assert response.status == want, (path, response.status, text[-3000:])
            found = CSRF.search(text)
            if found:
                self.csrf = found.group(1)
            return text

    async def post(self, path: str, form: dict[str, Any], want: int = 200, csrf: bool = True) -> str:
        data = {"csrf": self.csrf, **form} if csrf else form
        async with self.session.post(self.base + path, data=data) as response:
            text = await response.text()
            assert response.status == want, (path, response.status, text[-3000:])
            found = CSRF.search(text)
            if found:
                self.csrf = found.group(1)
            return text

    async def login(self, email: str, password: str = PASSWORD, want: int = 200) -> str:
        await self.get("/console/login")
        return await self.post("/console/login", {"email": email, "password": password}, want=want)

    async def close(self) -> None:
        await self.session.close()


@pytest.fixture
async def console(console_stack: Stack) -> AsyncIterator[Console]:
    client = Console(console_stack.url("web"))
    yield client
    await client.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    yield r
    await r.stop()
