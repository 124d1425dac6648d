"""shared.grouping.Grouped: concurrent calls go together, each answered with its own result; in_asked_order
places a grouped statement's rows by the request each answers."""

from __future__ import annotations

import asyncio

import pytest

from shared.grouping import Grouped, in_asked_order


class Doubler:
    """`many` doubles each item, after a pause while which more calls queue; refuses negative items."""

    def __init__(self) -> None:
        self.groups: list[list[int]] = []
        self.alone: list[int] = []

    async def many(self, items: list[int]) -> list[int]:
        self.groups.append(items)
        await asyncio.sleep(0.01)
        if any(i < 0 for i in items):
            raise ValueError("negative")
        return [i * 2 for i in items]

    async def one(self, item: int) -> int:
        self.alone.append(item)
        if item < 0:
            raise ValueError(f"negative: {item}")
        return item * 2


async def test_a_lone_call_goes_at_once_and_alone() -> None:
    doubler = Doubler()
    grouped = Grouped(doubler.many, doubler.one)
    assert await grouped(3) == 6
    assert doubler.groups == [[3]]
    assert grouped.calls == 1


async def test_calls_that_arrive_while_one_runs_go_together_in_the_next() -> None:
    doubler = Doubler()
    grouped = Grouped(doubler.many, doubler.one)
    first = asyncio.ensure_future(grouped(1))
    await asyncio.sleep(0)  # the first group (of one) is in flight
    rest = [asyncio.ensure_future(grouped(i)) for i in range(2, 12)]
    assert await first == 2
    assert [await r for r in rest] == [i * 2 for i in range(2, 12)]
    assert doubler.groups == [[1], list(range(2, 12))]


async def test_groups_are_no_larger_than_max_group() -> None:
    doubler = Doubler()
    grouped = Grouped(doubler.many, doubler.one, max_group=4)
    results = await asyncio.gather(*(grouped(i) for i in range(10)))
    assert results == [i * 2 for i in range(10)]
    assert [len(g) for g in doubler.groups] == [4, 4, 2]


async def test_a_failed_group_is_tried_item_by_item_so_only_the_bad_item_fails() -> None:
    doubler = Doubler()
    grouped = Grouped(doubler.many, doubler.one)
    results = await asyncio.gather(*(grouped(i) for i in (1, -5, 2)), return_exceptions=True)
    assert results[0] == 2 and results[2] == 4
    assert isinstance(results[1], ValueError) and str(results[1]) == "negative: -5"
    assert doubler.alone == [1, -5, 2]


async def test_without_one_an_item_is_retried_as_a_group_of_one() -> None:
    doubler = Doubler()
    grouped = Grouped(doubler.many)
    results = await asyncio.gather(*(grouped(i) for i in (4, -1)), return_exceptions=True)
    assert results[0] == 8 and isinstance(results[1], ValueError)
    assert doubler.groups == [[4, -1], [4], [-1]]


async def test_a_lone_call_that_fails_raises_its_error() -> None:
    doubler = Doubler()
    grouped = Grouped(doubler.many, doubler.one)
    with pytest.raises(ValueError, match="negative"):
        await grouped(-1)
    assert doubler.alone == []  # not tried twice


async def test_a_wrong_number_of_results_fails_every_caller_of_the_group() -> None:
    async def short(items: list[int]) -> list[int]:
        return items[:-1]

    grouped = Grouped(short)
    results = await asyncio.gather(grouped(1), grouped(2), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) and "1 results for 2 items" in str(r) for r in results)


async def test_a_caller_that_gives_up_does_not_stop_the_others() -> None:
    doubler = Doubler()
    grouped = Grouped(doubler.many, doubler.one)
    gone = asyncio.ensure_future(grouped(1))
    kept = asyncio.ensure_future(grouped(2))
    await asyncio.sleep(0)
    gone.cancel()
    assert await kept == 4
    assert gone.cancelled()
    assert await grouped(3) == 6  # the grouping goes on


async def test_stopping_the_running_group_cancels_what_waits() -> None:
    started = asyncio.Event()

    async def never(items: list[int]) -> list[int]:
        started.set()
        await asyncio.Event().wait()
        return items

    grouped = Grouped(never)
    waiting = [asyncio.ensure_future(grouped(i)) for i in range(3)]
    await started.wait()
    running = grouped._running
    assert running is not None
    running.cancel()
    results = await asyncio.gather(*waiting, return_exceptions=True)
    assert all(isinstance(r, asyncio.CancelledError) for r in results)


def test_rows_are_placed_by_their_asked_position_and_unanswered_requests_get_none() -> None:
    rows = [{"asked_position": 3, "v": "c"}, {"asked_position": 1, "v": "a"}]
    assert in_asked_order(rows, 4) == [rows[1], None, rows[0], None]
    assert in_asked_order([], 2) == [None, None]
    assert in_asked_order([{"at": 2}], 2, position="at") == [None, {"at": 2}]
