"""lifecycle.periodic: housekeeping that runs at start, again every interval, survives a failing step,
and stops with the app."""

from __future__ import annotations

import asyncio
import itertools

from aiohttp import web

from shared import lifecycle


async def test_a_periodic_step_repeats_survives_a_failure_and_stops_with_the_app() -> None:
    calls: list[float] = []

    async def step(app: web.Application) -> None:
        calls.append(asyncio.get_running_loop().time())
        if len(calls) == 2:
            raise RuntimeError("the database is away")

    app = web.Application()
    app.cleanup_ctx.append(lifecycle.periodic("test-housekeeping", 0.05, step))
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        for _ in range(100):
            if len(calls) >= 4:
                break
            await asyncio.sleep(0.02)
        assert len(calls) >= 4, "the step after a failing one still ran"
        assert all(later - earlier >= 0.04 for earlier, later in itertools.pairwise(calls))
    finally:
        await runner.cleanup()
    stopped_at = len(calls)
    await asyncio.sleep(0.15)
    assert len(calls) == stopped_at, "the loop stopped with the app"
