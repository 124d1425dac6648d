"""The aiohttp app every service is built on: health, readiness, metrics, OpenAPI, errors, CORS, auth.

`create_base_app` gives a service the contract's common routes and middlewares; the service adds
its own `Route`s with `add_routes`, which also documents them in `/openapi.json`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pydantic_core
import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from pydantic import BaseModel

from shared.errors import (
    ApiError,
    Forbidden,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    Unauthorized,
)
from shared.logging import get_logger
from shared.metrics import exposition
from shared.openapi import openapi_document
from shared.proxies import TrustedProxies
from shared.tokens import AccessClaims, InvalidToken, JwksVerifier, KeySetUnavailable

log = get_logger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ReadinessCheck = Callable[[], Awaitable[None]]

SERVICE_NAME = web.AppKey("service_name", str)
READINESS: web.AppKey[dict[str, ReadinessCheck]] = web.AppKey("readiness", dict)
ROUTE_DOCS = web.AppKey("route_docs", list)
VERIFIER = web.AppKey("verifier", JwksVerifier)
REGISTRY = web.AppKey("metrics_registry", CollectorRegistry)
CLAIMS_KEY = web.RequestKey("kalends.claims", AccessClaims)
# The account named in the path when a scoped platform token (shared.tokens.SCOPES) acts for it.
ACTING_FOR_KEY = web.RequestKey("kalends.acting_for", str)
# An app's front door (optional): given the started app and the handler aiohttp built for it (router
# and middlewares), the handler to serve with, which may answer its hottest route before routing.
Front = Callable[[web.Application, Handler], Handler]
FRONT: web.AppKey[Front] = web.AppKey("front")
READINESS_TIMEOUT = 3.0
ACCOUNT_PATH_PARAMS = ("accountCode", "merchantCode")


def public(handler: Handler) -> Handler:
    """Mark a handler as needing no bearer token (health, feeds, the OAuth endpoints...)."""
    handler.kalends_public = True  # type: ignore[attr-defined]
    return handler


@dataclass
class Route:
    method: str
    path: str
    handler: Handler
    summary: str
    request_model: type[BaseModel] | None = None
    response_model: type[BaseModel] | None = None
    public: bool = False
    responses: dict[str, str] = field(default_factory=dict)
    request_content_type: str = "application/json"
    response_content_type: str = "application/json"
    # More media types the body may come as, each with its model (documented beside request_content_type).
    request_alternatives: dict[str, type[BaseModel]] = field(default_factory=dict)
    # A body schema per answered status when it is not the contract's Error (e.g. seed-shaped errors).
    response_models: dict[str, type[BaseModel]] = field(default_factory=dict)
    name: str | None = None
    # OpenAPI links of the success response: name -> {"operationId": ..., "parameters": {...}}.
    links: dict[str, dict[str, Any]] = field(default_factory=dict)
    # A platform scope (shared.tokens.SCOPES) whose tokens may use this route for any account.
    scope: str | None = None


def claims(request: web.Request) -> AccessClaims:
    """The verified access token of this request (only on routes that are not public)."""
    verified: AccessClaims = request[CLAIMS_KEY]
    return verified


class FrontedAppRunner(web.AppRunner):
    """An AppRunner that puts the app's FRONT, if it has one, before its router (shared.service runs
    every service with it; tests use FrontedTestServer so they go through the same door)."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        front = self.app.get(FRONT)
        if front is not None:
            # The app's requests are web.Request (its request factory makes them), as the front expects.
            server.request_handler = front(self.app, server.request_handler)  # type: ignore[assignment]
        return server


def client_address(request: web.Request, proxies: TrustedProxies) -> str:
    """The caller's address: the TCP peer, or what trusted proxies say in X-Forwarded-For."""
    return proxies.client_address(request.remote, request.headers.getall("X-Forwarded-For", []))


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # Rendered by pydantic-core (already here with pydantic): a fifth of json.dumps's time, the same JSON
    # (compact, UTF-8 rather than \u escapes) and the same Content-Type as web.json_response. Text UTF-8
    # cannot carry (a lone surrogate echoed from a body) it refuses; json.dumps escapes it, as before.
    try:
        rendered = pydantic_core.to_json(body)
    except pydantic_core.PydanticSerializationError:
        rendered = json.dumps(body).encode()
    return web.Response(
        body=rendered,
        status=status,
        headers=headers,
        content_type="application/json",
        charset="utf-8",
    )


def error_response(error: ApiError) -> web.Response:
    return web.json_response(error.body(), status=error.status, headers=error.headers)


# --- middlewares --------------------------------------------------------------------------------


_INTERNAL_ERROR = {
    "success": False,
    "statusCode": 500,
    "errors": [{"code": "InternalError", "reason": "an internal error occurred; it has been logged"}],
}


def _too_large(request: web.Request) -> PayloadTooLarge:
    limit = request.app._client_max_size
    return PayloadTooLarge(f"request body is larger than the {limit} bytes this service accepts")


