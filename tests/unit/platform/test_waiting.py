"""wait_event: set, timed out, and cancelled in the same iteration as the event is set."""

from __future__ import annotations

import asyncio

import pytest

from shared.waiting import wait_event


async def test_it_answers_whether_the_event_was_set() -> None:
    event = asyncio.Event()
    assert await wait_event(event, 0.01) is False
    event.set()
    assert await wait_event(event, 0.01) is True


async def test_a_cancellation_arriving_as_the_event_is_set_still_cancels_the_loop() -> None:
    event = asyncio.Event()
    rounds = 0

    async def loop() -> None:  # the shape of the dispatcher's and the relay's wake-or-poll loops
        nonlocal rounds
        while True:
            rounds += 1
            event.clear()
            await wait_event(event, 10)

    task = asyncio.create_task(loop())
    await asyncio.sleep(0)
    event.set()  # the waiter becomes ready ...
    task.cancel()  # ... and is cancelled before it runs again
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 2)
    assert rounds == 1
