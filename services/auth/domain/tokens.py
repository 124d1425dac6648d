"""What a token grant produces: access-token claims (RFC 9068) and the seed's token response."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import format_datetime
from functools import lru_cache
from typing import Any

from shared.tokens import AUDIENCE, TOKEN_TYPE

# Claim naming the token family (the grant an access token descends from), so revoking a family
# also deactivates its access tokens at introspection without a row per access token.
FAMILY_CLAIM = "sid"


@dataclass(frozen=True)
class Grantee:
    """The authenticated client and its account: who a token is issued to."""

    client_id: str
    account_id: uuid.UUID
    account_code: str
    # Scopes beyond the client's own account (granted by the admin CLI only; shared.tokens.SCOPES).
    scopes: tuple[str, ...] = ()


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    refresh_token: str | None
    client_id: str
    issued_at: datetime
    expires_at: datetime

    @property
    def expires_in(self) -> int:
        return int((self.expires_at - self.issued_at).total_seconds())


# Grants are issued at whole seconds (services._now), so the grants of one second share their two
# dates: formatting them once a second takes email.utils off the grant's path.
@lru_cache(maxsize=256)
def http_date(moment: datetime) -> str:
    """RFC 1123 date in GMT, as the seed shows: `Sun, 06 Dec 2015 23:53:00 GMT`."""
    return format_datetime(moment.replace(microsecond=0), usegmt=True)


def access_claims(
    grantee: Grantee, *, issuer: str, issued_at: datetime, ttl: int, jti: uuid.UUID, family_id: uuid.UUID
) -> dict[str, Any]:
    """RFC 9068 claims; `sub` is the client, as section 2.2 asks for grants without a resource owner."""
    iat = int(issued_at.timestamp())
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": AUDIENCE,
        "sub": grantee.client_id,
        "client_id": grantee.client_id,
        "account_id": str(grantee.account_id),
        "account_code": grantee.account_code,
        "iat": iat,
        "exp": iat + ttl,
        "jti": str(jti),
        FAMILY_CLAIM: str(family_id),
    }
    if grantee.scopes:
        claims["scope"] = " ".join(grantee.scopes)  # RFC 9068 section 2.2.3
    return claims


def access_header(kid: str, algorithm: str = "RS256") -> dict[str, str]:
    return {"alg": algorithm, "typ": TOKEN_TYPE, "kid": kid}


def token_response(tokens: IssuedTokens) -> dict[str, Any]:
    """Exactly the seed's fields, in the seed's order."""
    body: dict[str, Any] = {
        "access_token": tokens.access_token,
        "token_type": "bearer",
        "expires_in": tokens.expires_in,
    }
    if tokens.refresh_token is not None:
        body["refresh_token"] = tokens.refresh_token
    body["as:client_id"] = tokens.client_id
    body[".issued"] = http_date(tokens.issued_at)
    body[".expires"] = http_date(tokens.expires_at)
    return body


def lifetime_end(start: datetime, seconds: int) -> datetime:
    return start + timedelta(seconds=seconds)
