"""The ingest service's settings: the platform's, the body limit, and the key list for secrets at rest."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from services.ingest.services._base import Limits
from shared.crypto import SecretBox
from shared.settings import PlatformSettings, env_int, env_str, env_url


@dataclass(frozen=True)
class IngestSettings:
    platform: PlatformSettings
    # KALENDS_ENCRYPTION_KEYS: protected feeds' passwords are kept encrypted; ingest will not start without it.
    secrets: SecretBox
    # Requests larger than this are refused with 413 (a subscription with 100 manual events fits).
    max_body_bytes: int = 1024 * 1024
    # KALENDS_GEOIP_DB: a MaxMind database; subscriptions then get countryCode/geoCountry from ipAddress.
    geoip_db: str | None = None
    # Where ingest reaches the sync service (CalDAV subscribe, Google consent URLs): KALENDS_SYNC_URL,
    # else the public one.
    sync_url: str = "http://127.0.0.1:8085"
    # KALENDS_MAX_MANUAL_EVENTS_PER_SUBSCRIPTION and KALENDS_MAX_EVENTS_PER_CALENDAR (400 past them).
    limits: Limits = field(default_factory=Limits)
    # Google subscriptions are on when a client id is configured (sync holds the rest of Google's settings).
    google_enabled: bool = False

    @classmethod
    def from_platform(cls, platform: PlatformSettings, environ: Mapping[str, str] | None = None) -> IngestSettings:
        return cls(
            platform=platform,
            secrets=SecretBox.from_env(environ),
            max_body_bytes=env_int("KALENDS_INGEST_MAX_BODY", 1024 * 1024, environ, minimum=1024),
            geoip_db=env_str("KALENDS_GEOIP_DB", "", environ) or None,
            google_enabled=bool(env_str("KALENDS_GOOGLE_CLIENT_ID", "", environ).strip()),
            sync_url=env_url(
                "KALENDS_SYNC_URL",
                env_str("KALENDS_PUBLIC_SYNC_URL", cls.sync_url, environ),
                {"http", "https"},
                environ,
            ).rstrip("/"),
            limits=Limits(
                manual_events_per_subscription=env_int(
                    "KALENDS_MAX_MANUAL_EVENTS_PER_SUBSCRIPTION",
                    Limits.manual_events_per_subscription,
                    environ,
                    minimum=1,
                ),
                events_per_calendar=env_int(
                    "KALENDS_MAX_EVENTS_PER_CALENDAR", Limits.events_per_calendar, environ, minimum=1
                ),
            ),
        )
