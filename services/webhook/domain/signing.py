"""Standard Webhooks signatures (https://www.standardwebhooks.com): secrets and `webhook-signature`.

Hand-written because it is a few lines of HMAC and the `standardwebhooks` package's signer takes a
datetime and a str body; the tests verify every signature with that package.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets
from collections.abc import Iterable

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32


def new_secret() -> str:
    """`whsec_` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


@functools.lru_cache(maxsize=1024)
def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """One `v1,<base64 HMAC-SHA256 of "id.timestamp.body">` signature."""
    mac = hmac.new(_key(secret), f"{message_id}.{timestamp}.".encode(), hashlib.sha256)
    mac.update(body)  # fed in two parts: no copy of the body to prepend the prefix
    return "v1," + base64.b64encode(mac.digest()).decode()


def signature_header(keys: Iterable[str], message_id: str, timestamp: int, body: bytes) -> str:
    """Space-separated signatures, one per secret (the new and, during a rotation, the previous)."""
    return " ".join(sign(secret, message_id, timestamp, body) for secret in keys)
