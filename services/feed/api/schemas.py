"""Request models, the only place the feed's wire names live (seed 001's hyphenated keys)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class IcsRequest(BaseModel):
    """Seed 001 "Create Calendar API V2" (documentation; validation is in domain/ics_request.py so each
    failure gets the seed's own error code)."""

    model_config = ConfigDict(populate_by_name=True)

    action: str = Field(description='"createcalendar" (case-insensitive)')
    event_title: str = Field(alias="event-title")
    event_description: str = Field(alias="event-description")
    event_location: str = Field(alias="event-location")
    event_start_datetime: str = Field(alias="event-start-datetime", description="ISO 8601")
    event_end_datetime: str = Field(alias="event-end-datetime", description="ISO 8601")
    event_timezone: str = Field(alias="event-timezone", description="tz database name (or a Windows id)")
    all_day_event: bool = Field(False, alias="all-day-event")
