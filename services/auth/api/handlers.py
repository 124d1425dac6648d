"""HTTP handlers of the auth service: parse the OAuth request, authenticate the client, call one use-case."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from services.auth import services
from services.auth.app_keys import KEYS, LIMITS, METRICS, POOL, SETTINGS, TOKENS
from services.auth.domain import errors
from services.auth.domain.credentials import ClientCredentials, MalformedCredentials, parse_basic
from services.auth.domain.errors import OAuthError
from services.auth.domain.params import MAX_BODY, MalformedParameters, parse_parameters
from services.auth.domain.tokens import Grantee, token_response
from shared.lean import lean
from shared.logging import get_logger
from shared.web import client_address, json_response

log = get_logger(__name__)

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
JWKS_MAX_AGE = 60

OAuthHandler = Callable[[web.Request, dict[str, str]], Awaitable[web.Response]]


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    merged = {k: v for k, v in (headers or {}).items() if k.lower() != "content-type"}
    return web.Response(text=json.dumps(body), status=status, content_type="application/json", headers=merged)


def oauth_endpoint(handler: OAuthHandler) -> Callable[[web.Request], Awaitable[web.Response]]:
    """Read the parameters, and answer every OAuthError with its RFC 6749 body."""

    async def endpoint(request: web.Request) -> web.Response:
        try:
            if request.content_length is not None and request.content_length > MAX_BODY:
                raise errors.invalid_request(f"the body is larger than {MAX_BODY} bytes")
            raw = await request.read()
            params = parse_parameters(raw, request.headers.get("Content-Type", "").split(";")[0].strip())
            return await handler(request, params)
        except MalformedParameters as exc:
            return _error(request, errors.invalid_request(str(exc)))
        except OAuthError as exc:
            return _error(request, exc)

    endpoint.__name__ = handler.__name__
    endpoint.__doc__ = handler.__doc__
    return endpoint


def _error(request: web.Request, exc: OAuthError) -> web.Response:
    request.app[METRICS].errors.labels(request.path, exc.code).inc()
    return _json(exc.body(), status=exc.status, headers={**NO_STORE, **exc.headers()})


def _credentials(request: web.Request, params: dict[str, str]) -> ClientCredentials:
    """HTTP Basic (preferred) or client_id/client_secret parameters; never both (RFC 6749 2.3)."""
    header = request.headers.get("Authorization")
    if header is not None:
        try:
            credentials = parse_basic(header)
        except MalformedCredentials as exc:
            raise errors.invalid_client(str(exc)) from None
        if "client_secret" in params:
            raise errors.invalid_request("use one client authentication method: Basic or client_secret, not both")
        if params.get("client_id", credentials.client_id) != credentials.client_id:
            raise errors.invalid_request("client_id differs from the client of the Authorization header")
        return credentials
    client_id = params.get("client_id", "")
    if not client_id:
        raise errors.invalid_client(
            "client authentication is required: Authorization: Basic, or client_id and client_secret"
        )
    if "client_secret" not in params:
        raise errors.invalid_client("client_secret is required with client_id (or use Authorization: Basic)")
    return ClientCredentials(client_id, params["client_secret"], "client_secret_post")


async def _authenticate(request: web.Request, params: dict[str, str]) -> tuple[Grantee, list[str]]:
    credentials = _credentials(request, params)
    address = client_address(request, request.app[SETTINGS].platform.trusted_proxies)
    return await services.authenticate(request.app[POOL], request.app[LIMITS], credentials, address)


# The hottest route of auth takes the lean path (shared.lean.lean_middleware): the same request id,
# 413, error bodies, CORS and metrics in one frame, and no `request` log line for a grant that
# succeeds (auth_tokens_issued counts them; refusals are still logged, client_auth.failed included).
@lean
@oauth_endpoint
async def token(request: web.Request, params: dict[str, str]) -> web.Response:
    """Token endpoint: client_credentials and refresh_token grants."""
    grant_type = params.get("grant_type", "")
    if not grant_type:
        raise errors.invalid_request("grant_type is required: client_credentials or refresh_token")
    if grant_type not in services.GRANT_TYPES:
        raise errors.unsupported_grant_type(grant_type)
    credentials = _credentials(request, params)
    address = client_address(request, request.app[SETTINGS].platform.trusted_proxies)
    # The seed's own refresh example sends client_credentials with a refresh_token: a plain grant.
    refresh_token = params.get("refresh_token") if grant_type == "refresh_token" else None
    _, issued = await request.app[TOKENS].grant(request.app[LIMITS], credentials, address, grant_type, refresh_token)
    request.app[METRICS].issued.labels(grant_type).inc()
    return json_response(token_response(issued), headers=NO_STORE)


def _token_param(params: dict[str, str]) -> tuple[str, str | None]:
    value = params.get("token", "")
    if not value:
        raise errors.invalid_request("token is required")
    return value, params.get("token_type_hint") or None


@oauth_endpoint
async def introspect(request: web.Request, params: dict[str, str]) -> web.Response:
    """Token introspection (RFC 7662) for the authenticated client's own tokens."""
    token_value, hint = _token_param(params)
    grantee, _ = await _authenticate(request, params)
    body = await request.app[TOKENS].introspect(grantee, token_value, hint)
    return _json(body, headers=NO_STORE)


@oauth_endpoint
async def revoke(request: web.Request, params: dict[str, str]) -> web.Response:
    """Token revocation (RFC 7009): 200 whether or not the token was known."""
    token_value, hint = _token_param(params)
    grantee, _ = await _authenticate(request, params)
    await request.app[TOKENS].revoke(grantee, token_value, hint)
    return web.Response(status=200, headers=NO_STORE)


async def jwks(request: web.Request) -> web.Response:
    """The public keys that verify access tokens, old ones included until their tokens expire."""
    document = await request.app[KEYS].public_jwks()
    return _json(document, headers={"Cache-Control": f"public, max-age={JWKS_MAX_AGE}"})


async def metadata(request: web.Request) -> web.Response:
    """RFC 8414 authorization server metadata."""
    issuer = request.app[SETTINGS].issuer
    methods = ["client_secret_basic", "client_secret_post"]
    body = {
        "issuer": issuer,
        "token_endpoint": f"{issuer}/oauth2/token",
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "introspection_endpoint": f"{issuer}/oauth2/introspect",
        "revocation_endpoint": f"{issuer}/oauth2/revoke",
        "grant_types_supported": list(services.GRANT_TYPES),
        "response_types_supported": [],  # no authorization endpoint
        "token_endpoint_auth_methods_supported": methods,
        "introspection_endpoint_auth_methods_supported": methods,
        "revocation_endpoint_auth_methods_supported": methods,
    }
    return _json(body, headers={"Cache-Control": "public, max-age=3600"})
