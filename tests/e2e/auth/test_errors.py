"""Every RFC 6749 section 5.2 error of the token endpoint, the 429 after repeated failures, and no 500s."""

from __future__ import annotations

import base64
from typing import Any

import aiohttp
import pytest

from shared.testing import Stack

pytestmark = pytest.mark.e2e


async def post_token(
    auth_url: str, *, data: Any = None, json: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{auth_url}/oauth2/token", data=data, json=json, headers=headers or {}) as response,
    ):
        body = await response.json(content_type=None)
        return response.status, dict(response.headers), body


def basic(account: dict[str, Any], secret: str | None = None) -> dict[str, str]:
    return {"Authorization": aiohttp.encode_basic_auth(account["clientId"], secret or account["clientSecret"])}


def raw_basic(raw: bytes) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def assert_oauth_error(status: int, headers: dict[str, str], body: dict[str, Any], code: str, http: int) -> None:
    assert status == http, body
    assert body["error"] == code and body["error_description"]
    assert set(body) == {"error", "error_description"}
    assert headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({}, "grant_type is required"),
        ({"grant_type": "refresh_token"}, "refresh_token is required"),
        ("grant_type=client_credentials&grant_type=client_credentials", "more than once"),
    ],
)
async def test_invalid_request_names_what_is_wrong(
    account: dict[str, Any], auth_url: str, data: Any, reason: str
) -> None:
    headers = {**basic(account), "Content-Type": "application/x-www-form-urlencoded"}
    status, response_headers, body = await post_token(auth_url, data=data, headers=headers)
    assert_oauth_error(status, response_headers, body, "invalid_request", 400)
    assert reason in body["error_description"]


async def test_malformed_json_is_an_invalid_request(account: dict[str, Any], auth_url: str) -> None:
    headers = {**basic(account), "Content-Type": "application/json"}
    status, response_headers, body = await post_token(auth_url, data=b'{"grant_type": ', headers=headers)
    assert_oauth_error(status, response_headers, body, "invalid_request", 400)
    assert "JSON" in body["error_description"]


async def test_two_authentication_methods_at_once_are_an_invalid_request(
    account: dict[str, Any], auth_url: str
) -> None:
    data = {"grant_type": "client_credentials", "client_secret": account["clientSecret"]}
    status, headers, body = await post_token(auth_url, data=data, headers=basic(account))
    assert_oauth_error(status, headers, body, "invalid_request", 400)


@pytest.mark.parametrize(
    "make_headers",
    [
        lambda a: basic(a, "wrong-secret"),
        lambda a: {"Authorization": aiohttp.encode_basic_auth("no-such-client", "x")},
        lambda a: {},
        lambda a: {"Authorization": "Basic %%%not-base64"},
        lambda a: raw_basic(b"no-colon"),
        lambda a: raw_basic(b"\xff\xfe\xfd:secret"),
        lambda a: {"Authorization": "Bearer something"},
    ],
    ids=["wrong-secret", "unknown-client", "no-credentials", "bad-base64", "no-colon", "not-utf8", "not-basic"],
)
async def test_failed_client_authentication_is_invalid_client_with_401_and_a_basic_challenge(
    account: dict[str, Any], auth_url: str, make_headers: Any
) -> None:
    status, headers, body = await post_token(
        auth_url, data={"grant_type": "client_credentials"}, headers=make_headers(account)
    )
    assert_oauth_error(status, headers, body, "invalid_client", 401)
    assert headers["WWW-Authenticate"].startswith('Basic realm="kalends"')


async def test_wrong_credentials_in_the_body_are_invalid_client(account: dict[str, Any], auth_url: str) -> None:
    data = {"grant_type": "client_credentials", "client_id": account["clientId"], "client_secret": "nope"}
    status, headers, body = await post_token(auth_url, data=data)
    assert_oauth_error(status, headers, body, "invalid_client", 401)


async def test_an_unknown_refresh_token_is_an_invalid_grant(account: dict[str, Any], auth_url: str) -> None:
    data = {"grant_type": "refresh_token", "refresh_token": "rt_never-issued"}
    status, headers, body = await post_token(auth_url, data=data, headers=basic(account))
    assert_oauth_error(status, headers, body, "invalid_grant", 400)


