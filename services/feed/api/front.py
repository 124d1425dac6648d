"""The feed's front door: a subscriber's poll answered before aiohttp's router and middleware chain.

Most requests a feed process serves are `GET /v1/webcal/{id}` polls, nearly all answered from
memory in a few microseconds of our own work. aiohttp spends about as much again routing each one:
resolving the URL, freezing its match info, and one coroutine frame per middleware (the lean one
first, then aiohttp's own current-app wrapper), before our handler runs. The front wraps the
handler aiohttp's runner built (shared.web.FrontedAppRunner) and takes a poll whose raw path is
exactly `/v1/webcal/` plus 36 plain characters straight to the same `subscription_feed` the routed
handler calls, on the same lean path (errors, CORS, request id, counts: api/lean.py). Anything else
(another route, a query string, percent-escapes, a malformed id) goes to the router unchanged, so
both doors answer alike; tests exercise both.
"""

from __future__ import annotations

from aiohttp import web

from services.feed.api.handlers import subscription_feed
from services.feed.api.lean import Handler
from services.feed.app_keys import FEEDS, LEAN

PREFIX = "/v1/webcal/"
_ID_END = len(PREFIX) + 36
# The metric labels the routed path counts these requests under (the routes' names, api/routes.py).
ROUTES = {"GET": "subscription_feed_get", "HEAD": "subscription_feed_head"}


def feed_front(app: web.Application, routed: Handler) -> Handler:
    """The handler to serve with, in front of `routed` (the started app's own): see shared.web.FRONT."""
    feeds, lean_path = app[FEEDS], app[LEAN]

    async def front(request: web.Request) -> web.StreamResponse:
        route = ROUTES.get(request.method)
        if route is not None:
            raw = request.raw_path
            if len(raw) == _ID_END and raw.startswith(PREFIX):
                raw_id = raw[len(PREFIX) :]
                if "/" not in raw_id and "%" not in raw_id and "?" not in raw_id:
                    return await lean_path.answer(route, request, subscription_feed(feeds, request, raw_id))
        return await routed(request)

    return front
