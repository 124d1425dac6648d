"""The ingest service's settings: the platform's, plus where feeds are served and the body limit."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from services.ingest.services._base import Limits
from shared.settings import PlatformSettings, env_int


@dataclass(frozen=True)
class IngestSettings:
    platform: PlatformSettings
    # Requests larger than this are refused with 413 (a subscription with 100 manual events fits).
    max_body_bytes: int = 1024 * 1024
    # KALENDS_MAX_MANUAL_EVENTS_PER_SUBSCRIPTION and KALENDS_MAX_EVENTS_PER_CALENDAR (400 past them).
    limits: Limits = field(default_factory=Limits)

    @classmethod
    def from_platform(cls, platform: PlatformSettings, environ: Mapping[str, str] | None = None) -> IngestSettings:
        return cls(
            platform=platform,
            max_body_bytes=env_int("KALENDS_INGEST_MAX_BODY", 1024 * 1024, environ, minimum=1024),
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