async def test_an_unknown_grant_type_is_unsupported(account: dict[str, Any], auth_url: str) -> None:
    data = {"grant_type": "password", "username": "u", "password": "p"}
    status, headers, body = await post_token(auth_url, data=data, headers=basic(account))
    assert_oauth_error(status, headers, body, "unsupported_grant_type", 400)
    assert "password" in body["error_description"]


async def test_a_client_without_the_refresh_grant_is_an_unauthorized_client(
    stack: Stack, account: dict[str, Any], auth_url: str
) -> None:
    limited = await stack.admin("create-client", account["accountCode"], "--grant-types", "client_credentials")
    status, _, body = await post_token(auth_url, data={"grant_type": "client_credentials"}, headers=basic(limited))
    assert status == 200 and "refresh_token" not in body
    data = {"grant_type": "refresh_token", "refresh_token": "rt_whatever"}
    status, headers, body = await post_token(auth_url, data=data, headers=basic(limited))
    assert_oauth_error(status, headers, body, "unauthorized_client", 400)


async def test_a_disabled_account_is_an_unauthorized_client_and_a_disabled_client_invalid(
    stack: Stack, auth_url: str
) -> None:
    account = await stack.new_account()
    second = await stack.admin("create-client", account["accountCode"])
    await stack.admin("disable-client", second["clientId"])
    status, headers, body = await post_token(auth_url, data={"grant_type": "client_credentials"}, headers=basic(second))
    assert_oauth_error(status, headers, body, "invalid_client", 401)
    await stack.admin("disable-account", account["accountCode"])
    status, headers, body = await post_token(
        auth_url, data={"grant_type": "client_credentials"}, headers=basic(account)
    )
    assert_oauth_error(status, headers, body, "unauthorized_client", 400)


async def test_repeated_failures_get_429_but_never_lock_out_the_right_secret(
    account: dict[str, Any], auth_url: str
) -> None:
    statuses = []
    for _ in range(11):
        # A forged X-Forwarded-For from an untrusted peer changes nothing: every guess counts here.
        status, headers, body = await post_token(
            auth_url,
            data={"grant_type": "client_credentials"},
            headers={**basic(account, "guess"), "X-Forwarded-For": f"198.51.100.{len(statuses)}"},
        )
        statuses.append(status)
    assert statuses == [401] * 10 + [429]
    assert 0 < int(headers["Retry-After"]) <= 60
    assert body["error"] == "too_many_requests"
    # The right secret is never refused by the limit, even from the guesser's own address.
    status, headers, body = await post_token(
        auth_url, data={"grant_type": "client_credentials"}, headers=basic(account)
    )
    assert status == 200, body


@pytest.mark.parametrize(
    ("payload", "headers"),
    [
        (b"\x00\x01\x02", {"Content-Type": "application/x-www-form-urlencoded"}),
        (b"grant_type=%E0%A4%A", {"Content-Type": "application/x-www-form-urlencoded"}),
        (b'{"grant_type": ["client_credentials"]}', {"Content-Type": "application/json"}),
        (b"null", {"Content-Type": "application/json"}),
        (b'{"grant_type": "client_credentials"}', {"Content-Type": "text/xml"}),
        (b"grant_type=client_credentials", {"Content-Type": "application/x-www-form-urlencoded; charset=latin-1"}),
        (b"grant_type=client_credentials", {"Authorization": "Basic"}),
        (b"grant_type=client_credentials", {"Authorization": "Basic " + "A" * 5000}),
        (b"grant_type=" + b"x" * 100_000, {"Content-Type": "application/x-www-form-urlencoded"}),
    ],
)
async def test_garbage_never_gets_a_500(auth_url: str, payload: bytes, headers: dict[str, str]) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{auth_url}/oauth2/token", data=payload, headers=headers) as response,
    ):
        body = await response.json(content_type=None)
    assert 400 <= response.status < 500, body
    assert body["error"] in {"invalid_request", "invalid_client", "unsupported_grant_type"}
