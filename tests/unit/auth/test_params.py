"""Reading OAuth parameters from form and JSON bodies."""

from __future__ import annotations

import pytest

from services.auth.domain.params import MAX_BODY, MalformedParameters, parse_parameters

FORM = "application/x-www-form-urlencoded"


def test_form_bodies_are_decoded() -> None:
    assert parse_parameters(b"grant_type=client_credentials&client_id=a%20b", FORM) == {
        "grant_type": "client_credentials",
        "client_id": "a b",
    }


def test_json_bodies_as_the_seed_sends_them_are_read() -> None:
    assert parse_parameters(b'{"grant_type": "client_credentials"}', "application/json") == {
        "grant_type": "client_credentials"
    }


def test_without_a_content_type_the_first_byte_decides() -> None:
    assert parse_parameters(b'{"grant_type": "x"}', "") == {"grant_type": "x"}
    assert parse_parameters(b"grant_type=x", "") == {"grant_type": "x"}


def test_an_empty_body_has_no_parameters() -> None:
    assert parse_parameters(b"", FORM) == {}


@pytest.mark.parametrize(
    ("raw", "content_type", "reason"),
    [
        (b"a=1&a=2", FORM, "more than once"),
        (b'{"a": 1, "a": 2}', "application/json", "more than once"),
        (b"a=%ff", FORM, "UTF-8"),
        (b"a=\xff", FORM, "UTF-8"),
        (b'{"a": ', "application/json", "malformed"),
        (b"\xff\xfe", "application/json", "UTF-8"),
        (b"[1, 2]", "application/json", "object"),
        (b'{"a": {"b": 1}}', "application/json", "must be a string"),
        (b"<xml/>", "application/xml", "application/xml"),
        (b"a=" + b"x" * MAX_BODY, FORM, "larger"),
    ],
)
def test_malformed_bodies_are_rejected_with_a_reason(raw: bytes, content_type: str, reason: str) -> None:
    with pytest.raises(MalformedParameters, match=reason):
        parse_parameters(raw, content_type)
