"""shared.web's JSON responses and request ids: the same wire as aiohttp's, made cheaper."""

from __future__ import annotations

import json

from shared.web import json_response, new_request_id


def test_a_json_response_carries_the_body_status_headers_and_utf8_content_type() -> None:
    response = json_response({"name": "Zürich", "n": [1, 2.5, None]}, status=201, headers={"Location": "/x"})

    assert response.status == 201
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert response.headers["Location"] == "/x"
    assert isinstance(response.body, bytes)
    assert json.loads(response.body) == {"name": "Zürich", "n": [1, 2.5, None]}


def test_text_utf8_cannot_carry_is_still_rendered_escaped_not_refused() -> None:
    response = json_response({"ignored": ["\ud800"]})

    assert json.loads(response.body) == {"ignored": ["\ud800"]}


def test_request_ids_are_32_hex_characters_and_never_repeat() -> None:
    made = [new_request_id() for _ in range(10_000)]

    assert len(set(made)) == len(made)
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in made)
