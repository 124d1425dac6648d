"""The sync service's composition root: projection consumer, push engine, providers, routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from services.sync.adapters.caldav import CalDavProvider
from services.sync.api.google_handlers import google_routes
from services.sync.api.routes import routes
from services.sync.app_keys import CONNECTIONS, ENGINE, SETTINGS
from services.sync.domain.provider import Provider
from services.sync.google_app import google
from services.sync.messaging.projection import handle
from services.sync.messaging.topology import PROJECTION_QUEUE
from services.sync.push import SCHEMA, PushEngine
from services.sync.services import ConnectionUseCases
from services.sync.settings import SyncSettings
from shared import lifecycle
from shared.crypto import SecretBox
from shared.tokens import JwksVerifier
from shared.web import REGISTRY, add_routes, create_base_app

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
PROVIDERS: web.AppKey[dict[str, Provider]] = web.AppKey("sync_providers", dict)


def providers(settings: SyncSettings) -> lifecycle.CleanupCtx:
    """One instance per provider, shared by the API and the engine. The Google provider registers here."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        found: dict[str, Provider] = {
            "caldav": CalDavProvider(timeout=settings.timeout, allow_private=settings.allow_private),
        }
        app[PROVIDERS] = found
        try:
            yield
        finally:
            for provider in found.values():
                await provider.close()

    return ctx


def use_cases(box: SecretBox) -> lifecycle.CleanupCtx:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        caldav = app[PROVIDERS]["caldav"]
        assert isinstance(caldav, CalDavProvider)
        app[CONNECTIONS] = ConnectionUseCases(app[lifecycle.POOL], box, caldav)
        yield

    return ctx


def push_engine(settings: SyncSettings, box: SecretBox) -> lifecycle.CleanupCtx:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        found: dict[str, Provider] = app[PROVIDERS]
        engine = PushEngine(app[lifecycle.POOL], box, found, settings, registry=app[REGISTRY])
        app[ENGINE] = engine
        await engine.start()
        try:
            yield
        finally:
            await engine.stop()

    return ctx


def create_app(settings: SyncSettings, box: SecretBox, role: str = "all") -> web.Application:
    serves_api = role in ("api", "all")
    verifier = JwksVerifier(settings.platform.auth_url) if serves_api else None
    app = create_base_app("sync", verifier=verifier)
    app[SETTINGS] = settings
    app.cleanup_ctx.append(lifecycle.database(settings.platform, SCHEMA, MIGRATIONS))
    app.cleanup_ctx.append(lifecycle.broker(settings.platform))
    app.cleanup_ctx.append(providers(settings))
    app.cleanup_ctx.append(google(settings, box, PROVIDERS, role))
    app.cleanup_ctx.append(use_cases(box))
    if role in ("worker", "all"):
        app.cleanup_ctx.append(lifecycle.outbox_relay(SCHEMA))
        app.cleanup_ctx.append(lifecycle.consumers(SCHEMA, [(PROJECTION_QUEUE, handle)]))
        app.cleanup_ctx.append(push_engine(settings, box))
    app.cleanup_ctx.append(lifecycle.token_verifier())
    if serves_api:
        add_routes(app, [*routes(), *google_routes()])
    return app
