"""HTTP Basic credentials of protected feeds, checked against ingest's `sha256:<hex>` hash.

Feed passwords are random tokens ingest generates (never chosen by people), so a single SHA-256
is enough; comparisons are constant-time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

HASH_PREFIX = "sha256:"


def parse_basic(header: str) -> tuple[str, str] | None:
    """(username, password) of an `Authorization: Basic ...` header, or None when absent/malformed."""
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, sep, password = decoded.partition(":")
    if not sep:
        return None
    return username, password


def password_matches(password: str, stored_hash: str) -> bool:
    if not stored_hash.startswith(HASH_PREFIX):
        return False
    presented = HASH_PREFIX + hashlib.sha256(password.encode()).hexdigest()
    return hmac.compare_digest(presented, stored_hash)


def credentials_match(header: str, username: str | None, stored_hash: str) -> bool:
    parsed = parse_basic(header)
    if parsed is None:
        return False
    given_user, given_password = parsed
    user_ok = username is None or hmac.compare_digest(given_user.encode(), username.encode())
    return password_matches(given_password, stored_hash) and user_ok
