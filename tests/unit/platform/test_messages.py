"""The message module: every type round-trips through the envelope; malformed envelopes are refused."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared import messages
from shared.messages import (
    MESSAGE_TYPES,
    AccountCreated,
    ApiKeyCreated,
    ApiKeyRevoked,
    CalendarData,
    CalendarDeleted,
    Envelope,
    EventData,
    MessageData,
    Person,
    SubscriptionData,
    SubscriptionEventAccepted,
    SubscriptionTag,
    TagData,
    TagDeleted,
    UnknownMessageType,
    WebhookDeliveryDue,
    make_envelope,
    parse_envelope,
)

NOW = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
ACCOUNT = uuid.UUID("11111111-1111-4111-8111-111111111111")
CALENDAR = uuid.UUID("22222222-2222-4222-8222-222222222222")


def event() -> EventData:
    return EventData(
        event_id=uuid.uuid4(),
        calendar_id=CALENDAR,
        account_id=ACCOUNT,
        external_id="match-42",
        sequence=3,
        changed_at=NOW,
        created_at=NOW,
        title="Cup final",
        description="Ä description with ünïcode",
        start="2026-05-01T19:00:00",
        end="2026-05-01T21:00:00",
        timezone="Europe/Berlin",
        tag_ids=[uuid.uuid4()],
        time_zone_tag="W. Europe Standard Time",
        status="tentative",
        transparency="transparent",
        class_="private",
        categories=["sport"],
        organizer=Person(name="League", email="league@example.com"),
        attendees=[Person(email="fan@example.com", role="REQ-PARTICIPANT", rsvp=True)],
        recurrence=["RRULE:FREQ=WEEKLY;COUNT=3"],
        notify_before=30,
    )


def subscription() -> SubscriptionData:
    return SubscriptionData(
        subscription_id=uuid.uuid4(),
        account_id=ACCOUNT,
        account_code="league",
        merchant_name="The League",
        calendar_id=CALENDAR,
        calendar_code="fixtures",
        calendar_title="Fixtures",
        subscription_type="webcal",
        subscriber_id="fan-1",
        created_at=NOW,
        calendar_tags=[SubscriptionTag(tag_id=uuid.uuid4(), tag_text="Home", external_id="home")],
        utm_source="newsletter",
    )


# One sample per data model; the test below insists every registered type has one.
SAMPLES: dict[type[MessageData], MessageData] = {
    AccountCreated: AccountCreated(account_id=ACCOUNT, account_code="league", name="The League"),
    ApiKeyCreated: ApiKeyCreated(
        key_id=uuid.uuid4(), account_id=ACCOUNT, account_code="league", key_hash="ab" * 32, created_at=NOW
    ),
    ApiKeyRevoked: ApiKeyRevoked(
        key_id=uuid.uuid4(), account_id=ACCOUNT, account_code="league", key_hash="cd" * 32, revoked_at=NOW
    ),
    CalendarData: CalendarData(
        calendar_id=CALENDAR,
        account_id=ACCOUNT,
        account_code="league",
        code="fixtures",
        name="Fixtures",
        protected=True,
        refresh_interval="PT15M",
        changed_at=NOW,
    ),
    CalendarDeleted: CalendarDeleted(
        calendar_id=CALENDAR, account_id=ACCOUNT, code="fixtures", version=4, changed_at=NOW
    ),
    TagData: TagData(tag_id=uuid.uuid4(), calendar_id=CALENDAR, name="Home", external_id="home", changed_at=NOW),
    TagDeleted: TagDeleted(tag_id=uuid.uuid4(), calendar_id=CALENDAR, version=2, changed_at=NOW),
    EventData: event(),
    SubscriptionData: subscription(),
    SubscriptionEventAccepted: SubscriptionEventAccepted(event=event(), subscription_ids=[uuid.uuid4()]),
    WebhookDeliveryDue: WebhookDeliveryDue(delivery_id=uuid.uuid4(), attempt=2),
}


# The types with a hand-made sample; every type (these included) also goes through the generated test below.
@pytest.mark.parametrize("message_type", sorted(t for t, model in MESSAGE_TYPES.items() if model in SAMPLES))
def test_every_message_type_survives_the_trip_through_bytes(message_type: str) -> None:
    model = MESSAGE_TYPES[message_type]
    data = SAMPLES[model]
    envelope = make_envelope(message_type, data, account_id=ACCOUNT, correlation_id="req-1")

    received = parse_envelope(envelope.to_bytes())

    assert received == envelope
    assert received.parsed() == data
    assert type(received.parsed()) is model


# Nested models are built from their hand-made samples (hypothesis cannot fill pydantic's default factories).
st.register_type_strategy(EventData, st.builds(event))
st.register_type_strategy(Person, st.just(Person(name="P", email="p@example.com")))
st.register_type_strategy(SubscriptionTag, st.builds(SubscriptionTag, tag_id=st.uuids(), tag_text=st.text(max_size=20)))


@pytest.mark.parametrize("message_type", sorted(MESSAGE_TYPES))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(draw=st.data())
def test_generated_data_of_every_message_type_survives_the_trip_through_bytes(
    message_type: str, draw: st.DataObject
) -> None:
    # Built by hypothesis from the model's own annotations: a type added later is covered too.
    data = draw.draw(st.builds(MESSAGE_TYPES[message_type]))
    envelope = make_envelope(message_type, data)
    assert parse_envelope(envelope.to_bytes()).parsed() == data


def test_the_envelope_uses_the_contract_names_on_the_wire() -> None:
    envelope = make_envelope("account.created", SAMPLES[AccountCreated], account_id=ACCOUNT, correlation_id="c-9")
    wire = json.loads(envelope.to_bytes())
    assert set(wire) == {"id", "type", "version", "occurredAt", "accountId", "correlationId", "data"}
    assert wire["type"] == "account.created"
    assert wire["accountId"] == str(ACCOUNT)
    assert wire["version"] == messages.SCHEMA_VERSION
    assert wire["data"] == {"accountId": str(ACCOUNT), "accountCode": "league", "name": "The League"}


def test_event_data_writes_class_under_its_wire_name_and_camel_cases_the_rest() -> None:
    wire = json.loads(make_envelope("event.created", SAMPLES[EventData]).to_bytes())["data"]
    assert wire["class"] == "private"
    assert "class_" not in wire
    assert wire["timeZoneTag"] == "W. Europe Standard Time"
    assert wire["notifyBefore"] == 30


def test_unknown_data_fields_from_a_newer_producer_are_kept() -> None:
    envelope = make_envelope("account.created", SAMPLES[AccountCreated])
    wire = json.loads(envelope.to_bytes())
    wire["data"]["plan"] = "gold"
    parsed = parse_envelope(json.dumps(wire).encode()).parsed()
    assert parsed.model_extra == {"plan": "gold"}


def test_make_envelope_refuses_data_of_another_type() -> None:
    with pytest.raises(TypeError, match=r"account\.created carries AccountCreated"):
        make_envelope("account.created", SAMPLES[TagData])


def test_make_envelope_refuses_an_unregistered_type() -> None:
    with pytest.raises(UnknownMessageType):
        make_envelope("account.exploded", SAMPLES[AccountCreated])


def test_every_envelope_gets_its_own_id() -> None:
    ids = {make_envelope("account.created", SAMPLES[AccountCreated]).id for _ in range(50)}
    assert len(ids) == 50


def valid_wire() -> dict[str, Any]:
    return json.loads(make_envelope("tag.deleted", SAMPLES[TagDeleted]).to_bytes())


@pytest.mark.parametrize(
    ("mutate", "why"),
    [
        (lambda w: w.pop("id"), "missing id"),
        (lambda w: w.update(id="not-a-uuid"), "bad id"),
        (lambda w: w.pop("occurredAt"), "missing occurredAt"),
        (lambda w: w.update(type="tag.vanished"), "unknown type"),
        (lambda w: w["data"].pop("tagId"), "data missing a required field"),
        (lambda w: w["data"].update(version="four"), "data field of the wrong type"),
        (lambda w: w.update(data=[1, 2]), "data not an object"),
    ],
)
def test_parse_envelope_refuses_a_malformed_envelope_with_a_value_error(mutate: Any, why: str) -> None:
    wire = valid_wire()
    mutate(wire)
    with pytest.raises(ValueError):
        parse_envelope(json.dumps(wire).encode())


@pytest.mark.parametrize("body", [b"", b"not json", b"\xff\xfe\x00", b"[]", b"null", b'{"id": 1'])
def test_parse_envelope_refuses_bytes_that_are_not_an_envelope(body: bytes) -> None:
    with pytest.raises(ValueError):
        parse_envelope(body)


def test_envelopes_are_immutable() -> None:
    envelope = make_envelope("account.created", SAMPLES[AccountCreated])
    with pytest.raises(ValueError):
        envelope.type = "account.deleted"  # type: ignore[misc]


def test_routing_keys_are_noun_dot_past_tense_verb() -> None:
    for message_type in MESSAGE_TYPES:
        noun, _, verb = message_type.partition(".")
        assert noun and verb and verb.endswith(("ed", "due")), message_type


def test_envelope_model_round_trips_by_field_name_too() -> None:
    envelope = make_envelope("webhook_delivery.due", SAMPLES[WebhookDeliveryDue])
    assert Envelope.model_validate(envelope.model_dump()) == envelope
