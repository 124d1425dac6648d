"""The web service's aiohttp app: server-rendered pages (Jinja2), their static assets, HTML errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import aiohttp_jinja2
import jinja2
from aiohttp import web

from services.web.adapters.ingest import IngestClient, PlatformToken
from services.web.api.assets import Assets
from services.web.api.handlers import ASSETS, LIMITER, PAGES, SETTINGS
from services.web.api.middleware import pages_middleware
from services.web.api.rendering import page_renderer
from services.web.api.routes import routes
from services.web.console.app import install as install_console
from services.web.console.settings import ConsoleSettings
from services.web.domain.rate_limit import SubscribeLimiter
from services.web.services import CalendarPages
from services.web.settings import WebSettings
from shared.lifecycle import CleanupCtx
from shared.logging import get_logger
from shared.web import add_routes, create_base_app

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"

log = get_logger(__name__)


def calendar_pages(settings: WebSettings, env: jinja2.Environment) -> CleanupCtx:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        timeout = aiohttp.ClientTimeout(total=settings.ingest_timeout)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            token = PlatformToken(session, settings.platform.auth_url, settings.client_id, settings.client_secret)
            pages = CalendarPages(
                IngestClient(session, settings.ingest_url, token), settings, page_renderer(env, settings)
            )
            app[PAGES] = pages
            if not settings.pages_enabled:
                log.warning(
                    "web.pages_not_configured",
                    hint="set KALENDS_WEB_CLIENT_ID/SECRET to a client made with"
                    " `python -m services.auth.admin create-client CODE --scope calendar-pages`",
                )
            try:
                yield
            finally:
                await pages.close()

    return ctx


def create_app(settings: WebSettings, role: str = "all") -> web.Application:
    """Every role serves the pages: web has no background work of its own (yet)."""
    app = create_base_app(
        "web",
        client_max_size=64 * 1024,
        extra_middlewares=[pages_middleware],
    )
    app[SETTINGS] = settings
    app[LIMITER] = SubscribeLimiter(settings.subscribe_limit, settings.subscribe_window)
    app[ASSETS] = Assets.load(STATIC)
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(["html", "xml", "svg"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["asset"] = app[ASSETS].url
    env.globals["public_web_url"] = settings.public_web_url
    app.cleanup_ctx.append(calendar_pages(settings, env))
    add_routes(app, routes())
    console = ConsoleSettings.from_env(settings.platform, settings.public_web_url, settings.ingest_url)
    install_console(app, settings.platform, console)  # /console/...: services/web/console
    return app
