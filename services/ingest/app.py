"""The ingest app: API routes (role api), the outbox relay and the accounts consumer (role worker)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import asyncpg
from aiohttp import web

from services.ingest.adapters.geoip import CountryLookup
from services.ingest.adapters.google_consent_client import GoogleConsentClient
from services.ingest.adapters.repository import SCHEMA
from services.ingest.adapters.sync_client import SyncClient
from services.ingest.api.handlers import INGEST
from services.ingest.api.routes import routes
from services.ingest.api.unipile import unipile_routes
from services.ingest.messaging.consumers import on_account_created, on_api_key, on_consent_granted
from services.ingest.messaging.topology import (
    ACCOUNTS_QUEUE,
    API_KEYS_QUEUE,
    GOOGLE_QUEUE,
    PUSH_QUEUE,
    REPLIES_QUEUE,
)
from services.ingest.services import Ingest
from services.ingest.settings import IngestSettings
from shared import lifecycle
from shared.consumer import Handler
from shared.lean import use_lean_path
from shared.messages import AttendeeReplied, Envelope, PushStopped
from shared.settings import PlatformSettings
from shared.tokens import JwksVerifier
from shared.web import add_routes, create_base_app

MIGRATIONS = Path(__file__).with_name("migrations")
SETTINGS = web.AppKey("ingest_settings", IngestSettings)


def _use_cases(geo: CountryLookup | None) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        sync = SyncClient(settings.sync_url)
        ingest = Ingest(
            app[lifecycle.POOL],
            settings.platform.public_feed_url,
            settings.limits,
            sync,
            secrets=settings.secrets,
            geo=geo,
        )
        ingest.configure_google(settings.google_enabled, GoogleConsentClient(settings.sync_url))
        app[INGEST] = ingest
        try:
            yield
        finally:
            await sync.close()
            if geo is not None:
                geo.close()

    return ctx


def _push_stopped(app: web.Application) -> Handler:
    async def handle(conn: asyncpg.Connection, envelope: Envelope) -> None:
        stopped = envelope.parsed()
        assert isinstance(stopped, PushStopped)
        await app[INGEST].stop_pushed(conn, stopped)

    return handle


def _attendee_replied(app: web.Application) -> Handler:
    async def handle(conn: asyncpg.Connection, envelope: Envelope) -> None:
        replied = envelope.parsed()
        assert isinstance(replied, AttendeeReplied)
        await app[INGEST].apply_reply(conn, replied)

    return handle


def create_app(
    platform: PlatformSettings, role: str = "all", settings: IngestSettings | None = None
) -> web.Application:
    settings = settings or IngestSettings.from_platform(platform)
    serves_api = role in ("api", "all")
    verifier = JwksVerifier(platform.auth_url) if serves_api else None
    app = create_base_app("ingest", verifier=verifier, client_max_size=settings.max_body_bytes)
    use_lean_path(app)
    app[SETTINGS] = settings
    # Opened here, not on first use: a database that cannot be read stops the start with its reason.
    geo = CountryLookup(settings.geoip_db) if settings.geoip_db else None
    # Ingest keeps no session state on pooled connections (db.create_pool): no reset query per request.
    app.cleanup_ctx.append(lifecycle.database(platform, SCHEMA, MIGRATIONS, reset_session=False))
    app.cleanup_ctx.append(lifecycle.broker(platform))
    app.cleanup_ctx.append(_use_cases(geo))
    if role in ("worker", "all"):
        app.cleanup_ctx.append(lifecycle.outbox_relay(SCHEMA, platform))
        app.cleanup_ctx.append(
            lifecycle.consumers(
                SCHEMA,
                [
                    (ACCOUNTS_QUEUE, on_account_created),
                    (API_KEYS_QUEUE, on_api_key),
                    (PUSH_QUEUE, _push_stopped(app)),
                    (REPLIES_QUEUE, _attendee_replied(app)),
                    (GOOGLE_QUEUE, on_consent_granted(app)),
                ],
            )
        )
    app.cleanup_ctx.append(lifecycle.token_verifier())
    if serves_api:
        add_routes(app, routes() + unipile_routes())
    return app
