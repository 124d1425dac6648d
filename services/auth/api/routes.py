"""Every URL of the auth service."""

from __future__ import annotations

from services.auth.api import handlers, schemas, users
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
        *user_routes(),
    ]


def user_routes() -> list[Route]:
    """Console users (services/web's console logs in through these); JSON, the contract's errors."""
    return [
        Route(
            "POST",
            "/v1/users/password",
            users.set_password,
            "set a console user's password with the one-time token of its link",
            request_model=schemas.SetPasswordRequest,
            response_model=schemas.SetPasswordResponse,
            public=True,
            responses={"400": "unknown, used or expired link, or a password that breaks a rule"},
        ),
        Route(
            "POST",
            "/v1/users/login",
            users.login,
            "email and password to an access token for the user's account and a refresh token",
            request_model=schemas.LoginRequest,
            response_model=schemas.UserSession,
            public=True,
            responses={"401": "wrong email or password", "403": "user or account disabled", "429": "locked out"},
        ),
        Route(
            "POST",
            "/v1/users/refresh",
            users.refresh,
            "spend a console refresh token (once) for a new access and refresh token",
            request_model=schemas.RefreshRequest,
            response_model=schemas.UserSession,
            public=True,
            responses={"401": "the session has ended"},
        ),
        Route(
            "POST",
            "/v1/users/logout",
            users.logout,
            "end the session of a console refresh token; its access tokens are revoked everywhere",
            request_model=schemas.RefreshRequest,
            public=True,
            responses={"204": "the session has ended (or was unknown, or had ended already)"},
        ),
    ]
