"""Feed service settings: the platform's plus the feed's own KALENDS_* variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields

from shared.settings import PlatformSettings, censor_url, env_float, env_int, env_str, env_url


@dataclass(frozen=True)
class FeedSettings:
    platform: PlatformSettings
    # Where subscribers' unsubscribe pages live (served by ingest at /v1/unsubscribe/{id}).
    public_api_url: str = "http://127.0.0.1:8082"
    # HTTP processes sharing the port; read by shared.service as KALENDS_FEED_WORKERS.
    workers: int = 1
    # Bytes of rendered feeds each API process keeps in memory.
    cache_bytes: int = 256 * 1024 * 1024
    # Seconds between checks of cached versions against the database, behind LISTEN/NOTIFY.
    recheck_seconds: int = 5
    # Subscriptions of popular calendars each API process keeps as small rows (services/feed/directory.py).
    directory_rows: int = 250_000
    # A streaming replica the API reads feeds from while it is fresh (services/feed/replica.py);
    # empty: every read on KALENDS_DATABASE_URL.
    read_database_url: str = ""
    # How far behind the primary the replica may be, at most, to be read from.
    read_max_lag: float = 5.0

    @classmethod
    def from_env(cls, platform: PlatformSettings, environ: Mapping[str, str] | None = None) -> FeedSettings:
        return cls(
            platform=platform,
            public_api_url=env_url("KALENDS_PUBLIC_API_URL", cls.public_api_url, {"http", "https"}, environ).rstrip(
                "/"
            ),
            workers=env_int("KALENDS_FEED_WORKERS", default_workers(), environ, minimum=1),
            cache_bytes=env_int("KALENDS_FEED_CACHE_MB", 256, environ, minimum=1) * 1024 * 1024,
            recheck_seconds=env_int("KALENDS_FEED_RECHECK_SECONDS", 5, environ, minimum=1),
            directory_rows=env_int("KALENDS_FEED_DIRECTORY_ROWS", 250_000, environ, minimum=0),
            read_database_url=(
                env_url("KALENDS_FEED_READ_DATABASE_URL", "", {"postgresql", "postgres"}, environ)
                if env_str("KALENDS_FEED_READ_DATABASE_URL", "", environ)
                else ""
            ),
            read_max_lag=env_float("KALENDS_FEED_READ_MAX_LAG_SECONDS", cls.read_max_lag, environ),
        )

    def for_log(self) -> dict[str, object]:
        out: dict[str, object] = {}
        for field in fields(self):
            value = getattr(self, field.name)
            if field.name == "platform":
                continue
            out[field.name] = censor_url(value) if field.name.endswith("_url") else value
        return out


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))
