"""The fast local webhook receiver of bench/webhook.py, as a process of its own.

`python -m bench.receiver`: listens on 127.0.0.1 (a free port, printed as the first line), answers
every POST 200 at once, and writes one line per request to stdout, `<eventId> <subscriptionId or
-> <perf_counter>`, in a batch per event-loop turn. The webhook run and its reference (plain aiohttp
POSTs) go to this same process doing the same work per request, so its CPU per request (measured by
the bench with CpuMeter) is comparable, and it can be pinned to a core (taskset) apart from the
bench driver. time.perf_counter is CLOCK_MONOTONIC, shared by every process on the machine, so the
bench compares these times with its own.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import uvloop
from aiohttp import web


class _Lines:
    """Arrival lines, flushed to stdout once per loop turn (one write for many requests)."""

    def __init__(self) -> None:
        self._pending: list[str] = []
        self._scheduled = False

    def add(self, line: str) -> None:
        self._pending.append(line)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        lines, self._pending = self._pending, []
        sys.stdout.write("".join(lines))
        sys.stdout.flush()


async def _serve() -> None:
    lines = _Lines()

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        now = time.perf_counter()
        payload = json.loads(body)
        sub = payload.get("eventDetails", {}).get("calendarSubscriptionId") or "-"
        lines.add(f"{payload.get('eventId', '-')} {sub} {now}\n")
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
    await site.start()
    assert site._server is not None
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    sys.stdout.write(f"{port}\n")
    sys.stdout.flush()
    try:
        await asyncio.Event().wait()  # until the bench terminates this process
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    uvloop.run(_serve())
