"""The lean path of the feed routes: what the platform's middlewares do, at the cost a feed can bear.

Calendar apps poll feeds all day, mostly for a 304, so per-request overhead is what bounds the
service. The platform middlewares (shared.web) each cost a coroutine frame per request, and the
request-context one a UUID, a structlog context, a JSON log line and two Prometheus label look-ups.
A handler marked `lean` skips them all; this middleware, first in the chain, runs it directly and
keeps what they guarantee:
  - errors: an `ApiError` becomes the contract's error body, anything else a 500 that reveals
    nothing and is logged with its traceback; 4xx and 5xx answers are logged one line each;
  - CORS and X-Request-Id headers on every answer (the client's id echoed, else a cheap
    process-unique one);
  - metrics aggregated instead of logged: a request counter by route and status (plain integers
    read by a collector when Prometheus scrapes, so a request takes no metric lock; with several
    processes, added to the pod's shared counter once per turn of the event loop), and a latency
    histogram sampled one request in `LATENCY_SAMPLE`.
Handlers not marked lean go through the platform middlewares unchanged.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from services.feed.api.answer import FeedAnswer
from shared.errors import ApiError
from shared.logging import get_logger
from shared.metrics import multiprocess
from shared.web import error_response

log = get_logger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
LATENCY_SAMPLE = 16
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "ETag, Last-Modified, Retry-After, X-Request-Id, Location",
}
_INTERNAL_ERROR = {
    "success": False,
    "statusCode": 500,
    "errors": [{"code": "InternalError", "reason": "an internal error occurred; it has been logged"}],
}


def lean(handler: Handler) -> Handler:
    """Mark a public handler for the lean path (it must shape its own answers: no middleware runs)."""
    handler.kalends_lean = True  # type: ignore[attr-defined]
    return handler


class RequestCounts(Collector):
    """Requests by (route, status) as plain integers, exposed as the counter `feed_http_requests`.

    A prometheus_client Counter takes a lock per increment; the event loop is one thread, so a dict
    of integers is enough, and the collector turns it into a counter family when scraped."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, int], int] = {}

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "feed_http_requests", "Feed-route requests (lean path: counted, not logged)", labels=["route", "status"]
        )
        for (route, status), value in list(self.counts.items()):
            family.add_metric([route, str(status)], value)
        yield family


class LeanPath:
    """What the platform middlewares guarantee, for one feed-route request (see the module docstring)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._counts = RequestCounts()
        # Several processes per pod (`--workers N`) merge metrics from files (shared.metrics), which a
        # hand-written collector does not write: there the same counter is a real one. Its increment
        # takes a lock, a getpid and an mmap write (1.3-1.8 µs, 2-3% of a feed answer), so requests
        # are counted in `_pending` and added to it by `flush`, which the first request of a turn of
        # the event loop schedules with call_soon: under load one turn answers many requests, and
        # the counts reach the file in the same turn as the answers, before the loop waits for I/O
        # again (no scrape, in this process or another, sees them late).
        self._shared: Counter | None = None
        self._shared_children: dict[tuple[str, int], Any] = {}
        self._pending: dict[tuple[str, int], int] = {}
        self._flush_scheduled = False
        if multiprocess():
            self._shared = Counter(
                "feed_http_requests",
                "Feed-route requests (lean path: counted, not logged)",
                ["route", "status"],
                registry=registry,
            )
        else:
            registry.register(self._counts)
        self._latency = Histogram(
            "feed_http_request_duration_seconds",
            f"Feed-route latency, one request in {LATENCY_SAMPLE} sampled",
            ["route"],
            registry=registry,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
        )
        self._timers: dict[str, Any] = {}
        self._serial = itertools.count()
        self._prefix = f"feed-{os.getpid():x}-"

    async def answer(
        self, route: str, request: web.BaseRequest, call: Awaitable[web.StreamResponse]
    ) -> web.StreamResponse:
        """The answer `call` (a handler's coroutine for `request`) gives, or the contract's error body,
        with CORS and request id headers, counted."""
        number = next(self._serial)
        sampled = number % LATENCY_SAMPLE == 0
        started = time.perf_counter() if sampled else 0.0
        request_id = request.headers.get("X-Request-Id", "")[:64] or f"{self._prefix}{number:x}"
        try:
            response = await call
        except ApiError as error:
            response = error_response(error)
            log.info("request", method=request.method, path=request.path, status=error.status, request_id=request_id)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("request.unhandled_error", method=request.method, path=request.path, request_id=request_id)
            response = web.json_response(_INTERNAL_ERROR, status=500)
        if type(response) is FeedAnswer:
            # Its header lines carry CORS already; the id must be one line of plain text to be echoed.
            response.request_id = (
                request_id if request_id.isascii() and request_id.isprintable() else f"{self._prefix}{number:x}"
            )
        elif not response.prepared:
            headers = response.headers
            if "Access-Control-Allow-Origin" not in headers:  # feed answers carry them already
                headers.update(CORS_HEADERS)
            headers["X-Request-Id"] = request_id
        key = (route, response.status)
        counts = self._counts.counts if self._shared is None else self._pending
        counts[key] = counts.get(key, 0) + 1
        if self._shared is not None and not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)
        if sampled:
            timer = self._timers.get(route)
            if timer is None:
                timer = self._timers[route] = self._latency.labels(route)
            timer.observe(time.perf_counter() - started)
        return response

    def flush(self) -> None:
        """Add the requests counted since the last flush to the pod's shared counter (multiprocess)."""
        self._flush_scheduled = False
        if self._shared is None or not self._pending:
            return
        pending, self._pending = self._pending, {}
        for key, count in pending.items():
            child = self._shared_children.get(key)
            if child is None:
                child = self._shared_children[key] = self._shared.labels(key[0], str(key[1]))
            child.inc(count)


def lean_middleware(lean_path: LeanPath) -> Any:
    """Requests the router sent to a `lean` handler take the lean path; the rest go on down the chain."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        match_info = request.match_info
        route_handler = match_info.handler
        if not getattr(route_handler, "kalends_lean", False):
            return await handler(request)
        return await lean_path.answer(match_info.route.name or "feed", request, route_handler(request))

    return middleware
