"""A loopback HTTP proxy in front of a real CalDAV server, for what Radicale will not do on demand:
answer 429 to one user (a provider's per-user rate limit) and count requests in flight at once."""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web


@dataclass
class DavProxy:
    upstream: str
    limited_users: set[str] = field(default_factory=set)
    retry_after: int = 30
    # Seconds added to every forwarded request (a slow server).
    delay: float = 0.0
    # Users whose requests are answered 503 (a server having a bad moment), without Retry-After.
    failing_users: set[str] = field(default_factory=set)
    failed: int = 0
    # Methods answered 403 without reaching the server (one that refuses MKCALENDAR, say).
    refused_methods: set[str] = field(default_factory=set)
    in_flight: int = 0
    max_in_flight: int = 0
    refused: int = 0
    _runner: web.AppRunner | None = None
    _session: aiohttp.ClientSession | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def _user(self, request: web.Request) -> str:
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return ""
        return base64.b64decode(value).decode().partition(":")[0]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if self._user(request) in self.limited_users:
            self.refused += 1
            return web.Response(status=429, headers={"Retry-After": str(self.retry_after)})
        if self._user(request) in self.failing_users:
            self.failed += 1
            return web.Response(status=503, text="try later")
        if request.method in self.refused_methods:
            return web.Response(status=403, text="not allowed here")
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            assert self._session is not None
            headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
            async with self._session.request(
                request.method,
                self.upstream.rstrip("/") + request.path_qs,
                data=await request.read(),
                headers=headers,
                allow_redirects=False,
            ) as answer:
                body = await answer.read()
                hop = ("content-length", "transfer-encoding", "content-encoding", "connection", "keep-alive")
                keep = {k: v for k, v in answer.headers.items() if k.lower() not in hop}
                return web.Response(status=answer.status, body=body, headers=keep)
        finally:
            self.in_flight -= 1

    async def start(self) -> DavProxy:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._session = aiohttp.ClientSession()
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()
