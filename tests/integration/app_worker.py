"""A service's worker half (consumers, outbox relay, its own loops) running in the test's process:
the service's real `create_app(settings, "worker")`, set up and cleaned up by an aiohttp AppRunner."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Generic, Self, TypeVar

import asyncpg
from aiohttp import web

from shared.lifecycle import POOL

S = TypeVar("S")


class AppWorker(Generic[S]):
    """`start(**changes)` may change settings fields (dataclasses.replace) before starting."""

    def __init__(self, create_app: Callable[[S, str], web.Application], settings: S) -> None:
        self._create_app = create_app
        self.settings = settings
        self.runner: web.AppRunner | None = None

    async def start(self, **changes: Any) -> Self:
        if changes:
            self.settings = dataclasses.replace(self.settings, **changes)  # type: ignore[type-var]
        self.runner = web.AppRunner(self._create_app(self.settings, "worker"))
        await self.runner.setup()
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    @property
    def app(self) -> web.Application:
        assert self.runner is not None
        return self.runner.app

    @property
    def pool(self) -> asyncpg.Pool:
        return self.app[POOL]
