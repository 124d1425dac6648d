"""Google's part of the sync app: the provider (when KALENDS_GOOGLE_CLIENT_ID is set), the consent
flow and its routes, and, in the worker, the loop that revokes grants nobody uses any more."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from services.sync.adapters.google import GoogleProvider
from services.sync.api.google_handlers import GOOGLE, INGEST_URL
from services.sync.domain.provider import Provider
from services.sync.google_flow import GoogleFlow
from services.sync.google_release import GoogleReleaser
from services.sync.google_settings import GoogleSettings
from services.sync.reconciler import Reconciler
from services.sync.settings import SyncSettings
from shared import lifecycle
from shared.crypto import SecretBox
from shared.settings import env_url


def google(
    settings: SyncSettings, box: SecretBox, providers: web.AppKey[dict[str, Provider]], role: str
) -> lifecycle.CleanupCtx:
    google_settings = GoogleSettings.from_env()  # read at build time: a bad setting stops the start
    # Where sync reaches ingest (POST /v1/google/... creates the subscription there): KALENDS_INGEST_URL
    # inside a cluster, else the public API URL.
    public_api = env_url("KALENDS_PUBLIC_API_URL", "http://127.0.0.1:8082", {"http", "https"})
    ingest_url = env_url("KALENDS_INGEST_URL", public_api, {"http", "https"}).rstrip("/")

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        provider = GoogleProvider(google_settings, settings.timeout) if google_settings else None
        found: dict[str, Provider] = app[providers]
        if provider is not None:
            found["google"] = provider  # the engine pushes through it like any provider
        pool = app[lifecycle.POOL]
        # The callback fills the calendar itself (the subscriber waits for it): the engine's own
        # reconciliation of one subscription, without the engine's queue loop (the api role has none).
        reconciler = Reconciler(pool, box, found, settings)
        app[GOOGLE] = GoogleFlow(pool, box, settings.public_sync_url, provider, reconciler.reconcile)
        app[INGEST_URL] = ingest_url
        releaser = None
        if provider is not None and role in ("worker", "all"):
            releaser = GoogleReleaser(pool, box, provider, settings.poll_interval)
            await releaser.start()
        try:
            yield
        finally:
            if releaser is not None:
                await releaser.stop()

    return ctx
