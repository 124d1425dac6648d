"""The signing keys of access tokens: created at first start, rotated by age or by command.

Keys live in PostgreSQL so every auth process signs with the same newest key and publishes the
same set. A process caches the key it signs with for `signing_key_cache` seconds; the rotation
rules in `domain.keys` keep a retired key published long enough to cover that cache.

The private half is stored encrypted with KALENDS_ENCRYPTION_KEYS (`SecretBox`), the public half in
the clear. `seal_signing_keys` runs at start: it encrypts rows stored before that, and re-encrypts
under the first key what an older key sealed.

Keys are ES256 (EC P-256) or RS256 (RSA 2048), as KALENDS_TOKEN_ALG says. Switching the setting
rotates at the next start: the new key signs, the old one stays in the JWKS until every token it
signed has expired, so verifiers accept both during the switch. Every auth process of a deployment
should run with the same setting (while two disagree, each rotates to its own algorithm when it
reloads its signer, which keeps tokens valid but churns keys).
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import asyncpg
import pydantic_core
from joserfc.jwk import ECKey, KeySet, RSAKey
from joserfc.jws import JWSAlgModel, JWSRegistry

from services.auth.adapters import repository as repo
from services.auth.domain import keys as rules
from services.auth.domain.tokens import access_header
from services.auth.settings import AuthSettings
from shared.crypto import SecretBox
from shared.logging import get_logger

log = get_logger(__name__)

KEY_BITS = 2048
SigningKey = RSAKey | ECKey


def generate_key(algorithm: str = "RS256") -> SigningKey:
    key: SigningKey
    if algorithm == "ES256":
        key = ECKey.generate_key("P-256", parameters={"use": "sig", "alg": "ES256"}, private=True)
    elif algorithm == "RS256":
        key = RSAKey.generate_key(KEY_BITS, parameters={"use": "sig", "alg": "RS256"}, private=True)
    else:
        raise ValueError(f"no signing keys for algorithm {algorithm!r}")
    key.ensure_kid()  # the RFC 7638 thumbprint
    return key


def import_signing_key(private_jwk: dict[str, Any]) -> SigningKey:
    if private_jwk.get("kty") == "EC":
        return ECKey.import_key(cast(Any, private_jwk))
    return RSAKey.import_key(cast(Any, private_jwk))


async def ensure_signing_key(conn: asyncpg.Connection, settings: AuthSettings, *, force: bool = False) -> str:
    """The kid that signs now; creates the first key, or a new one when rotation is due (or forced).

    Race-safe: an advisory lock serialises processes, and each decides again under the lock.
    """
    async with conn.transaction():
        await repo.lock_signing_keys(conn)
        now = datetime.now(UTC)
        records = [repo.key_record(r) for r in await repo.signing_keys(conn)]
        current = rules.signing_key(records)
        due = rules.rotation_due(current, now, settings.signing_key_max_age, settings.token_algorithm)
        if current is not None and not force and not due:
            return current.kid
        key = await asyncio.to_thread(generate_key, settings.token_algorithm)
        assert key.kid is not None
        private = key.as_dict(private=True)
        sealed = settings.secret_box.encrypt(json.dumps(private))
        await repo.insert_signing_key(conn, key.kid, public_jwk(private), sealed, now)
        expires = rules.retirement_expiry(now, access_ttl=settings.access_token_ttl, cache=settings.signing_key_cache)
        for record in records:
            if record.retired_at is None:
                await repo.retire_signing_key(conn, record.kid, now, expires)
        log.info(
            "signing_key.created",
            kid=key.kid,
            algorithm=settings.token_algorithm,
            retired=[r.kid for r in records if r.retired_at is None],
        )
        return key.kid


# RFC 7518 6.3.1 (RSA) and 6.2.1 (EC) public members: never `d`, `p`, `q` or the CRT values.
PUBLIC_MEMBERS = ("kty", "kid", "use", "alg", "crv", "x", "y", "n", "e")


def public_jwk(private_jwk: dict[str, Any]) -> dict[str, Any]:
    """The public half of an RSA or EC JWK (public members only): no key import per JWKS request."""
    return {name: private_jwk[name] for name in PUBLIC_MEMBERS if name in private_jwk}


def open_private_jwk(box: SecretBox, row: asyncpg.Record) -> dict[str, Any]:
    """A key row's private JWK: decrypted, or in the clear for a row not sealed yet."""
    if row["private_jwk_encrypted"] is not None:
        opened: dict[str, Any] = json.loads(box.decrypt(row["private_jwk_encrypted"]))
        return opened
    clear: dict[str, Any] = row["private_jwk"]
    return clear


