"""Signing-key rotation rules: which key signs, which keys are published, when to rotate.

The newest key that is not retired signs; a key of another algorithm than the configured one is
rotated away (KALENDS_TOKEN_ALG changed), and stays published like any retired key. A retired key
stays published until every token it can have signed has expired: tokens live `access_ttl`, and a
process may keep signing with a key it loaded up to `cache` seconds after another process retired
it, so the key is published until `retired_at + cache + access_ttl + margin`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

# Clock skew between auth processes and verifiers (shared.tokens allows 30 s of leeway).
MARGIN = timedelta(seconds=60)


@dataclass(frozen=True)
class KeyRecord:
    kid: str
    created_at: datetime
    retired_at: datetime | None = None
    expires_at: datetime | None = None
    algorithm: str = "RS256"  # keys made before ES256 existed carry no `alg` and are RSA


def signing_key(keys: Sequence[KeyRecord]) -> KeyRecord | None:
    """The newest key that has not been retired."""
    active = [k for k in keys if k.retired_at is None]
    return max(active, key=lambda k: (k.created_at, k.kid), default=None)


def published_keys(keys: Sequence[KeyRecord], now: datetime) -> list[KeyRecord]:
    """Keys whose tokens may still be valid somewhere, newest first."""
    live = [k for k in keys if k.expires_at is None or k.expires_at > now]
    return sorted(live, key=lambda k: (k.created_at, k.kid), reverse=True)


def retirement_expiry(retired_at: datetime, *, access_ttl: int, cache: int) -> datetime:
    """When a key retired at `retired_at` may stop being published."""
    return retired_at + timedelta(seconds=access_ttl + cache) + MARGIN


def rotation_due(current: KeyRecord | None, now: datetime, max_age: int, algorithm: str | None = None) -> bool:
    """True when there is no signing key, when it is not for `algorithm` (the configured one), or
    (with automatic rotation on) when it is older than `max_age`."""
    if current is None:
        return True
    if algorithm is not None and current.algorithm != algorithm:
        return True
    return max_age > 0 and now - current.created_at >= timedelta(seconds=max_age)
