"""The catalog's answers as models, for /openapi.json (schemas.py builds the bodies themselves;
tests/unit/ingest/test_responses.py holds each body to its model, extra names forbidden)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

WARNINGS: Any = Field(
    default_factory=list,
    description="One sentence per request field that was not understood and so ignored, "
    "e.g. \"unknown field 'body' ignored\"",
)


class Answer(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class SubscribePageAnswer(Answer):
    """What the calendar's public page (the web service) asks visitors besides their choices."""

    email: str = Field(description="off, optional or required")
    marketing_opt_in: str | None = Field(description="the marketing opt-in checkbox's label; null: no checkbox")
    additional_opt_in: str | None = Field(description="the additional opt-in checkbox's label; null: no checkbox")


class CalendarAnswer(Answer):
    id: str
    code: str
    name: str
    description: str | None
    image: str | None
    color: str | None
    timezone: str
    protected: bool
    refresh_interval: str | None
    single_subscription_per_subscriber: bool
    subscribe_page: SubscribePageAnswer
    version: int
    created_at: str | None
    updated_at: str | None
    warnings: list[str] = WARNINGS


class TagAnswer(Answer):
    id: str
    name: str
    external_id: str | None
    version: int
    warnings: list[str] = WARNINGS


class PersonAnswer(Answer):
    name: str | None = None
    email: str
    role: str | None = None
    rsvp: bool | None = None
    partstat: str | None = None


class EventAnswer(Answer):
    id: str
    external_id: str | None
    title: str
    description: str
    location: str
    start: str
    end: str
    timezone: str
    all_day_event: bool
    notify_before: int | None
    tags: list[str]
    time_zone_tag: str | None
    url: str | None
    status: str
    transparency: str
    class_: str = Field(alias="class")
    categories: list[str]
    color: str | None
    organizer: PersonAnswer | None
    attendees: list[PersonAnswer]
    conference: str | None
    image: str | None
    recurrence: list[str]
    notify: bool = False
    sequence: int
    created_at: str | None
    updated_at: str | None
    warnings: list[str] = WARNINGS
