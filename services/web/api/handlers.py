"""Thin handlers of the web service: parse, call one use-case, render a template."""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from services.web.api.assets import Assets
from services.web.settings import WebSettings

SETTINGS = web.AppKey("web_settings", WebSettings)
ASSETS = web.AppKey("web_assets", Assets)


async def home(request: web.Request) -> web.Response:
    return aiohttp_jinja2.render_template("home.html", request, {})


async def static_asset(request: web.Request) -> web.StreamResponse:
    return request.app[ASSETS].response(request, request.match_info["name"])
