"""The dispatcher's claim loop when every slot is taken: it waits for a slot, never spins.

A nudge that arrives while the worker is full leaves the wake event set; waiting on a set event
returns without yielding, so a loop that did not clear it would spin for ever, holding the event
loop: no attempt could end to free a slot, and the worker would hang at full CPU (seen in the
benchmark once the intake wrote its batches in one statement and kept the worker full).
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from cryptography.fernet import Fernet

from services.webhook.messaging.dispatcher import Dispatcher
from shared.crypto import SecretBox


class CountingDispatcher(Dispatcher):
    """The real dispatcher; counts how often its claim loop waits, and stops a spinning one."""

    waits = 0

    async def _wait(self, timeout: float) -> None:
        self.waits += 1
        if self.waits > 1000:
            raise RuntimeError("the claim loop spins")
        await super()._wait(timeout)


def full_dispatcher() -> CountingDispatcher:
    unused = cast(Any, None)  # a full worker claims nothing: no broker, database or HTTP is touched
    dispatcher = CountingDispatcher(
        connection=unused,
        pool=unused,
        names=unused,
        sender=unused,
        timers=unused,
        schedule=(0.0, 60.0),
        lease=35.0,
        concurrency=1,
        endpoint_concurrency=1,
        box=SecretBox([Fernet.generate_key().decode()]),
        poll_interval=0.05,
    )
    dispatcher._in_flight = 2  # claimed and not yet sent: as many as the worker ever holds
    return dispatcher


async def test_a_full_worker_nudged_waits_for_a_slot_and_lets_the_event_loop_run() -> None:
    dispatcher = full_dispatcher()
    dispatcher.nudge()  # new deliveries: the wake event is set while no slot is free
    loop = asyncio.create_task(dispatcher._claim_loop())
    ticks = 0
    for _ in range(10):  # the event loop keeps turning while the claim loop waits
        await asyncio.sleep(0.012)
        ticks += 1
    assert not loop.done(), loop.exception() if loop.done() else None
    loop.cancel()
    assert ticks == 10
    # One wait per poll (0.05 s) over 0.12 s, not one per turn of a spinning loop.
    assert dispatcher.waits <= 5
