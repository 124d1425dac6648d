"""Request bodies: case-insensitive names, reasons that name the field, JSON errors that say where."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import Field, field_validator

from shared.errors import ApiError, Conflict, InvalidRequest, MalformedJson, NotFound
from shared.http import CaseInsensitiveModel, parse_json_text, whole_number


class Subscribe(CaseInsensitiveModel):
    time_zone_id: str | None = Field(None, alias="timeZoneId")
    username: str
    count: int = 1

    @field_validator("username")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("username must not be blank")
        return value


@pytest.mark.parametrize("key", ["timeZoneId", "TimeZoneId", "timezoneid", "TIMEZONEID", "time_zone_id"])
def test_names_match_whatever_their_case(key: str) -> None:
    model = Subscribe.parse({key: "W. Europe Standard Time", "UserName": "fan"})
    assert model.time_zone_id == "W. Europe Standard Time"
    assert model.username == "fan"


def test_unknown_names_are_ignored() -> None:
    assert Subscribe.parse({"username": "fan", "somethingElse": 1}).model_dump() == {
        "time_zone_id": None,
        "username": "fan",
        "count": 1,
    }


def test_the_first_spelling_wins_when_a_name_comes_twice() -> None:
    assert Subscribe.parse({"username": "first", "USERNAME": "second"}).username == "first"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({}, "username: Field required"),
        ({"username": "  "}, "username: username must not be blank"),
        ({"username": "fan", "count": "many"}, "count: Input should be a valid integer"),
    ],
)
def test_a_bad_body_is_an_invalid_request_naming_the_field(payload: dict[str, Any], reason: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        Subscribe.parse(payload)
    assert raised.value.reason.startswith(reason)
    assert raised.value.status == 400


@pytest.mark.parametrize("payload", [[], "text", 3, None])
def test_a_body_that_is_not_an_object_is_refused(payload: Any) -> None:
    with pytest.raises(InvalidRequest, match="must be a JSON object"):
        Subscribe.parse(payload)


def test_malformed_json_says_where_it_broke() -> None:
    with pytest.raises(MalformedJson) as raised:
        parse_json_text(b'{\n  "username": "fan",\n  "count": }')
    assert "line 3 column" in raised.value.reason
    assert raised.value.body()["errors"][0]["code"] == "MalformedJson"


def test_a_body_that_is_not_utf8_is_malformed() -> None:
    with pytest.raises(MalformedJson, match="UTF-8"):
        parse_json_text(b"\xff\xfe{}")


def test_errors_render_the_contract_body() -> None:
    assert InvalidRequest("calendar code is required").body() == {
        "success": False,
        "statusCode": 400,
        "errors": [{"code": "InvalidRequestParameter", "reason": "calendar code is required"}],
    }
    error = Conflict("code taken", code="CalendarExists", extra=[("Hint", "pick another code")])
    assert error.status == 409
    assert error.body()["errors"] == [
        {"code": "CalendarExists", "reason": "code taken"},
        {"code": "Hint", "reason": "pick another code"},
    ]
    assert NotFound("no such calendar").body()["statusCode"] == 404
    assert ApiError("slow down", status=429, code="TooManyRequests").body()["statusCode"] == 429


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("0", 0),
        ("42", 42),
        ("999999999", 999_999_999),
        ("", None),
        ("1000000000", None),
        ("\u00b2", None),
        ("\u0663", None),
        ("-1", None),
        (" 1", None),
        ("1.5", None),
        ("9" * 5000, None),
    ],
)
def test_a_whole_number_is_ascii_digits_and_not_too_many(text: str, number: int | None) -> None:
    assert whole_number(text) == number
