"""The lean path: a service's hottest routes answered by one middleware that keeps what the
platform middlewares of shared/web.py guarantee, in one frame and without a log line per success.

A service marks such handlers `@lean` and calls `use_lean_path(app)` once it has its app.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import structlog
from aiohttp import web

from shared.logging import get_logger
from shared.web import (
    CORS_HEADERS,
    REQUEST_METRICS,
    SERVICE_NAME,
    Handler,
    RequestMetrics,
    answer_for_error,
    authenticate,
    new_request_id,
    refuse_announced_too_large,
    route_label,
)

log = get_logger(__name__)


def lean(handler: Handler) -> Handler:
    """Mark a hot handler for the lean path (lean_middleware): what the platform middlewares do,
    in one frame and without a log line per successful request."""
    handler.kalends_lean = True  # type: ignore[attr-defined]
    return handler


def lean_middleware(service: str, metrics: RequestMetrics) -> Any:
    """Requests the router sent to a `lean` handler are answered here; the rest go on down the chain.

    The platform middlewares cost a coroutine frame each per request, and the request-context one a
    JSON log line. For a service's hottest routes (ingest's subscribe and subscription read) this one
    frame keeps what they guarantee, in the same order: a request id (the client's, else a new one)
    bound for logging and echoed in X-Request-Id; a body announced as too large refused with 413
    before anything reads it; the bearer token verified and held to the path's account (`authenticate`,
    denylist included; not on a `public` route, such as auth's token endpoint); every failure in the
    contract's error body (`answer_for_error`: a 5xx reveals nothing and is logged with its
    traceback); CORS headers; the request counted in `http_requests` and timed in
    `http_request_duration_seconds` as every request is. What it drops is the `request` log line of
    a successful request: answers of 400 and above are still logged, one line each.
    """

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        match_info = request.match_info
        route_handler = match_info.handler
        if not getattr(route_handler, "kalends_lean", False) or request.method == "OPTIONS":
            return await handler(request)
        request_id = request.headers.get("X-Request-Id", "")[:64] or new_request_id()
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(service=service, request_id=request_id)
        started = time.perf_counter()
        try:
            refuse_announced_too_large(request)
            if not getattr(route_handler, "kalends_public", False):  # as bearer_auth_middleware
                await authenticate(request, route_handler)
            response: web.StreamResponse = await route_handler(request)
        except asyncio.CancelledError:  # counted as the platform middleware counts it, then let go
            metrics.count(request.method, route_label(request), 500, time.perf_counter() - started)
            raise
        except Exception as exc:
            try:
                response = answer_for_error(request, exc)
            except web.HTTPException as passed:  # a redirect or a body its handler shaped: as it is
                passed.headers.update(CORS_HEADERS)
                passed.headers["X-Request-Id"] = request_id
                metrics.count(request.method, route_label(request), passed.status, time.perf_counter() - started)
                raise
        elapsed = time.perf_counter() - started
        status = response.status
        if not response.prepared:
            headers = response.headers
            headers.update(CORS_HEADERS)
            headers["X-Request-Id"] = request_id
        metrics.count(request.method, route_label(request), status, elapsed)
        if status >= 400:
            log.info(
                "request", method=request.method, path=request.path, status=status, duration_ms=round(elapsed * 1000, 2)
            )
        return response

    return middleware


def use_lean_path(app: web.Application) -> None:
    """Put the lean middleware first in `app`'s chain (before the app is frozen)."""
    app.middlewares.insert(0, lean_middleware(app[SERVICE_NAME], app[REQUEST_METRICS]))
