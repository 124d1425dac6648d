"""Every URL of the auth service."""

from __future__ import annotations

from services.auth.api import handlers, schemas
from shared.web import Route

FORM = "application/x-www-form-urlencoded"


def routes() -> list[Route]:
    oauth_errors = {"400": "RFC 6749 error body", "401": "invalid_client", "429": "too many failed authentications"}
    return [
        Route(
            "POST",
            "/oauth2/token",
            handlers.token,
            "issue tokens: client_credentials or refresh_token grant (form or JSON body)",
            request_model=schemas.TokenRequest,
            response_model=schemas.TokenResponse,
            public=True,
            responses=oauth_errors,
            request_content_type=FORM,
        ),
        Route(
            "POST",
            "/oauth2/introspect",
            handlers.introspect,
            "token introspection (RFC 7662)",
            request_model=schemas.TokenRequestWithToken,
            response_model=schemas.IntrospectionResponse,
            public=True,
            responses=oauth_errors,
            request_content_type=FORM,
        ),
        Route(
            "POST",
            "/oauth2/revoke",
            handlers.revoke,
            "token revocation (RFC 7009)",
            request_model=schemas.TokenRequestWithToken,
            public=True,
            responses=oauth_errors,
            request_content_type=FORM,
        ),
        Route(
            "GET",
            "/.well-known/jwks.json",
            handlers.jwks,
            "public signing keys (JWKS)",
            response_model=schemas.Jwks,
            public=True,
        ),
        Route(
            "GET",
            "/.well-known/oauth-authorization-server",
            handlers.metadata,
            "authorization server metadata (RFC 8414)",
            response_model=schemas.ServerMetadata,
            public=True,
        ),
    ]
