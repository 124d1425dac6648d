"""The mail service's aiohttp app: deliveries API, the event consumer, the sending worker."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
from aiohttp import web

from services.mail import services
from services.mail.adapters.repository import SCHEMA
from services.mail.adapters.smtp import SmtpSender
from services.mail.api.convier import convier_routes
from services.mail.api.handlers import SETTINGS
from services.mail.api.routes import routes
from services.mail.messaging.api_keys import on_api_key
from services.mail.messaging.inbound import ReplyHandler, start_listener
from services.mail.messaging.topology import API_KEYS, SCHEDULING
from services.mail.messaging.worker import MailWorker
from services.mail.settings import MailSettings
from shared import lifecycle
from shared.consumer import Handler
from shared.messages import Envelope, EventData
from shared.tokens import JwksVerifier
from shared.web import add_routes, create_base_app

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

WORKER = web.AppKey("mail_worker", MailWorker)
REPLIES = web.AppKey("mail_replies", ReplyHandler)


def event_handler(settings: MailSettings) -> Handler:
    async def handle(conn: asyncpg.Connection, envelope: Envelope) -> None:
        event = envelope.parsed()
        if isinstance(event, EventData):
            await services.handle_event(conn, event, settings.mail_from)

    return handle


def sending_worker(settings: MailSettings) -> lifecycle.CleanupCtx:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        sender = SmtpSender(settings.smtp, timeout=settings.smtp_timeout)
        worker = MailWorker(app[lifecycle.POOL], settings, sender)
        app[WORKER] = worker
        task = asyncio.create_task(worker.run(), name="mail-worker")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await sender.close()

    return ctx


def reply_listener(settings: MailSettings) -> lifecycle.CleanupCtx:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        assert settings.inbound_port is not None
        server, handler = await start_listener(
            app[lifecycle.POOL], settings.mail_from, settings.inbound_host, settings.inbound_port
        )
        app[REPLIES] = handler
        try:
            yield
        finally:
            server.close()
            await server.wait_closed()

    return ctx


def create_app(settings: MailSettings, role: str = "all") -> web.Application:
    serves_api = role in ("api", "all")
    verifier = JwksVerifier(settings.platform.auth_url) if serves_api else None
    app = create_base_app("mail", verifier=verifier)
    app[SETTINGS] = settings
    app.cleanup_ctx.append(lifecycle.database(settings.platform, SCHEMA, MIGRATIONS))
    app.cleanup_ctx.append(lifecycle.broker(settings.platform))
    if role in ("worker", "all"):
        app.cleanup_ctx.append(lifecycle.outbox_relay(SCHEMA))
        app.cleanup_ctx.append(
            lifecycle.consumers(SCHEMA, [(SCHEDULING, event_handler(settings)), (API_KEYS, on_api_key)])
        )
        app.cleanup_ctx.append(sending_worker(settings))
        if settings.inbound_port is not None:
            app.cleanup_ctx.append(reply_listener(settings))
    app.cleanup_ctx.append(lifecycle.token_verifier())
    if serves_api:
        add_routes(app, routes() + convier_routes())
    return app
