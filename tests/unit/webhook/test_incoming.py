"""A broker message's bytes become a webhook event: the one-pass parse (the AMQP `type` property
names the schema) gives exactly what the two-pass parse gives, and falls back to it when the
property is missing or wrong."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from services.webhook import services
from shared.messages import AttendeeReplied, SubscriptionData, make_envelope
from tests.unit.webhook.test_payloads import minimal


def _bytes(message_type: str, data: SubscriptionData | AttendeeReplied) -> bytes:
    return make_envelope(message_type, data, account_id=data.account_id).to_bytes()


def _replied() -> AttendeeReplied:
    return AttendeeReplied(
        account_id=uuid.UUID(int=11),
        event_id=uuid.UUID(int=13),
        uid="e13@kalends",
        attendee_email="ann@example.com",
        partstat="ACCEPTED",
        method="REPLY",
        replied_at=datetime(2026, 5, 2, 9, 0, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    ("message_type", "data"),
    [
        ("subscription.created", minimal(email_address="ann@example.com", ip_address="192.0.2.7")),
        ("subscription.deactivated", minimal(active=False, deactivated_at=datetime(2026, 5, 3, tzinfo=UTC))),
        ("attendee.replied", _replied()),
    ],
)
def test_one_pass_and_two_pass_give_the_same_event_and_body(message_type: str, data: SubscriptionData) -> None:
    body = _bytes(message_type, data)
    typed = services.incoming_event_of(body, message_type)
    generic = services.incoming_event_of(body)
    assert typed is not None and generic is not None
    assert typed == generic
    assert typed.message == data
    assert typed.body() == generic.body()
    assert json.loads(typed.body())["eventId"] == json.loads(body)["id"]


def test_a_type_property_that_disagrees_with_the_envelope_falls_back_to_the_envelopes_type() -> None:
    body = _bytes("subscription.deactivated", minimal(active=False))
    event = services.incoming_event_of(body, "subscription.created")
    assert event is not None and event.event_type == "Unsubscribe"


def test_a_message_that_becomes_no_event_is_none_whatever_its_type_property() -> None:
    body = _bytes("subscription.updated", minimal())
    assert services.incoming_event_of(body, "subscription.updated") is None
    assert services.incoming_event_of(body, "subscription.created") is None


def test_malformed_data_still_raises_so_the_one_message_path_dead_letters_it() -> None:
    envelope = json.loads(_bytes("subscription.created", minimal()))
    del envelope["data"]["calendarId"]
    with pytest.raises(ValidationError):
        services.incoming_event_of(json.dumps(envelope).encode(), "subscription.created")
