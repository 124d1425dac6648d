"""Access-token verification done locally: RFC 9068 JWTs checked against the auth service's JWKS.

The key set is cached and refetched when a token names an unknown `kid` (a rotation), at most once
per `min_refresh` seconds so a flood of forged kids cannot hammer the auth service.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from dataclasses import dataclass
from typing import Any, cast

import aiohttp
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from shared.denylist import Denylist
from shared.logging import get_logger

log = get_logger(__name__)

ALGORITHMS = ["RS256"]
AUDIENCE = "kalends-api"
TOKEN_TYPE = "at+jwt"


class InvalidToken(Exception):
    """The token is not one of ours, or no longer valid. The message is safe to show."""


class KeySetUnavailable(InvalidToken):
    """No key set could be fetched yet: tokens cannot be checked (a 503, not the client's fault)."""


@dataclass(frozen=True)
class AccessClaims:
    subject: str
    client_id: str
    account_id: str
    account_code: str
    token_id: str
    expires_at: int
    family_id: str | None = None  # the grant the token descends from (`sid`)


def claims_from_payload(payload: dict[str, Any]) -> AccessClaims:
    try:
        return AccessClaims(
            subject=str(payload["sub"]),
            client_id=str(payload["client_id"]),
            account_id=str(payload["account_id"]),
            account_code=str(payload["account_code"]),
            token_id=str(payload["jti"]),
            expires_at=int(payload["exp"]),
            family_id=str(payload["sid"]) if payload.get("sid") is not None else None,
        )
    except (KeyError, TypeError, ValueError):
        raise InvalidToken("access token lacks required claims") from None


def verify_with_keys(
    token: str, keys: KeySet, issuer: str, *, now: float | None = None, leeway: int = 30
) -> AccessClaims:
    """Verify signature, type, issuer, audience and lifetime; pure, for the middleware and tests."""
    try:
        decoded = jwt.decode(token, keys, algorithms=ALGORITHMS)
    except (JoseError, ValueError) as exc:
        raise InvalidToken(f"access token rejected: {type(exc).__name__}") from None
    if str(decoded.header.get("typ", "")).lower() not in (TOKEN_TYPE, "application/at+jwt"):
        raise InvalidToken("token is not an access token")
    claims = decoded.claims
    current = time.time() if now is None else now
    if claims.get("iss") != issuer:
        raise InvalidToken("access token was issued by another server")
    aud = claims.get("aud")
    if aud != AUDIENCE and not (isinstance(aud, list) and AUDIENCE in aud):
        raise InvalidToken("access token is not for this API")
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or exp + leeway < current:
        raise InvalidToken("access token has expired")
    nbf = claims.get("nbf", claims.get("iat"))
    if isinstance(nbf, int | float) and nbf - leeway > current:
        raise InvalidToken("access token is not valid yet")
    return claims_from_payload(claims)


def token_kid(token: str) -> str | None:
    """The `kid` of a compact JWS header, unverified (only to pick a key); None when absent or garbled."""
    header_b64 = token.split(".", 1)[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(header_b64 + "=" * (-len(header_b64) % 4)))
    except ValueError:  # binascii.Error, JSONDecodeError and UnicodeDecodeError are all ValueErrors
        return None
    kid = header.get("kid") if isinstance(header, dict) else None
    return str(kid) if kid is not None else None


class JwksVerifier:
    """Verifies access tokens against the auth service's published key set, and refuses those the
    revocation `denylist` names (kept current by `lifecycle.token_verifier`)."""

    def __init__(
        self, auth_url: str, *, issuer: str | None = None, min_refresh: float = 10.0, max_age: float = 3600.0
    ) -> None:
        self._jwks_url = f"{auth_url.rstrip('/')}/.well-known/jwks.json"
        self.issuer = issuer or auth_url.rstrip("/")
        self._keys: KeySet | None = None
        self._kids: set[str] = set()
        self._fetched_at = 0.0
        self._attempted_at = -1e9
        self.fetches = 0  # successful fetches, for metrics and tests
        self._min_refresh = min_refresh
        self._max_age = max_age
        self._lock = asyncio.Lock()
        self._session: aiohttp.ClientSession | None = None
        self.denylist = Denylist()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _fetch(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
        async with self._session.get(self._jwks_url) as response:
            response.raise_for_status()
            document: Any = await response.json(content_type=None)
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise ValueError("the JWKS document has no 'keys' list")
        self._keys = KeySet.import_key_set(cast(Any, document))
        self._kids = {str(k.get("kid")) for k in document.get("keys", []) if isinstance(k, dict)}
        self._fetched_at = time.monotonic()
        self.fetches += 1
        log.info("jwks.fetched", kids=sorted(self._kids))

    async def _refresh(self, *, force: bool) -> None:
        async with self._lock:
            now = time.monotonic()
            if self._keys is not None:
                age = now - self._fetched_at
                if age < self._min_refresh or (not force and age < self._max_age):
                    return  # fresh enough, or a concurrent request just refetched
                if now - self._attempted_at < self._min_refresh:
                    return  # the last attempt failed moments ago: keep the keys we have
            elif now - self._attempted_at < min(self._min_refresh, 1.0):
                raise KeySetUnavailable("cannot verify tokens right now: the key set is unavailable")
            self._attempted_at = now
            try:
                await self._fetch()
            except (aiohttp.ClientError, TimeoutError, ValueError, JoseError) as exc:
                log.warning("jwks.fetch_failed", url=self._jwks_url, error=repr(exc))
                if self._keys is None:
                    raise KeySetUnavailable("cannot verify tokens right now: the key set is unavailable") from None

    async def verify(self, token: str) -> AccessClaims:
        kid = token_kid(token)
        if self._keys is None or time.monotonic() - self._fetched_at > self._max_age:
            await self._refresh(force=False)
        elif kid is not None and kid not in self._kids:
            await self._refresh(force=True)
        assert self._keys is not None
        if kid is not None and kid not in self._kids:
            raise InvalidToken("access token was signed by an unknown key")
        claims = verify_with_keys(token, self._keys, self.issuer)
        refusal = self.denylist.refusal(
            jti=claims.token_id, family_id=claims.family_id, client_id=claims.client_id, account_id=claims.account_id
        )
        if refusal is not None:
            raise InvalidToken(refusal)
        return claims
