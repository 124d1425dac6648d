"""The feed service's composition root: projection consumer, feed cache, routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from services.feed.api.front import feed_front
from services.feed.api.lean import LeanPath, lean_middleware
from services.feed.api.routes import routes
from services.feed.app_keys import FEEDS, LEAN, SETTINGS
from services.feed.messaging.projection import handle
from services.feed.messaging.topology import PROJECTION_QUEUE
from services.feed.replica import ReadRouter
from services.feed.services import FeedService
from services.feed.settings import FeedSettings
from shared import lifecycle
from shared.lifecycle import POOL
from shared.settings import PlatformSettings
from shared.web import FRONT, REGISTRY, add_routes, create_base_app

SCHEMA = "feed"
MIGRATIONS = Path(__file__).with_name("migrations")


def feed_cache(settings: FeedSettings) -> lifecycle.CleanupCtx:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        reads = ReadRouter(
            app[POOL],
            settings.read_database_url or None,
            max_lag=settings.read_max_lag,
            pool_max=settings.platform.db_pool_max,
        )
        await reads.start()
        service = FeedService(app[POOL], settings, reads)
        await service.start()
        app[FEEDS] = service
        try:
            yield
        finally:
            await service.stop()
            await reads.stop()

    return ctx


def create_app(platform: PlatformSettings, role: str = "all", settings: FeedSettings | None = None) -> web.Application:
    feed_settings = settings or FeedSettings.from_env(platform)
    app = create_base_app("feed")
    # First in the chain: the feed routes take the lean path, everything else the platform's middlewares.
    lean_path = app[LEAN] = LeanPath(app[REGISTRY])
    app.middlewares.insert(0, lean_middleware(lean_path))
    # Before the router: a subscriber's poll goes straight to its handler, on the same lean path.
    app[FRONT] = feed_front
    app[SETTINGS] = feed_settings
    app.cleanup_ctx.append(lifecycle.database(platform, SCHEMA, MIGRATIONS))
    app.cleanup_ctx.append(lifecycle.broker(platform))
    if role in ("worker", "all"):
        app.cleanup_ctx.append(lifecycle.consumers(SCHEMA, [(PROJECTION_QUEUE, handle)]))
    app.cleanup_ctx.append(feed_cache(feed_settings))
    add_routes(app, routes())
    return app
