"""cleanup_ctx pieces every service composes: the pool, the broker, the relay, the consumers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path

import asyncpg
from aio_pika.abc import AbstractRobustConnection
from aiohttp import web

from shared import amqp, db, denylist
from shared.amqp import Names, Publisher
from shared.consumer import Handler, IdempotentConsumer, QueueSpec
from shared.logging import get_logger
from shared.outbox import OutboxMetrics, OutboxRelay
from shared.settings import PlatformSettings
from shared.web import READINESS, REGISTRY, VERIFIER

POOL = web.AppKey("pool", asyncpg.Pool)
AMQP = web.AppKey("amqp_connection", AbstractRobustConnection)
NAMES = web.AppKey("amqp_names", Names)
PUBLISHER = web.AppKey("publisher", Publisher)
RELAY = web.AppKey("relay", OutboxRelay)
CONSUMERS = web.AppKey("consumers", list)
SCHEMA = web.AppKey("schema", str)

CleanupCtx = Callable[[web.Application], AsyncIterator[None]]

log = get_logger("lifecycle")


def database(settings: PlatformSettings, schema: str, migrations: Path, *, reset_session: bool = True) -> CleanupCtx:
    """The migrated pool; `reset_session` as in `db.create_pool`."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        await db.prepare_database(settings.database_url, schema, migrations)
        async with db.pool_context(
            settings.database_url,
            min_size=settings.db_pool_min,
            max_size=settings.db_pool_max,
            reset_session=reset_session,
        ) as pool:
            app[POOL] = pool
            app[SCHEMA] = schema

            async def check_db() -> None:
                async with pool.acquire(timeout=2) as conn:
                    await conn.fetchval("SELECT 1", timeout=2)

            app[READINESS]["postgresql"] = check_db
            yield

    return ctx


def broker(settings: PlatformSettings) -> CleanupCtx:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        connection = await amqp.connect(settings.amqp_url)
        app[AMQP] = connection
        app[NAMES] = Names(settings.amqp_prefix)

        async def check_amqp() -> None:
            if connection.is_closed or not connection.connected.is_set():
                raise ConnectionError("RabbitMQ connection is down")

        app[READINESS]["rabbitmq"] = check_amqp
        try:
            yield
        finally:
            await connection.close()

    return ctx


def outbox_relay(schema: str, settings: PlatformSettings | None = None) -> CleanupCtx:
    """The relay task; its limits (KALENDS_OUTBOX_*) from `settings`, else from the environment."""
    limits = settings or PlatformSettings.from_env()

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        publisher = Publisher(app[AMQP], app[NAMES])
        relay = OutboxRelay(
            app[POOL],
            publisher,
            schema,
            max_message_bytes=limits.outbox_max_message_bytes,
            max_attempts=limits.outbox_max_attempts,
            metrics=OutboxMetrics.register(app[REGISTRY]),
        )
        app[PUBLISHER] = publisher
        app[RELAY] = relay
        task = asyncio.create_task(relay.run(), name=f"outbox-relay-{schema}")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await publisher.close()

    return ctx


def consumers(schema: str, specs: Sequence[tuple[QueueSpec, Handler]]) -> CleanupCtx:
    """The service's consumers. The first queue also carries auth's revocations into the schema's
    denylist table (shared/denylist.py), so every service that consumes follows them."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        started = []
        for spec, handler in denylist.with_denylist(schema, specs):
            consumer = IdempotentConsumer(
                connection=app[AMQP],
                pool=app[POOL],
                names=app[NAMES],
                schema=schema,
                spec=spec,
                handler=handler,
            )
            await consumer.start()
            started.append(consumer)
        app[CONSUMERS] = started
        try:
            yield
        finally:
            for consumer in started:
                with contextlib.suppress(Exception):
                    await consumer.stop()

    return ctx


def token_verifier() -> CleanupCtx:
    """The bearer verifier's lifecycle: its denylist loaded from the schema before the first
    request and polled while the app runs; its HTTP session closed at the end."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        verifier = app.get(VERIFIER)
        if verifier is None:
            yield
            return
        try:
            async with denylist.followed(app[POOL], app[SCHEMA], verifier.denylist):
                yield
        finally:
            await verifier.close()

    return ctx


def periodic(name: str, interval: float, step: Callable[[web.Application], Awaitable[None]]) -> CleanupCtx:
    """`step` run at start and every `interval` seconds while the app runs (housekeeping: purges of
    expired rows). A failing step is logged and tried again at the next interval; it never stops the app."""

    async def loop(app: web.Application) -> None:
        while True:
            try:
                await step(app)
            except Exception as exc:
                log.warning("periodic.failed", task=name, error=repr(exc))
            await asyncio.sleep(interval)

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(loop(app), name=name)
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return ctx
