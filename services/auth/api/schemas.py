"""Wire shapes of the auth endpoints (for the OpenAPI document; the OAuth bodies are form or JSON)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from shared.http import CaseInsensitiveModel


class TokenRequest(BaseModel):
    """`application/x-www-form-urlencoded` (RFC 6749) or JSON (as the seed sends it)."""

    grant_type: str = Field(description="client_credentials or refresh_token")
    refresh_token: str | None = Field(None, description="with grant_type=refresh_token")
    client_id: str | None = Field(None, description="only without an Authorization: Basic header")
    client_secret: str | None = Field(None, description="only without an Authorization: Basic header")


class TokenResponse(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    access_token: str
    token_type: str = "bearer"
    expires_in: int
    refresh_token: str | None = None
    as_client_id: str = Field(alias="as:client_id")
    issued: str = Field(alias=".issued", description="RFC 1123 date")
    expires: str = Field(alias=".expires", description="RFC 1123 date")


class OAuthErrorBody(BaseModel):
    error: str = Field(description="an RFC 6749 section 5.2 code")
    error_description: str | None = None


class TokenRequestWithToken(BaseModel):
    token: str
    token_type_hint: str | None = Field(None, description="access_token or refresh_token")
    client_id: str | None = None
    client_secret: str | None = None


class IntrospectionResponse(BaseModel):
    """RFC 7662; only `active` when the token is not active."""

    model_config = ConfigDict(extra="allow")

    active: bool
    token_type: str | None = None
    client_id: str | None = None
    sub: str | None = None
    exp: int | None = None
    iat: int | None = None
    account_id: str | None = None
    account_code: str | None = None


class Jwks(BaseModel):
    keys: list[dict[str, str]]


class ServerMetadata(BaseModel):
    """RFC 8414."""

    issuer: str
    token_endpoint: str
    jwks_uri: str
    introspection_endpoint: str
    revocation_endpoint: str
    grant_types_supported: list[str]
    token_endpoint_auth_methods_supported: list[str]
    introspection_endpoint_auth_methods_supported: list[str]
    revocation_endpoint_auth_methods_supported: list[str]
    response_types_supported: list[str]
    token_endpoint_auth_signing_alg_values_supported: list[str] | None = None


# --- console users (JSON bodies; errors in the contract's Error Model) ---------------------------


class SetPasswordRequest(CaseInsensitiveModel):
    token: str = Field(min_length=1, max_length=200, description="the one-time token of the set-password link")
    password: str = Field(max_length=1024)


class SetPasswordResponse(BaseModel):
    userId: str
    email: str
    accountCode: str


class LoginRequest(CaseInsensitiveModel):
    email: str = Field(max_length=1024)
    password: str = Field(max_length=1024)


class RefreshRequest(CaseInsensitiveModel):
    refresh_token: str = Field(alias="refreshToken", min_length=1, max_length=200)


class UserSession(BaseModel):
    accessToken: str
    tokenType: str
    expiresIn: int
    refreshToken: str
    refreshExpiresIn: int
    userId: str
    email: str
    accountId: str
    accountCode: str
