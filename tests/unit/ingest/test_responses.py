"""The catalog's answers match the models /openapi.json documents, warnings included."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from services.ingest.api import bodies, schemas
from services.ingest.api.responses import CalendarAnswer, EventAnswer, TagAnswer
from shared.messages import EventData

WHEN = datetime(2026, 2, 1, 12, 0, tzinfo=UTC)


def test_calendar_tag_and_event_answers_validate_against_their_documented_models() -> None:
    calendar = {
        "calendar_id": uuid.uuid4(),
        "code": "c",
        "name": "C",
        "description": "",
        "image": None,
        "color": None,
        "timezone": "UTC",
        "protected": False,
        "refresh_interval": "PT1H",
        "single_subscription_per_subscriber": False,
        "subscribe_page": {"email": "required", "marketingOptIn": "News"},
        "version": 1,
        "created_at": WHEN,
        "updated_at": WHEN,
    }
    body = schemas.CalendarBody.parse({"code": "c", "name": "C", "colour": "red"})
    answer = schemas.with_warnings(bodies.calendar_body(calendar), body)
    assert CalendarAnswer.model_validate(answer).warnings == ["unknown field 'colour' ignored"]
    assert answer["subscribePage"] == {"email": "required", "marketingOptIn": "News", "additionalOptIn": None}
    tag = {"tag_id": uuid.uuid4(), "name": "n", "external_id": None, "version": 1}
    TagAnswer.model_validate(schemas.with_warnings(bodies.tag_body(tag), schemas.TagBody.parse({"name": "n"})))
    event = EventData.model_validate(
        {
            "event_id": uuid.uuid4(),
            "calendar_id": uuid.uuid4(),
            "account_id": uuid.uuid4(),
            "sequence": 1,
            "changed_at": WHEN,
            "created_at": WHEN,
            "title": "t",
            "start": "2026-03-01T19:00:00",
            "end": "2026-03-01T20:00:00",
            "organizer": {"email": "o@example.com"},
            "attendees": [{"email": "a@example.com", "name": "A", "role": "CHAIR", "rsvp": True}],
            "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=3"],
        }
    )
    request = schemas.EventBody.parse({"title": "t", "start": "2026-03-01", "attendees": [{"email": "a@b.co"}]})
    EventAnswer.model_validate(schemas.with_warnings(bodies.event_body(event), request))
    with pytest.raises(ValidationError):
        EventAnswer.model_validate({**bodies.event_body(event), "surprise": 1})
