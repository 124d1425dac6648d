"""Calls of concurrent requests answered together, one statement for many: group commit for writes,
batched lookups for reads.

Under load most of a short request's database cost is per statement, not per row: the pool's acquire
and release, the protocol round trip, PostgreSQL's parse/bind/execute and (for a write) the commit.
`Grouped` takes each request's item and waits; one call of `many` at a time takes every item queued
so far. A lone request waits for nothing (nothing is in flight, its call goes at once); under load,
requests queue while the previous call runs and go together in the next, so the grouping adapts to
the load with no timer and adds no latency when there is no queue.

When a grouped call fails (a row the database refuses, a deadlock with another process), each of its
items is tried alone, so one bad item fails only its own request. A request that gives up (its task
cancelled) stops waiting; its item is still carried by the call it is in, as a lone call would have
been.

Written here rather than taken from a library: DataLoader ports (aiodataloader) group the calls of
one event-loop turn and cache results per key; requests over the network arrive over many turns, so
they would go nearly one by one, and a cache of results is wrong for writes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Generic, TypeVar

import asyncpg

Item = TypeVar("Item")
Result = TypeVar("Result")
Row = TypeVar("Row", bound=Mapping[str, Any])  # an asyncpg.Record, or any row by name


class Grouped(Generic[Item, Result]):
    """`await grouped(item)`: `many(items)` answers many items at once, one result per item in order;
    `one(item)`, when given, answers an item alone after its group failed (default: `many([item])`)."""

    def __init__(
        self,
        many: Callable[[list[Item]], Awaitable[Sequence[Result]]],
        one: Callable[[Item], Awaitable[Result]] | None = None,
        *,
        max_group: int = 100,
        name: str = "grouped",
    ) -> None:
        self._many = many
        self._one = one
        self._max_group = max_group
        self._name = name
        self._queued: list[tuple[Item, asyncio.Future[Result]]] = []
        self._running: asyncio.Task[None] | None = None
        self.calls = 0  # grouped calls made (tests and benchmarks read it)

    async def __call__(self, item: Item) -> Result:
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._queued.append((item, future))
        if self._running is None:
            self._running = asyncio.create_task(self._run_queued(), name=self._name)
        return await future

    async def _run_queued(self) -> None:
        group: list[tuple[Item, asyncio.Future[Result]]] = []
        try:
            while self._queued:
                group, self._queued = self._queued[: self._max_group], self._queued[self._max_group :]
                await self._run(group)
                group = []
        finally:
            self._running = None
            # Cancelled (the app stopping): what waits fails now rather than waiting for ever.
            waiting, self._queued = [*group, *self._queued], []
            for _, future in waiting:
                if not future.done():
                    future.cancel()

    async def _run(self, group: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        self.calls += 1
        try:
            results = await self._many([item for item, _ in group])
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if len(group) == 1:
                _fail(group[0][1], exc)
            else:
                await asyncio.gather(*(self._run_alone(item, future) for item, future in group))
            return
        if len(results) != len(group):
            error = RuntimeError(f"{self._name}: {len(results)} results for {len(group)} items")
            for _, future in group:
                _fail(future, error)
            return
        for (_, future), result in zip(group, results, strict=True):
            _answer(future, result)

    async def _run_alone(self, item: Item, future: asyncio.Future[Result]) -> None:
        try:
            result = await self._one(item) if self._one is not None else (await self._many([item]))[0]
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            _fail(future, exc)
        else:
            _answer(future, result)


# A request that has gone (its future cancelled) is not answered.
def _answer(future: asyncio.Future[Result], result: Result) -> None:
    if not future.done():
        future.set_result(result)


def _fail(future: asyncio.Future[Result], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)


def on_pool(
    pool: asyncpg.Pool,
    statement: Callable[[asyncpg.Connection, list[Item]], Awaitable[Sequence[Result]]],
    *,
    max_group: int = 64,
    name: str,
) -> Grouped[Item, Result]:
    """`statement(conn, items)` for concurrent requests, grouped: each group takes one pool connection
    for its one statement (a failed group's items are each tried alone, on a connection of their own)."""

    async def many(items: list[Item]) -> Sequence[Result]:
        async with pool.acquire() as conn:
            return await statement(conn, items)

    return Grouped(many, max_group=max_group, name=name)


def in_asked_order(rows: Sequence[Row], count: int, position: str = "asked_position") -> list[Row | None]:
    """A grouped statement's rows placed by the request each answers: `position` is the request's
    place in the asked arrays, from 1 (`unnest(...) WITH ORDINALITY`); None where no row answered."""
    found: list[Row | None] = [None] * count
    for row in rows:
        found[row[position] - 1] = row
    return found
