"""Request models refuse text PostgreSQL cannot store (NUL, lone surrogates) with a 400 naming the field."""

from __future__ import annotations

import pytest

from services.webhook.api.schemas import EndpointCreate, EndpointUpdate
from shared.errors import InvalidRequest


@pytest.mark.parametrize("text", ["a\x00b", "\ud800"])
def test_a_webhook_description_postgresql_cannot_store_is_a_400_naming_it(text: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        EndpointCreate.parse({"url": "http://127.0.0.1:9/x", "description": text})
    assert caught.value.status == 400
    assert caught.value.reason.startswith("description: ")


def test_a_nul_is_refused_as_such() -> None:
    with pytest.raises(InvalidRequest, match="description: contains a NUL character"):
        EndpointCreate.parse({"url": "http://127.0.0.1:9/x", "description": "\x00"})


def test_an_event_type_with_a_nul_is_a_400_naming_its_position() -> None:
    with pytest.raises(InvalidRequest, match=r"eventTypes\[1\]"):
        EndpointUpdate.parse({"eventTypes": ["Subscribe", "Unsub\x00scribe"]})


def test_a_nul_in_a_name_the_model_ignores_is_no_reason_to_refuse() -> None:
    assert EndpointCreate.parse({"url": "http://127.0.0.1:9/x", "ignored": "\x00"}).url == "http://127.0.0.1:9/x"