def refuse_announced_too_large(request: web.Request) -> None:
    """Refuse a body announced as too big before any handler reads (or ignores) it."""
    limit = request.app._client_max_size
    if limit and request.content_length is not None and request.content_length > limit:
        raise _too_large(request)


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure becomes the contract's error body; a 5xx body never reveals anything."""
    try:
        refuse_announced_too_large(request)
        return await handler(request)
    except Exception as exc:
        return answer_for_error(request, exc)


def answer_for_error(request: web.Request, exc: Exception) -> web.Response:
    """The contract's answer to a handler's exception (errors_middleware's, the lean path's); raises
    again what is not an error (redirects, 304s, bodies a handler shaped itself)."""
    try:
        raise exc
    except ApiError as error:
        return error_response(error)
    except web.HTTPNotFound:
        return error_response(NotFound(f"no route for {request.method} {request.path}", code="RouteNotFound"))
    except web.HTTPMethodNotAllowed as exc:
        allowed = ", ".join(sorted(exc.allowed_methods))
        return error_response(
            MethodNotAllowed(f"{request.method} is not allowed here; use {allowed}", headers={"Allow": allowed})
        )
    except web.HTTPRequestEntityTooLarge:
        return error_response(_too_large(request))
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type != "text/plain":
            raise  # redirects, 304s and bodies a handler shaped itself (OAuth errors) pass as they are
        # aiohttp's own 4xx (a bad form body, say) in the contract's shape; its text is safe to show.
        headers = {k: v for k, v in exc.headers.items() if k.lower() not in ("content-type", "content-length")}
        code = exc.reason.replace(" ", "") or "Error"
        if exc.status >= 500:
            log.error("request.http_error", status=exc.status, reason=exc.reason)
            return web.json_response({**_INTERNAL_ERROR, "statusCode": exc.status}, status=exc.status)
        reason = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else exc.reason
        return error_response(ApiError(reason, code=code, status=exc.status, headers=headers))
    except Exception:
        log.exception("request.unhandled_error")
        return web.json_response(_INTERNAL_ERROR, status=500)


