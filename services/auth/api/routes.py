"""Every URL of the auth service."""

from __future__ import annotations

from services.auth.api import credentials, handlers, schemas, users
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
        *credential_routes(),
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


def credential_routes() -> list[Route]:
    """An account's API keys and OAuth clients. `public` only to the shared bearer middleware: auth checks
    the token itself, against its own records (services/auth/credentials_admin.py)."""
    base = "/v1/accounts/{accountCode}"
    bearer = {"401": "no, an invalid or a revoked access token", "403": "a token of another account"}
    return [
        Route(
            "GET",
            base + "/api-keys",
            credentials.list_api_keys,
            "the account's API keys (never the keys)",
            public=True,
            responses=bearer,
        ),
        Route(
            "POST",
            base + "/api-keys",
            credentials.create_api_key,
            "a new API key, shown once",
            public=True,
            responses={"201": "the key", **bearer},
        ),
        Route(
            "DELETE",
            base + "/api-keys/{keyId}",
            credentials.revoke_api_key,
            "revoke an API key",
            public=True,
            responses={"204": "revoked", "404": "no such active key", **bearer},
        ),
        Route(
            "GET",
            base + "/clients",
            credentials.list_clients,
            "the account's OAuth clients",
            public=True,
            responses=bearer,
        ),
        Route(
            "POST",
            base + "/clients",
            credentials.create_client,
            "a new OAuth client, its secret shown once",
            public=True,
            responses={"201": "the client", **bearer},
        ),
        Route(
            "DELETE",
            base + "/clients/{clientId}",
            credentials.disable_client,
            "revoke (disable) an OAuth client: its tokens are refused everywhere",
            public=True,
            responses={"204": "disabled", "403": "the calling client itself", "404": "no such client"},
        ),
    ]
