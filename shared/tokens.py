"""Access-token verification done locally: RFC 9068 JWTs checked against the auth service's JWKS.

The key set is cached and refetched when a token names an unknown `kid` (a rotation), at most once
per `min_refresh` seconds so a flood of forged kids cannot hammer the auth service.

Accepted signatures are ES256 and RS256, and of those only what the key set publishes: a key's
`alg`, or for a key without one the algorithm its type implies (EC P-256: ES256, RSA: RS256).
Symmetric keys and `none` are never accepted, whatever a token's header asks for.

A verified token's claims are cached per token until it expires (`VerifiedCache`): a client sends
the same access token with every request for its whole lifetime, and the signature check is most of
what verification costs. The cache never decides alone: the revocation denylist is checked on every
request, after it, so a revoked token (or one of a disabled client or account) is refused as soon as
the denylist knows, cached or not.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import aiohttp
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, RSAKey

from shared.denylist import Denylist
from shared.logging import get_logger

log = get_logger(__name__)

# The signature algorithms a Kalends access token may use (KALENDS_TOKEN_ALG picks which auth
# signs with); a key set narrows them further to what it publishes.
ALGORITHMS = ["ES256", "RS256"]
AUDIENCE = "kalends-api"
TOKEN_TYPE = "at+jwt"
LEEWAY = 30  # seconds of clock skew tolerated on exp/nbf
CACHE_SIZE = 10_000  # verified tokens remembered per process (well under a kilobyte each)
# Scopes a token may carry beyond its own account (`scope` claim, RFC 9068). Only auth's admin CLI
# grants one, to a platform client:
#   calendar-pages: read any account's calendars, tags and events and subscribe visitors to them
#   (the web service's public calendar pages), on the routes that accept it (shared.web.Route.scope).
CALENDAR_PAGES = "calendar-pages"
SCOPES = frozenset({CALENDAR_PAGES})


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
    scopes: frozenset[str] = frozenset()  # cross-account scopes (`scope`), see SCOPES


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
            scopes=frozenset(str(payload.get("scope") or "").split()) & SCOPES,
        )
    except (KeyError, TypeError, ValueError):
        raise InvalidToken("access token lacks required claims") from None


def key_algorithm(key: Any) -> str | None:
    """The algorithm a published key verifies, or None for a key no access token may use.

    A key's own `alg` wins; without one, its type decides (RSA: RS256, EC P-256: ES256). Symmetric
    (`oct`) keys map to nothing, so a public key can never be used as an HMAC secret.
    """
    declared = key.alg if isinstance(key, RSAKey | ECKey) else None
    if declared is not None:
        return str(declared) if declared in ALGORITHMS else None
    if isinstance(key, RSAKey):
        return "RS256"
    if isinstance(key, ECKey) and key.curve_name == "P-256":
        return "ES256"
    return None


def accepted_algorithms(keys: Iterable[Any]) -> list[str]:
    """What a token verified with `keys` may be signed with: the algorithms the key set publishes."""
    return sorted({alg for key in keys if (alg := key_algorithm(key)) is not None})


def verify_with_keys(
    token: str, keys: KeySet, issuer: str, *, now: float | None = None, leeway: int = LEEWAY
) -> AccessClaims:
    """Verify signature, type, issuer, audience and lifetime; pure, for the middleware and tests."""
    header = token_header(token)
    algorithm = header.get("alg") if header is not None else None
    if algorithm not in accepted_algorithms(keys):
        raise InvalidToken("access token rejected: its algorithm is not one the key set publishes")
    kid = header.get("kid") if header is not None else None
    if kid is not None:
        # The key the header names must itself be a key for that algorithm: no RSA key read as EC or
        # the other way round, whatever joserfc would make of it.
        try:
            named = keys.get_by_kid(str(kid))
        except (JoseError, ValueError):
            named = None
        if named is not None and key_algorithm(named) != algorithm:
            raise InvalidToken("access token rejected: its algorithm does not match its key")
    try:
        decoded = jwt.decode(token, keys, algorithms=[str(algorithm)])
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


def token_header(token: str) -> dict[str, Any] | None:
    """The JOSE header of a compact JWS, unverified (only to pick a key); None when garbled."""
    header_b64 = token.split(".", 1)[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(header_b64 + "=" * (-len(header_b64) % 4)))
    except ValueError:  # binascii.Error, JSONDecodeError and UnicodeDecodeError are all ValueErrors
        return None
    return header if isinstance(header, dict) else None


def token_kid(token: str) -> str | None:
    """The `kid` of a compact JWS header, unverified (only to pick a key); None when absent or garbled."""
    header = token_header(token)
    kid = header.get("kid") if header is not None else None
    return str(kid) if kid is not None else None


@dataclass(frozen=True)
class _Verified:
    claims: AccessClaims
    kid: str | None


class VerifiedCache:
    """Tokens whose signature and claims were verified, held until they expire: a bounded LRU.

    Keyed by the SHA-256 of the whole token, so only that exact token ever hits (a token with a
    changed header or payload is a different key and is verified from scratch), and the cache holds
    no bearer token in memory. An entry answers until `exp` (+ the same leeway verification
    allows) and only while the key that signed it is still published; the least recently used
    entry goes when the cache is full. Revocation is not its business: callers check the denylist
    after every hit.
    """

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self._size = size
        self._entries: OrderedDict[bytes, _Verified] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def key(token: str) -> bytes:
        return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()

    def get(self, key: bytes, now: float, published: set[str], leeway: int = LEEWAY) -> AccessClaims | None:
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        if entry.claims.expires_at + leeway < now or (entry.kid is not None and entry.kid not in published):
            del self._entries[key]
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return entry.claims

    def put(self, key: bytes, claims: AccessClaims, kid: str | None) -> None:
        if self._size <= 0:
            return
        self._entries[key] = _Verified(claims, kid)
        self._entries.move_to_end(key)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()


class JwksVerifier:
    """Verifies access tokens against the auth service's published key set, and refuses those the
    revocation `denylist` names (kept current by `lifecycle.token_verifier`)."""

    def __init__(
        self,
        auth_url: str,
        *,
        issuer: str | None = None,
        min_refresh: float = 10.0,
        max_age: float = 3600.0,
        cache_size: int = CACHE_SIZE,
        clock: Callable[[], float] = time.time,
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
        self.cache = VerifiedCache(cache_size)
        self._clock = clock

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _fetch(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
        async with self._session.get(self._jwks_url) as response:
            response.raise_for_status()
            document: Any = await response.json(content_type=None)
        self.install_key_set(document)
        self.fetches += 1
        log.info("jwks.fetched", kids=sorted(self._kids), algorithms=accepted_algorithms(self._keys or []))

    def install_key_set(self, document: Any) -> None:
        """Use this JWKS document from now on (what a fetch does; tests and benchmarks call it directly)."""
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise ValueError("the JWKS document has no 'keys' list")
        self._keys = KeySet.import_key_set(cast(Any, document))
        self._kids = {str(k.get("kid")) for k in document.get("keys", []) if isinstance(k, dict)}
        self._fetched_at = time.monotonic()

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
        """The token's claims, from the cache or verified now; refused when the denylist names it."""
        if self._keys is None or time.monotonic() - self._fetched_at > self._max_age:
            await self._refresh(force=False)
        cache_key = VerifiedCache.key(token)
        now = self._clock()
        claims = self.cache.get(cache_key, now, self._kids)
        if claims is None:
            claims = await self._verify_signed(token, now)
            self.cache.put(cache_key, claims, token_kid(token))
        # Every request, cached or not: revocations and disabled clients or accounts apply at once.
        refusal = self.denylist.refusal(
            jti=claims.token_id,
            family_id=claims.family_id,
            client_id=claims.client_id,
            account_id=claims.account_id,
            now=datetime.fromtimestamp(now, UTC),
        )
        if refusal is not None:
            raise InvalidToken(refusal)
        return claims

    async def _verify_signed(self, token: str, now: float) -> AccessClaims:
        kid = token_kid(token)
        if kid is not None and kid not in self._kids:
            await self._refresh(force=True)
        assert self._keys is not None
        if kid is not None and kid not in self._kids:
            raise InvalidToken("access token was signed by an unknown key")
        return verify_with_keys(token, self._keys, self.issuer, now=now)
