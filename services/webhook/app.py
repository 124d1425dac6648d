"""The webhook service's aiohttp app: endpoint admin API, subscription consumer, dispatcher, sweeper."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from services.webhook.adapters.repository import SCHEMA
from services.webhook.adapters.secrets import seal_secrets
from services.webhook.adapters.sender import WebhookSender
from services.webhook.api.handlers import SETTINGS
from services.webhook.api.routes import routes
from services.webhook.messaging.dispatcher import Dispatcher, Sweeper
from services.webhook.messaging.timers import TimerPublisher
from services.webhook.messaging.topology import DISPATCH
from services.webhook.services import handle_subscription_message
from services.webhook.settings import WebhookSettings
from shared import lifecycle
from shared.tokens import JwksVerifier
from shared.web import add_routes, create_base_app

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

DISPATCHER = web.AppKey("dispatcher", Dispatcher)
SWEEPER = web.AppKey("sweeper", Sweeper)


def delivery_workers(settings: WebhookSettings) -> lifecycle.CleanupCtx:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        sender = WebhookSender(
            timeout=settings.timeout, allow_private=settings.allow_private, max_connections=settings.concurrency * 2
        )
        timers = TimerPublisher(app[lifecycle.AMQP], app[lifecycle.NAMES], settings.retry_schedule)
        dispatcher = Dispatcher(
            connection=app[lifecycle.AMQP],
            pool=app[lifecycle.POOL],
            names=app[lifecycle.NAMES],
            sender=sender,
            timers=timers,
            schedule=settings.retry_schedule,
            lease=settings.lease,
            concurrency=settings.concurrency,
            endpoint_concurrency=settings.endpoint_concurrency,
            box=settings.secret_box,
        )
        sweeper = Sweeper(
            app[lifecycle.POOL],
            interval=settings.sweep_interval,
            grace=settings.sweep_grace,
            requeue_after=max(10.0, settings.sweep_interval * 5),
        )
        app[DISPATCHER] = dispatcher
        app[SWEEPER] = sweeper
        await dispatcher.start()
        sweeping = asyncio.create_task(sweeper.run(), name="webhook-sweeper")
        try:
            yield
        finally:
            sweeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeping
            await dispatcher.stop()
            await timers.close()
            await sender.close()

    return ctx


def secrets_at_rest(settings: WebhookSettings) -> lifecycle.CleanupCtx:
    """Before serving: every signing secret encrypted under the first key (adapters/secrets.py)."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        await seal_secrets(app[lifecycle.POOL], settings.secret_box)
        yield

    return ctx


def create_app(settings: WebhookSettings, role: str = "all") -> web.Application:
    settings.secret_box  # noqa: B018 - no secrets in the clear: fail now, not at the first webhook
    serves_api = role in ("api", "all")
    verifier = JwksVerifier(settings.platform.auth_url) if serves_api else None
    app = create_base_app("webhook", verifier=verifier)
    app[SETTINGS] = settings
    app.cleanup_ctx.append(lifecycle.database(settings.platform, SCHEMA, MIGRATIONS))
    app.cleanup_ctx.append(secrets_at_rest(settings))
    app.cleanup_ctx.append(lifecycle.broker(settings.platform))
    if role in ("worker", "all"):
        app.cleanup_ctx.append(lifecycle.outbox_relay(SCHEMA))
        app.cleanup_ctx.append(lifecycle.consumers(SCHEMA, [(DISPATCH, handle_subscription_message)]))
        app.cleanup_ctx.append(delivery_workers(settings))
    app.cleanup_ctx.append(lifecycle.token_verifier())
    if serves_api:
        add_routes(app, routes())
    return app
