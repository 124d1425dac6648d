"""The sync service's settings: the platform's plus where it is reached, its push pool and SSRF switch."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from shared.settings import PlatformSettings, env_bool, env_float, env_int, env_url


@dataclass(frozen=True)
class SyncSettings:
    platform: PlatformSettings = field(default_factory=PlatformSettings)
    # The public base of this service (Google's redirect_uri is built on it).
    public_sync_url: str = "http://127.0.0.1:8085"
    # CalDAV URLs may resolve to loopback or private addresses (development and tests only).
    allow_private: bool = False
    # Subscriptions reconciled at once by one worker: a fan-out to many subscribers is spread over
    # this pool instead of bursting, and a slow remote user holds one slot, not the queue.
    concurrency: int = 32
    # Seconds for one HTTP exchange with a provider.
    timeout: float = 15.0
    # Backoff after a transient failure: base * 2**failures seconds with jitter, at most `backoff_max`.
    backoff_base: float = 1.0
    backoff_max: float = 300.0
    # How long a claimed subscription is held before another worker may take it over.
    lease: float = 120.0
    # Seconds between looks at the queue when no notification came (NOTIFY wakes the engine sooner).
    poll_interval: float = 1.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SyncSettings:
        return cls(
            platform=PlatformSettings.from_env(environ),
            public_sync_url=env_url("KALENDS_PUBLIC_SYNC_URL", cls.public_sync_url, {"http", "https"}, environ).rstrip(
                "/"
            ),
            allow_private=env_bool("KALENDS_SYNC_ALLOW_PRIVATE", False, environ),
            concurrency=env_int("KALENDS_SYNC_CONCURRENCY", 32, environ, minimum=1),
            timeout=env_float("KALENDS_SYNC_TIMEOUT", 15.0, environ),
            backoff_base=env_float("KALENDS_SYNC_BACKOFF_BASE", 1.0, environ),
            backoff_max=env_float("KALENDS_SYNC_BACKOFF_MAX", 300.0, environ),
            lease=env_float("KALENDS_SYNC_LEASE", 120.0, environ),
            poll_interval=env_float("KALENDS_SYNC_POLL_INTERVAL", 1.0, environ),
        )

    def for_log(self) -> dict[str, object]:
        return {
            **self.platform.for_log(),
            "public_sync_url": self.public_sync_url,
            "allow_private": self.allow_private,
            "concurrency": self.concurrency,
            "timeout": self.timeout,
            "backoff_base": self.backoff_base,
            "backoff_max": self.backoff_max,
        }
