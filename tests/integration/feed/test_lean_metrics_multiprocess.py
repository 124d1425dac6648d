"""The feed's lean-path request counter reaches a pod-wide scrape when the feed runs several processes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from shared.testing import ROOT

# Two processes, as `--workers 2` makes them: the parent switches to multiprocess metrics and forks;
# each counts feed answers through its own LeanPath; the parent's scrape must hold both.
SCRIPT = textwrap.dedent(
    """
    import asyncio, os, sys
    from aiohttp import web
    from aiohttp.test_utils import make_mocked_request
    from prometheus_client import CollectorRegistry
    from shared.metrics import enable_multiprocess, exposition

    enable_multiprocess("feed")
    from services.feed.api.lean import LeanPath

    async def answer(n, status):
        lean = LeanPath(CollectorRegistry())
        for _ in range(n):
            async def call():
                return web.Response(status=status)
            await lean.answer("subscription_feed_get", make_mocked_request("GET", "/v1/webcal/x"), call())

    child = os.fork()
    if child == 0:
        asyncio.run(answer(5, 304))
        os._exit(0)
    os.waitpid(child, 0)
    registry = CollectorRegistry()
    asyncio.run(answer(3, 304))
    asyncio.run(answer(2, 200))
    sys.stdout.write(exposition(registry).decode())
    """
)


def test_lean_path_counts_from_every_process_appear_in_one_scrape(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert 'feed_http_requests_total{route="subscription_feed_get",status="304"} 8.0' in done.stdout
    assert 'feed_http_requests_total{route="subscription_feed_get",status="200"} 2.0' in done.stdout


# Counts wait for the end of the event loop's turn, never longer: the file holds them as soon as the
# loop has run what was ready, before it waits for I/O again (a scrape can only come after that).
SAME_TURN = textwrap.dedent(
    """
    import asyncio, sys
    from aiohttp import web
    from aiohttp.test_utils import make_mocked_request
    from prometheus_client import CollectorRegistry
    from shared.metrics import enable_multiprocess, exposition

    enable_multiprocess("feed")
    from services.feed.api.lean import LeanPath

    async def main():
        lean = LeanPath(CollectorRegistry())
        seen = []
        for turn in range(3):
            for _ in range(7):
                async def call():
                    return web.Response(status=304)
                await lean.answer("subscription_feed_get", make_mocked_request("GET", "/v1/webcal/x"), call())
            await asyncio.sleep(0)  # the rest of this turn
            seen.append(exposition(CollectorRegistry()).decode())
        return seen

    for text in asyncio.run(main()):
        sys.stdout.write(text + "----\\n")
    """
)


def test_lean_path_counts_reach_the_shared_file_by_the_end_of_the_event_loops_turn(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", SAME_TURN], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    scrapes = done.stdout.split("----\n")[:3]
    for turn, scrape in enumerate(scrapes, start=1):
        assert f'feed_http_requests_total{{route="subscription_feed_get",status="304"}} {7.0 * turn}' in scrape
