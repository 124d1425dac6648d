"""Signing-key rotation rules: which key signs, which keys are published, when to rotate.

The newest key that is not retired signs. A retired key stays published until every token it can
have signed has expired: tokens live `access_ttl`, and a process may keep signing with a key it
loaded up to `cache` seconds after another process retired it, so the key is published until
`retired_at + cache + access_ttl + margin`.
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


def rotation_due(current: KeyRecord | None, now: datetime, max_age: int) -> bool:
    """True when there is no signing key, or (with automatic rotation on) it is older than `max_age`."""
    if current is None:
        return True
    return max_age > 0 and now - current.created_at >= timedelta(seconds=max_age)
