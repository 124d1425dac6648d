"""Seed 002's channel-finder extras of calendarParams, kept with a subscription's analytics.

The webcal and google examples send `ClickId`, `SourceId`, `NetworkDevice`, `StationNum`,
`StationName`, `ChannelFinderLineUpId` and `SubscriptionPlatformType`; they are stored as given and
shown by Get Subscription Details in camelCase, beside `countryCode`/`geoCountry` (from `ipAddress`
when a GeoIP database is configured).
"""

from __future__ import annotations

from pydantic import BaseModel, Field
from pydantic.alias_generators import to_camel

EXTRA_FIELDS = (
    "click_id",
    "source_id",
    "network_device",
    "station_num",
    "station_name",
    "channel_finder_line_up_id",
    "subscription_platform_type",
)
# (wire name in GET, key in the stored details), after SubscribeBody's own analytics.
EXTRA_ANALYTICS_NAMES: tuple[tuple[str, str], ...] = (
    *((to_camel(name), name) for name in EXTRA_FIELDS),
    ("countryCode", "country_code"),
    ("geoCountry", "geo_country"),
)


class WebcalExtras(BaseModel):
    """Fields mixed into SubscribeBody (which gives them camelCase, case-insensitive names)."""

    click_id: str | None = Field(default=None, max_length=255)
    source_id: str | None = Field(default=None, max_length=255)
    network_device: str | None = Field(default=None, max_length=255)
    station_num: str | None = Field(default=None, max_length=255)
    station_name: str | None = Field(default=None, max_length=255)
    channel_finder_line_up_id: str | None = Field(default=None, max_length=255)
    subscription_platform_type: str | None = Field(default=None, max_length=255)

    def extras(self) -> dict[str, str]:
        """The extras that were sent, by their stored names."""
        return {name: value for name in EXTRA_FIELDS if (value := getattr(self, name)) is not None}
