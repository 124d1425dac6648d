"""Installs the console into the web app: its settings, the sessions database, the API client, routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from aiohttp import web

from services.web.console import sessions
from services.web.console.apis import Apis
from services.web.console.middleware import console_middleware
from services.web.console.pages import APIS, CONSOLE
from services.web.console.routes import console_routes
from services.web.console.settings import ConsoleSettings
from shared import lifecycle
from shared.lifecycle import POOL
from shared.logging import get_logger
from shared.settings import PlatformSettings
from shared.web import add_routes

log = get_logger(__name__)

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"
HOUSEKEEPING_INTERVAL = 600.0


def _api_client(app: web.Application) -> AsyncIterator[None]:
    async def ctx() -> AsyncIterator[None]:
        settings = app[CONSOLE]
        timeout = aiohttp.ClientTimeout(total=settings.api_timeout)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            app[APIS] = Apis(settings, session)
            yield

    return ctx()


async def _purge_sessions(app: web.Application) -> None:
    """Forget expired sessions (run every HOUSEKEEPING_INTERVAL)."""
    async with app[POOL].acquire() as conn:
        purged = await sessions.purge_expired(conn, datetime.now(UTC))
    log.info("console.sessions_purged", count=purged)


def install(app: web.Application, platform: PlatformSettings, console: ConsoleSettings) -> None:
    console.secret_box  # noqa: B018 - sessions keep tokens encrypted: no key list, no console
    app[CONSOLE] = console
    app.cleanup_ctx.append(lifecycle.database(platform, sessions.SCHEMA, MIGRATIONS))
    app.cleanup_ctx.append(_api_client)
    app.cleanup_ctx.append(lifecycle.periodic("console-housekeeping", HOUSEKEEPING_INTERVAL, _purge_sessions))
    app.middlewares.append(console_middleware)
    add_routes(app, console_routes())
