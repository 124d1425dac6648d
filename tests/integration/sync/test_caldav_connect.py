"""Connecting a subscriber's CalDAV server (the use-case behind sync's connect route) against a real
Radicale: discovery, MKCALENDAR and its fallbacks, the SSRF rule, and what is stored."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from aiohttp import web

from services.sync.adapters.caldav import CalDavProvider
from services.sync.api.schemas import CalDavConnect
from services.sync.services import ConnectionUseCases
from shared import db
from shared.crypto import SecretBox
from shared.errors import InvalidRequest
from tests.tools.dav_proxy import DavProxy
from tests.tools.radicale_server import RadicaleServer


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    async with db.pool_context(database_url, min_size=1, max_size=4) as pool:
        yield pool


@pytest.fixture(scope="module")
def radicale(tmp_path_factory: pytest.TempPathFactory) -> RadicaleServer:
    server = RadicaleServer(tmp_path_factory.mktemp("radicale-connect")).start()
    yield server  # type: ignore[misc]
    server.stop()


def user_of(radicale: RadicaleServer) -> tuple[str, str]:
    username, password = f"c{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    radicale.add_user(username, password)
    return username, password


async def connect(pool: asyncpg.Pool, box: SecretBox, url: str, user: str, password: str, private: bool = True):  # type: ignore[no-untyped-def]
    provider = CalDavProvider(timeout=10, allow_private=private)
    try:
        body = CalDavConnect.parse({"url": url, "username": user, "password": password, "name": "Acme Games"})
        return await ConnectionUseCases(pool, box, provider).connect_caldav(uuid.uuid4(), body)
    finally:
        await provider.close()


async def test_the_password_is_stored_encrypted_and_the_collection_is_made_in_the_users_home(
    pool: asyncpg.Pool, radicale: RadicaleServer
) -> None:
    box = SecretBox([SecretBox.generate_key()])
    user, password = user_of(radicale)
    connected = await connect(pool, box, radicale.url, user, password)
    assert connected.created_collection and connected.calendar_url.startswith(f"{radicale.url}{user}/kalends-")
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM sync.connections WHERE connection_id = $1", connected.connection_id)
    assert password not in row["credentials"]
    assert json.loads(box.decrypt(row["credentials"]))["password"] == password
    assert row["provider"] == "caldav" and row["remote_user"] == f"{user}@127.0.0.1"
    assert row["remote_calendar_id"] == connected.calendar_url


async def test_a_url_naming_a_calendar_is_used_as_it_is(pool: asyncpg.Pool, radicale: RadicaleServer) -> None:
    box = SecretBox([SecretBox.generate_key()])
    user, password = user_of(radicale)
    first = await connect(pool, box, radicale.url, user, password)
    again = await connect(pool, box, first.calendar_url, user, password)
    assert again.calendar_url == first.calendar_url and not again.created_collection


async def test_a_server_refusing_mkcalendar_falls_back_to_an_existing_calendar(
    pool: asyncpg.Pool, radicale: RadicaleServer
) -> None:
    box = SecretBox([SecretBox.generate_key()])
    user, password = user_of(radicale)
    existing = await connect(pool, box, radicale.url, user, password)
    proxy = await DavProxy(radicale.url, refused_methods={"MKCALENDAR"}).start()
    try:
        fallback = await connect(pool, box, proxy.url, user, password)
        assert not fallback.created_collection
        assert fallback.calendar_url == existing.calendar_url.replace(radicale.url, proxy.url)
        nothing, other = user_of(radicale)  # a user with no calendar at all: a clear refusal
        with pytest.raises(InvalidRequest) as refused:
            await connect(pool, box, proxy.url, nothing, other)
        assert refused.value.code == "CalDavNoCollection"
    finally:
        await proxy.stop()


async def test_loopback_and_private_servers_are_refused_unless_allowed_and_nothing_is_stored(
    pool: asyncpg.Pool, radicale: RadicaleServer
) -> None:
    box = SecretBox([SecretBox.generate_key()])
    user, password = user_of(radicale)
    with pytest.raises(InvalidRequest) as refused:
        await connect(pool, box, radicale.url, user, password, private=False)
    assert refused.value.code == "CalDavAddressForbidden"
    assert "loopback" in refused.value.reason and "KALENDS_SYNC_ALLOW_PRIVATE" in refused.value.reason
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM sync.connections") == 0


async def test_a_server_that_does_not_speak_caldav_is_named_as_such(pool: asyncpg.Pool) -> None:
    async def website(request: web.Request) -> web.Response:
        return web.Response(text="<html>hello</html>", content_type="text/html")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", website)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        with pytest.raises(InvalidRequest) as refused:
            await connect(pool, SecretBox([SecretBox.generate_key()]), f"http://127.0.0.1:{port}/dav/", "u", "p")
        assert refused.value.code == "CalDavNotAServer"
        with pytest.raises(InvalidRequest) as unreachable:
            await connect(pool, SecretBox([SecretBox.generate_key()]), "http://127.0.0.1:1/", "u", "p")
        assert unreachable.value.code == "CalDavUnreachable"
    finally:
        await runner.cleanup()


async def test_a_redirect_to_another_host_does_not_carry_the_password_along() -> None:
    from services.sync.adapters.webdav import DavClient

    seen: list[str | None] = []

    async def elsewhere(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization"))
        return web.Response(status=207, text="<multistatus xmlns='DAV:'/>")

    other = web.Application()
    other.router.add_route("*", "/{tail:.*}", elsewhere)
    other_runner = web.AppRunner(other)
    await other_runner.setup()
    other_site = web.TCPSite(other_runner, "127.0.0.1", 0)
    await other_site.start()
    other_port = other_site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def moved(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization"))
        raise web.HTTPMovedPermanently(f"http://127.0.0.1:{other_port}/dav/")

    first = web.Application()
    first.router.add_route("*", "/{tail:.*}", moved)
    first_runner = web.AppRunner(first)
    await first_runner.setup()
    first_site = web.TCPSite(first_runner, "127.0.0.1", 0)
    await first_site.start()
    first_port = first_site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    client = DavClient(timeout=5, allow_private=True)
    try:
        answer = await client.request("PROPFIND", f"http://127.0.0.1:{first_port}/", username="u", password="secret")
        assert answer.status == 207 and answer.url == f"http://127.0.0.1:{other_port}/dav/"
        assert seen[0] is not None and seen[0].startswith("Basic ")
        assert seen[1] is None
    finally:
        await client.close()
        await first_runner.cleanup()
        await other_runner.cleanup()
