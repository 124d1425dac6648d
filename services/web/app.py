"""The web service's aiohttp app: server-rendered pages (Jinja2), their static assets, HTML errors."""

from __future__ import annotations

from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from services.web.api.assets import Assets
from services.web.api.handlers import ASSETS, SETTINGS
from services.web.api.middleware import html_errors_middleware, security_headers_middleware
from services.web.api.routes import routes
from services.web.settings import WebSettings
from shared.web import add_routes, create_base_app

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"


def create_app(settings: WebSettings, role: str = "all") -> web.Application:
    """Every role serves the pages: web has no background work of its own (yet)."""
    app = create_base_app(
        "web",
        client_max_size=64 * 1024,
        extra_middlewares=[security_headers_middleware, html_errors_middleware],
    )
    app[SETTINGS] = settings
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
    add_routes(app, routes())
    return app