def route_label(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


class _RequestIds:
    """Request ids made without a syscall each: a random per-process half and a counter (32 hex
    characters, like the uuid4 hex they replace, which read the kernel's random source per request).
    A forked worker draws a new half, so ids stay unique across a service's processes."""

    def __init__(self) -> None:
        self._reseed()
        os.register_at_fork(after_in_child=self._reseed)

    def _reseed(self) -> None:
        self._prefix = secrets.token_hex(8)
        self._counter = itertools.count()

    def __call__(self) -> str:
        return f"{self._prefix}{next(self._counter) & 0xFFFFFFFFFFFFFFFF:016x}"


new_request_id = _RequestIds()


class RequestMetrics:
    """`http_requests` by method, route and status and `http_request_duration_seconds`, for every
    request whichever path it took (the platform middlewares or the lean one)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._requests = Counter("http_requests", "HTTP requests", ["method", "route", "status"], registry=registry)
        self._latency = Histogram(
            "http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route"],
            registry=registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        # The metric children per label set, looked up once: `labels()` validates and locks on every call.
        self._counted: dict[tuple[str, str, int], Any] = {}
        self._timed: dict[tuple[str, str], Any] = {}

    def count(self, method: str, route: str, status: int, elapsed: float) -> None:
        child = self._counted.get((method, route, status))
        if child is None:
            child = self._counted[method, route, status] = self._requests.labels(method, route, str(status))
        child.inc()
        histogram = self._timed.get((method, route))
        if histogram is None:
            histogram = self._timed[method, route] = self._latency.labels(method, route)
        histogram.observe(elapsed)


REQUEST_METRICS = web.AppKey("request_metrics", RequestMetrics)


def request_context_middleware(service: str, metrics: RequestMetrics) -> Any:
    quiet = {"/healthz", "/readyz", "/metrics"}
    count = metrics.count

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        request_id = request.headers.get("X-Request-Id", "")[:64] or new_request_id()
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(service=service, request_id=request_id)
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            response.headers["X-Request-Id"] = request_id
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            elapsed = time.perf_counter() - started
            count(request.method, route_label(request), status, elapsed)
            if request.path not in quiet:
                log.info(
                    "request",
                    method=request.method,
                    path=request.path,
                    status=status,
                    duration_ms=round(elapsed * 1000, 2),
                )

    return middleware


CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "ETag, Last-Modified, Retry-After, X-Request-Id, Location",
}


@web.middleware
async def cors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Permissive CORS for a bearer-token API (no cookies, so `*` is safe). Written here because
    aiohttp-cors needs every route registered with it and has fallen behind aiohttp releases."""
    if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
        return web.Response(
            status=204,
            headers={
                **CORS_HEADERS,
                "Access-Control-Allow-Methods": "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS",
                "Access-Control-Allow-Headers": request.headers.get(
                    "Access-Control-Request-Headers", "Authorization, Content-Type"
                ),
                "Access-Control-Max-Age": "86400",
            },
        )
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        exc.headers.update(CORS_HEADERS)
        raise
    if not response.prepared:
        response.headers.update(CORS_HEADERS)
    return response


def _bearer_token(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        raise Unauthorized(
            "send an access token: Authorization: Bearer <token> (get one from /oauth2/token)",
            headers={"WWW-Authenticate": 'Bearer realm="kalends"'},
        )
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized(
            "the Authorization header must be 'Bearer <access token>'",
            headers={"WWW-Authenticate": 'Bearer realm="kalends", error="invalid_request"'},
        )
    return token.strip()


@web.middleware
async def bearer_auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Verify the access token locally and hold it to the account named in the path (else 403)."""
    if getattr(handler, "kalends_public", False) or request.method == "OPTIONS":
        return await handler(request)
    if request.match_info.http_exception is not None:
        return await handler(request)
    await authenticate(request, handler)
    return await handler(request)


async def authenticate(request: web.Request, handler: Handler) -> None:
    """The request's access token verified (signature, expiry, denylist: JwksVerifier) and held to the
    account its path names, or to `handler`'s platform scope; its claims stored on the request."""
    verifier = request.app.get(VERIFIER)
    if verifier is None:
        raise Unauthorized("this service accepts no bearer tokens")
    token = _bearer_token(request)
    try:
        verified = await verifier.verify(token)
    except KeySetUnavailable as exc:
        raise ServiceUnavailable(str(exc), headers={"Retry-After": "5"}) from None
    except InvalidToken as exc:
        description = str(exc).replace('"', "'").replace("\\", "/")
        raise Unauthorized(
            str(exc),
            code="InvalidToken",
            headers={
                "WWW-Authenticate": f'Bearer realm="kalends", error="invalid_token", error_description="{description}"'
            },
        ) from None
    for param in ACCOUNT_PATH_PARAMS:
        named = request.match_info.get(param)
        if named is not None and named.lower() != verified.account_code.lower():
            scope = getattr(handler, "kalends_scope", None)
            if scope is None or scope not in verified.scopes:
                raise Forbidden(f"this access token belongs to account '{verified.account_code}', not '{named}'")
            request[ACTING_FOR_KEY] = named
    request[CLAIMS_KEY] = verified
    structlog.contextvars.bind_contextvars(account=verified.account_code)


# --- common routes ------------------------------------------------------------------------------


@public
async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@public
async def readyz(request: web.Request) -> web.Response:
    checks = request.app[READINESS]

    async def probe(check: ReadinessCheck) -> str | None:
        try:
            await asyncio.wait_for(check(), READINESS_TIMEOUT)
        except TimeoutError:
            return f"no answer within {READINESS_TIMEOUT:g} s"
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"[:200]
        return None

    results = await asyncio.gather(*(probe(check) for check in checks.values()))
    failed = {name: error for name, error in zip(checks, results, strict=True) if error is not None}
    if failed:
        return web.json_response({"status": "unavailable", "failed": failed}, status=503)
    return web.json_response({"status": "ok", "checks": sorted(checks)})


@public
async def metrics(request: web.Request) -> web.Response:
    body = exposition(request.app[REGISTRY])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


@public
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document(request.app[SERVICE_NAME], request.app[ROUTE_DOCS]))


def add_routes(app: web.Application, routes: list[Route]) -> None:
    for route in routes:
        handler = public(route.handler) if route.public else route.handler
        if route.scope is not None:
            handler.kalends_scope = route.scope  # type: ignore[attr-defined]
        app.router.add_route(route.method, route.path, handler, name=route.name)
        app[ROUTE_DOCS].append(route)


def create_base_app(
    service: str,
    *,
    verifier: JwksVerifier | None = None,
    client_max_size: int = 1024 * 1024,
    extra_middlewares: list[Any] | None = None,
) -> web.Application:
    """The app with the platform's middlewares and common routes. A service with `lean` handlers
    puts `shared.lean.lean_middleware` first in the chain (`shared.lean.use_lean_path`)."""
    registry = CollectorRegistry()
    request_metrics = RequestMetrics(registry)
    app = web.Application(
        client_max_size=client_max_size,
        middlewares=[
            request_context_middleware(service, request_metrics),
            cors_middleware,
            errors_middleware,
            bearer_auth_middleware,
            *(extra_middlewares or []),
        ],
    )
    app[SERVICE_NAME] = service
    app[READINESS] = {}
    app[ROUTE_DOCS] = []
    app[REGISTRY] = registry
    app[REQUEST_METRICS] = request_metrics
    if verifier is not None:
        app[VERIFIER] = verifier
    add_routes(
        app,
        [
            Route("GET", "/healthz", healthz, "liveness: 200 while the process runs", public=True),
            Route(
                "GET",
                "/readyz",
                readyz,
                "readiness: 200 when PostgreSQL and RabbitMQ answer",
                public=True,
                responses={"503": "a dependency failed"},
            ),
            Route(
                "GET",
                "/metrics",
                metrics,
                "Prometheus metrics",
                public=True,
                response_content_type="text/plain",
            ),
            Route("GET", "/openapi.json", openapi, "this document", public=True),
        ],
    )
    return app
