"""An event's fields as validated and normalised for storage and publication (EventData's names)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from services.ingest.domain.recurrence import validate_recurrence
from services.ingest.domain.times import event_times
from services.ingest.domain.timezones import require_windows_id, to_iana


@dataclass(frozen=True)
class EventDraft:
    """What a merchant sent for one event, names already mapped from the wire."""

    title: str
    start: str
    end: str | None = None
    timezone: str | None = None
    all_day: bool = False
    description: str = ""
    location: str = ""
    notify_before: int | None = None
    time_zone_tag: str | None = None
    url: str | None = None
    status: str = "confirmed"
    transparency: str = "opaque"
    class_: str = "public"
    categories: list[str] = field(default_factory=list)
    color: str | None = None
    organizer: dict[str, Any] | None = None
    attendees: list[dict[str, Any]] = field(default_factory=list)
    conference: str | None = None
    image: str | None = None
    recurrence: list[str] = field(default_factory=list)
    notify: bool = False


def event_fields(draft: EventDraft, *, default_timezone: str, tag_ids: list[uuid.UUID]) -> dict[str, Any]:
    """EventData's content fields (no ids, sequence or timestamps); 400s name the field at fault."""
    timezone = to_iana(draft.timezone, "timezone") if draft.timezone else default_timezone
    times = event_times(draft.start, draft.end, draft.all_day)
    return {
        "title": draft.title,
        "description": draft.description,
        "location": draft.location,
        "start": times.start,
        "end": times.end,
        "timezone": timezone,
        "all_day": times.all_day,
        "notify_before": draft.notify_before,
        "tag_ids": tag_ids,
        "time_zone_tag": require_windows_id(draft.time_zone_tag, "timeZoneTag") if draft.time_zone_tag else None,
        "url": draft.url,
        "status": draft.status,
        "transparency": draft.transparency,
        "class_": draft.class_,
        "categories": list(draft.categories),
        "color": draft.color,
        "organizer": draft.organizer,
        "attendees": list(draft.attendees),
        "conference": draft.conference,
        "image": draft.image,
        "notify": draft.notify,
        "recurrence": validate_recurrence(
            draft.recurrence, start=times.start, all_day=times.all_day, timezone=timezone
        ),
    }
