"""OAuth 2.0 error responses (RFC 6749 section 5.2), built on authlib's error classes.

authlib's classes carry the registered codes and JSON/no-store headers; ours add the realm to
`WWW-Authenticate`, a 429 for repeated failures, and ASCII-safe descriptions.
"""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc6749 import errors as rfc6749

REALM = "kalends"


def _ascii(text: str) -> str:
    """RFC 6749 limits error_description to printable ASCII without `"` and `\\`."""
    return "".join(c if 0x20 <= ord(c) <= 0x7E and c not in '"\\' else "?" for c in text)


class OAuthError(Exception):
    """An error answered with an RFC 6749 body: `{"error", "error_description"}`."""

    def __init__(self, error: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{error.error}: {error.description}")
        self.error = error
        self.extra_headers = headers or {}

    @property
    def code(self) -> str:
        return str(self.error.error)

    @property
    def status(self) -> int:
        return int(self.error.status_code)

    def body(self) -> dict[str, str]:
        return {key: str(value) for key, value in self.error.get_body()}

    def headers(self) -> dict[str, str]:
        headers = dict(self.error.get_headers())
        headers.update(self.extra_headers)
        return headers


class _InvalidClient(rfc6749.InvalidClientError):
    status_code = 401

    def get_headers(self) -> list[tuple[str, str]]:
        headers: list[tuple[str, str]] = [h for h in super().get_headers() if h[0] != "WWW-Authenticate"]
        headers.append(("WWW-Authenticate", f'Basic realm="{REALM}", error="invalid_client"'))
        return headers


def invalid_request(description: str) -> OAuthError:
    return OAuthError(rfc6749.InvalidRequestError(description=_ascii(description)))


def invalid_client(description: str) -> OAuthError:
    return OAuthError(_InvalidClient(description=_ascii(description)))


def invalid_grant(description: str) -> OAuthError:
    return OAuthError(rfc6749.InvalidGrantError(description=_ascii(description)))


def unauthorized_client(description: str) -> OAuthError:
    return OAuthError(rfc6749.UnauthorizedClientError(description=_ascii(description)))


def unsupported_grant_type(grant_type: str) -> OAuthError:
    error = rfc6749.UnsupportedGrantTypeError(_ascii(grant_type)[:64])
    error.description = error.get_error_description()
    return OAuthError(error)


def too_many_failures(retry_after: int) -> OAuthError:
    """Repeated failed authentications: 429 with Retry-After. RFC 6749 has no code for this; the
    body keeps its shape with a descriptive code so OAuth client libraries still parse it."""
    error = rfc6749.OAuth2Error(
        description=f"too many failed client authentications; retry after {retry_after} seconds",
        status_code=429,
        error="too_many_requests",
    )
    return OAuthError(error, headers={"Retry-After": str(retry_after)})