async def seal_signing_keys(conn: asyncpg.Connection, box: SecretBox) -> int:
    """Every private key encrypted under the first key, no plaintext left; returns keys changed."""
    changed = 0
    async with conn.transaction():
        await repo.lock_signing_keys(conn)
        for row in await repo.signing_keys_to_seal(conn):
            encrypted = row["private_jwk_encrypted"]
            if encrypted is not None and row["private_jwk"] is None and box.is_current(encrypted):
                continue
            private = open_private_jwk(box, row)
            public = row["public_jwk"] or public_jwk(private)
            await repo.store_sealed_key(conn, row["kid"], public, box.encrypt(json.dumps(private)))
            changed += 1
    if changed:
        log.info("signing_keys.sealed", keys=changed)
    return changed


def _b64(raw: bytes) -> bytes:
    return base64.urlsafe_b64encode(raw).rstrip(b"=")


@dataclass(frozen=True)
class Signer:
    """The key access tokens are signed with, and the JWS compact serialisation of a token.

    `sign` writes the compact form itself and leaves the signature to joserfc's JWA algorithm
    (ES256's raw r||s, RS256's PKCS#1 v1.5): `joserfc.jwt.encode` checks and serialises the same
    header, registry and key on every call, which cost a grant about as much CPU again as the ES256
    signature itself, for a header and a key that do not change between grants. The tokens are the
    same JWS (tests verify them with joserfc, authlib and shared.tokens).
    """

    kid: str
    key: SigningKey
    algorithm: str
    header: bytes = field(init=False, repr=False)  # the encoded JOSE header, the same for every token
    jwa: JWSAlgModel = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        algorithm = JWSRegistry.algorithms[self.algorithm]
        algorithm.check_key(self.key)  # once here rather than per token
        header = json.dumps(access_header(self.kid, self.algorithm), separators=(",", ":")).encode()
        object.__setattr__(self, "header", _b64(header))
        object.__setattr__(self, "jwa", algorithm)

    def sign(self, claims: dict[str, Any]) -> str:
        """A compact JWS (RFC 7515 section 7.1) of `claims` under this key's access-token header."""
        signing_input = self.header + b"." + _b64(pydantic_core.to_json(claims))
        signature = self.jwa.sign(signing_input, self.key)
        return (signing_input + b"." + _b64(signature)).decode("ascii")


class KeyStore:
    """One process's view of the signing keys: the one to sign with, and the ones to verify with."""

    def __init__(self, pool: asyncpg.Pool, settings: AuthSettings) -> None:
        self._pool = pool
        self._settings = settings
        self._signer: Signer | None = None
        self._signer_loaded = 0.0
        self._verify: KeySet | None = None
        self._verify_kids: set[str] = set()
        self._verify_loaded = 0.0
        self._lock = asyncio.Lock()

    async def _load(self) -> list[asyncpg.Record]:
        async with self._pool.acquire() as conn:
            return await repo.signing_keys(conn)

    async def signer(self) -> Signer:
        if self._signer is not None and time.monotonic() - self._signer_loaded < self._settings.signing_key_cache:
            return self._signer
        async with self._lock:
            if self._signer is None or time.monotonic() - self._signer_loaded >= self._settings.signing_key_cache:
                async with self._pool.acquire() as conn:
                    kid = await ensure_signing_key(conn, self._settings)
                    row = await repo.private_signing_key(conn, kid)
                assert row is not None
                jwk = open_private_jwk(self._settings.secret_box, row)
                algorithm = str(jwk.get("alg") or ("ES256" if jwk.get("kty") == "EC" else "RS256"))
                self._signer = Signer(kid, import_signing_key(jwk), algorithm)
                self._signer_loaded = time.monotonic()
        return self._signer

    async def public_jwks(self) -> dict[str, Any]:
        """Every key whose tokens may still be valid, without private parts."""
        rows = await self._load()
        now = datetime.now(UTC)
        by_kid = {r["kid"]: r for r in rows}
        published = rules.published_keys([repo.key_record(r) for r in rows], now)
        return {"keys": [by_kid[k.kid]["public_jwk"] for k in published]}

    async def verification_keys(self, kid: str | None) -> KeySet:
        """Published keys, reloaded when older than a few seconds or missing `kid`."""
        stale = time.monotonic() - self._verify_loaded > 5.0
        if self._verify is None or stale or (kid is not None and kid not in self._verify_kids):
            document = await self.public_jwks()
            self._verify = KeySet.import_key_set(document)  # type: ignore[arg-type]
            self._verify_kids = {str(k["kid"]) for k in document["keys"]}
            self._verify_loaded = time.monotonic()
        return self._verify

    def forget(self) -> None:
        """Drop the cached signer (after a rotation in this process)."""
        self._signer = None
