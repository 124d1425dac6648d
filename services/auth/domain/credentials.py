"""Client credentials and secrets: parsing HTTP Basic, making and hashing secrets, account codes.

Secrets here (client secrets, refresh tokens, API keys) are 256-bit random values, never chosen by
people, so a single SHA-256 is the right hash: a slow password hash (bcrypt, argon2) defends
low-entropy passwords against guessing and would only cost CPU on every token request here.
Comparisons of hashes use `hmac.compare_digest` so their timing says nothing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from urllib.parse import unquote

ACCOUNT_CODE = re.compile(r"[a-z0-9_-]{1,63}")


class MalformedCredentials(ValueError):
    """The Authorization header or the credential parameters are not well formed."""


@dataclass(frozen=True)
class ClientCredentials:
    client_id: str
    client_secret: str
    method: str  # client_secret_basic | client_secret_post


def parse_basic(header: str) -> ClientCredentials:
    """`Basic base64(client_id:client_secret)`, each part form-urlencoded first (RFC 6749 2.3.1).

    Hand-written because it is ten lines, and every malformed variant must become an OAuth error
    rather than an exception from a framework helper (aiohttp's BasicAuth.decode raises ValueError
    with no distinction and accepts non-strict base64).
    """
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "basic":
        raise MalformedCredentials("the Authorization header must use the Basic scheme")
    value = value.strip()
    if not value:
        raise MalformedCredentials("the Basic credentials are empty")
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedCredentials("the Basic credentials are not valid base64") from None
    try:
        text = decoded.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedCredentials("the Basic credentials are not valid UTF-8") from None
    client_id, colon, client_secret = text.partition(":")
    if not colon:
        raise MalformedCredentials("the Basic credentials lack the ':' between client id and secret")
    client_id, client_secret = unquote(client_id, errors="strict"), unquote(client_secret, errors="strict")
    if not client_id:
        raise MalformedCredentials("the Basic credentials have an empty client id")
    return ClientCredentials(client_id, client_secret, "client_secret_basic")


def hash_secret(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8")).digest()


def secret_matches(secret: str, stored_hash: bytes) -> bool:
    return hmac.compare_digest(hash_secret(secret), bytes(stored_hash))


def new_client_id(account_code: str) -> str:
    return f"{account_code}.{secrets.token_hex(6)}"


def new_client_secret() -> str:
    return secrets.token_urlsafe(32)


def new_refresh_token() -> str:
    return "rt_" + secrets.token_urlsafe(32)


def new_api_key() -> str:
    """Alphanumeric, as seed 001 describes its keys (`x-api-key`)."""
    return "kk" + secrets.token_hex(32)


def validate_account_code(code: str) -> str:
    if not ACCOUNT_CODE.fullmatch(code):
        raise ValueError(f"account code {code!r} is invalid: use 1-63 lowercase letters, digits, '-' or '_'")
    return code
