"""The ingest app in-process on a database and broker prefix of the test's own.

Tokens are real RS256 access tokens, signed with a key whose JWKS a small HTTP server of the test
publishes (the auth service is tested on its own); PostgreSQL and RabbitMQ are the real servers.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from joserfc import jwt
from joserfc.jwk import RSAKey

from services.ingest.app import create_app
from services.ingest.settings import IngestSettings
from shared.amqp import Names, declare_platform
from shared.crypto import SecretBox
from shared.settings import PlatformSettings

FEED_URL = "https://feeds.example.test:8443"


@dataclass
class Issuer:
    url: str
    key: RSAKey

    def token(self, account_id: uuid.UUID, account_code: str, *, expires_in: int = 300) -> str:
        now = int(time.time())
        claims = {
            "iss": self.url,
            "aud": "kalends-api",
            "sub": f"client-{account_code}",
            "client_id": f"client-{account_code}",
            "account_id": str(account_id),
            "account_code": account_code,
            "jti": uuid.uuid4().hex,
            "iat": now,
            "exp": now + expires_in,
        }
        return jwt.encode({"alg": "RS256", "typ": "at+jwt", "kid": "test-key"}, claims, self.key)


@pytest.fixture(scope="session")
async def issuer() -> AsyncIterator[Issuer]:
    key = RSAKey.generate_key(2048, parameters={"kid": "test-key"})

    async def jwks(request: web.Request) -> web.Response:
        return web.json_response({"keys": [key.as_dict(private=False)]})

    app = web.Application()
    app.router.add_get("/.well-known/jwks.json", jwks)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield Issuer(str(server.make_url("")).rstrip("/"), key)
    await server.close()


@dataclass
class Merchant:
    account_id: uuid.UUID
    code: str
    headers: dict[str, str]


@dataclass
class Messages:
    """Every message the test's broker prefix carried, in arrival order."""

    received: list[dict[str, Any]] = field(default_factory=list)

    def of(self, message_type: str) -> list[dict[str, Any]]:
        return [m for m in self.received if m["type"] == message_type]

    async def wait_for(self, count: int, timeout: float = 10.0, settle: float = 0.3) -> list[dict[str, Any]]:
        """Wait until `count` messages arrived, then a little longer so extra ones would show."""
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        await asyncio.sleep(settle)
        return list(self.received)

    def clear(self) -> None:
        self.received.clear()


@dataclass
class Harness:
    client: TestClient[web.Request, web.Application]
    issuer: Issuer
    messages: Messages
    database_url: str
    secrets: SecretBox | None = None

    def merchant(self, code: str | None = None) -> Merchant:
        account_id = uuid.uuid4()
        code = code or f"acct{uuid.uuid4().hex[:8]}"
        token = self.issuer.token(account_id, code)
        return Merchant(account_id, code, {"Authorization": f"Bearer {token}"})


@pytest.fixture
def ingest_environ() -> dict[str, str]:
    """KALENDS_* variables the app is created with (a test module overrides this to set limits, a
    GeoIP database...); the harness adds an encryption key of its own unless one is given."""
    return {}


@pytest.fixture
async def harness(
    database_url: str,
    amqp_url: str,
    amqp_names: Names,
    amqp_connection: aio_pika.abc.AbstractRobustConnection,
    issuer: Issuer,
    ingest_environ: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Harness]:
    messages = Messages()
    channel = await amqp_connection.channel()
    events = await declare_platform(channel, amqp_names)
    queue = await channel.declare_queue(amqp_names("test.everything"), exclusive=True, auto_delete=True)
    await queue.bind(events, routing_key="#")

    async def collect(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        async with message.process():
            messages.received.append(json.loads(message.body))

    await queue.consume(collect)
    settings = PlatformSettings(
        database_url=database_url,
        amqp_url=amqp_url,
        amqp_prefix=amqp_names.prefix,
        auth_url=issuer.url,
        public_feed_url=FEED_URL,
        log_format="console",
        log_level="warning",
    )
    environ = {"KALENDS_ENCRYPTION_KEYS": SecretBox.generate_key(), **ingest_environ}
    with monkeypatch.context() as env:
        for name, value in environ.items():
            env.setenv(name, value)
        ingest_settings = IngestSettings.from_platform(settings)
        app = create_app(settings, "all", ingest_settings)
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    try:
        yield Harness(client, issuer, messages, database_url, ingest_settings.secrets)
    finally:
        await client.close()
        await channel.close()
