"""A real HTTP receiver on 127.0.0.1 for webhook tests: records every request and answers as told
(a status, a delay, a body), per path, in order; after the script runs out it answers 200."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass(frozen=True)
class Reply:
    status: int = 200
    delay: float = 0.0
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Received:
    path: str
    at: float  # time.time() when the request arrived
    headers: dict[str, str]
    body: bytes
    status: int  # what the receiver answered
    query: dict[str, str] = field(default_factory=dict)
    peer: str = ""  # the client's address and port: the same for requests over one connection

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self._scripts: dict[str, list[Reply]] = {}
        self._default: dict[str, Reply] = {}
        self._fail_each: dict[str, int] = {}
        self._runner: web.AppRunner | None = None
        self.port = 0
        self._changed = asyncio.Event()

    def script(self, path: str, *replies: Reply, then: Reply | None = None) -> str:
        """Answer `path` with `replies` in order, then with `then` (200 by default); returns its URL."""
        self._scripts[path] = list(replies)
        if then is not None:
            self._default[path] = then
        return self.url(path)

    def fail(self, path: str, times: int, status: int = 500) -> str:
        return self.script(path, *[Reply(status, body=b"not yet")] * times)

    def fail_each(self, path: str, times: int) -> str:
        """Fail the first `times` requests of every distinct `webhook-id` with a 500."""
        self._fail_each[path] = times
        return self.url(path)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def at(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        script = self._scripts.get(request.path, [])
        reply = script.pop(0) if script else self._default.get(request.path, Reply())
        if request.path in self._fail_each:
            seen = sum(
                1
                for r in self.received
                if r.path == request.path and r.headers.get("webhook-id") == request.headers.get("webhook-id")
            )
            if seen < self._fail_each[request.path]:
                reply = Reply(500, body=b"not yet")
        self.received.append(
            Received(
                request.path,
                time.time(),
                dict(request.headers),
                body,
                reply.status,
                dict(request.query),
                peer=str(request.transport.get_extra_info("peername") if request.transport else ""),
            )
        )
        self._changed.set()
        if reply.delay:
            await asyncio.sleep(reply.delay)
        return web.Response(
            status=reply.status, body=reply.body if reply.status != 304 else None, headers=reply.headers
        )

    async def start(self) -> Receiver:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def wait_for(self, path: str, count: int, timeout: float = 10.0) -> list[Received]:
        """Wait until `path` has received at least `count` requests."""
        deadline = time.monotonic() + timeout
        while len(self.at(path)) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{path}: {len(self.at(path))} requests after {timeout}s, expected {count}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.2))
            except TimeoutError:
                pass
        return self.at(path)
