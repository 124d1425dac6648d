"""Waiting for an asyncio.Event with a timeout, in a way a cancellation always gets through.

`asyncio.wait_for(event.wait(), timeout)` on Python 3.11 swallows a cancellation that arrives in the
same loop iteration as the event is set (CPython gh-86296, fixed in 3.12 by rebuilding wait_for on
`asyncio.timeout`): the waiter returns normally, and a `while True` loop built on it runs on while
its owner's `stop()` awaits it forever. Every wake-or-poll loop here waits through this instead.
"""

from __future__ import annotations

import asyncio


async def wait_event(event: asyncio.Event, timeout: float) -> bool:
    """Until `event` is set (True) or `timeout` seconds pass (False)."""
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        return False
    return True
