"""The webhook service's aiohttp app: endpoint admin API, subscription consumer, dispatcher."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from aiohttp import web

from services.webhook.adapters.repository import SCHEMA
from services.webhook.adapters.secrets import seal_secrets
from services.webhook.adapters.sender import WebhookSender
from services.webhook.api.handlers import SETTINGS
from services.webhook.api.routes import routes
from services.webhook.messaging.dispatcher import Dispatcher
from services.webhook.messaging.intake import DeliveryIntake
from services.webhook.messaging.timers import TimerPublisher
from services.webhook.messaging.topology import DISPATCH
from services.webhook.services import subscription_handler
from services.webhook.settings import WebhookSettings
from shared import db, denylist, lifecycle
from shared.tokens import JwksVerifier
from shared.web import REGISTRY, add_routes, create_base_app

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

DISPATCHER = web.AppKey("dispatcher", Dispatcher)


def delivery_workers(settings: WebhookSettings) -> lifecycle.CleanupCtx:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        sender = WebhookSender(
            timeout=settings.timeout, allow_private=settings.allow_private, max_connections=settings.concurrency * 2
        )
        timers = TimerPublisher(app[lifecycle.AMQP], app[lifecycle.NAMES], settings.retry_schedule)
        # Claims and records on connections of their own: they never queue behind the consumer's
        # transactions, and their statements are planned for their values (adapters/batches.py).
        dispatch_pool = await db.create_pool(
            settings.platform.database_url,
            min_size=1,
            max_size=2,
            # Claims and records keep no session state: no reset round trip per acquire.
            reset_session=False,
            server_settings={"plan_cache_mode": "force_custom_plan"},
        )
        dispatcher = Dispatcher(
            connection=app[lifecycle.AMQP],
            pool=dispatch_pool,
            names=app[lifecycle.NAMES],
            sender=sender,
            timers=timers,
            schedule=settings.retry_schedule,
            lease=settings.lease,
            concurrency=settings.concurrency,
            endpoint_concurrency=settings.endpoint_concurrency,
            box=settings.secret_box,
            poll_interval=settings.sweep_interval,
            registry=app[REGISTRY],
        )
        app[DISPATCHER] = dispatcher
        await dispatcher.start()
        try:
            yield
        finally:
            await dispatcher.stop()
            await timers.close()
            await sender.close()
            await dispatch_pool.close()

    return ctx


def nudger(app: web.Application) -> Callable[[], None]:
    """Nudges the app's dispatcher (once it runs): the consumer made deliveries that are due now."""

    def nudge() -> None:
        dispatcher = app.get(DISPATCHER)
        if dispatcher is not None:
            dispatcher.nudge()

    return nudge


def delivery_intake() -> lifecycle.CleanupCtx:
    """The consumer of subscription and reply messages (messaging/intake.py), which also follows
    auth's revocations into the denylist, as every service's first consumer does."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        nudge = nudger(app)
        ((spec, handler),) = denylist.with_denylist(SCHEMA, [(DISPATCH, subscription_handler(nudge))])
        intake = DeliveryIntake(
            connection=app[lifecycle.AMQP],
            pool=app[lifecycle.POOL],
            names=app[lifecycle.NAMES],
            spec=spec,
            handler=handler,
            on_deliveries=nudge,
        )
        await intake.start()
        app[lifecycle.CONSUMERS] = [intake]
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                await intake.stop()

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
    # No session state is kept on a pooled connection (transaction-scoped advisory locks only; the
    # outbox relay removes its listener), so no reset round trip per acquire (shared/db.py).
    app.cleanup_ctx.append(lifecycle.database(settings.platform, SCHEMA, MIGRATIONS, reset_session=False))
    app.cleanup_ctx.append(secrets_at_rest(settings))
    app.cleanup_ctx.append(lifecycle.broker(settings.platform))
    if role in ("worker", "all"):
        app.cleanup_ctx.append(lifecycle.outbox_relay(SCHEMA))
        # The dispatcher first: the consumer nudges it (and stops before it).
        app.cleanup_ctx.append(delivery_workers(settings))
        app.cleanup_ctx.append(delivery_intake())
    app.cleanup_ctx.append(lifecycle.token_verifier())
    if serves_api:
        add_routes(app, routes())
    return app
