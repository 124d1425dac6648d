"""Console users over HTTP: `admin create-user`, the set-password link, login, and the token at ingest."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from shared.testing import Stack, random_name

PASSWORD = "a console password"


@pytest.fixture(scope="module")
async def ingest_url(stack: Stack, auth_url: str) -> str:
    await stack.start("ingest")
    return stack.url("ingest")


async def post(url: str, body: Any) -> tuple[int, dict[str, Any], Any]:
    async with aiohttp.ClientSession() as session, session.post(url, json=body) as response:
        payload = await response.json() if response.status != 204 else None
        return response.status, dict(response.headers), payload


async def test_create_user_prints_a_link_that_sets_the_password_once_and_login_opens_the_account(
    stack: Stack, auth_url: str, ingest_url: str
) -> None:
    account = await stack.new_account()
    created = await stack.admin("create-user", account["accountCode"], f"{random_name('ops')}@example.com")
    assert set(created) == {"userId", "email", "setPasswordUrl"}
    token = created["setPasswordUrl"].rsplit("/console/set-password/", 1)[1]

    status, _, body = await post(f"{auth_url}/v1/users/password", {"token": token, "password": "short"})
    assert status == 400 and body["errors"][0]["code"] == "InvalidRequestParameter"
    assert "at least 10 characters" in body["errors"][0]["reason"]
    status, _, body = await post(f"{auth_url}/v1/users/password", {"Token": token, "password": PASSWORD})
    assert status == 200 and body["accountCode"] == account["accountCode"]
    status, _, body = await post(f"{auth_url}/v1/users/password", {"token": token, "password": PASSWORD})
    assert (status, body["errors"][0]["code"]) == (400, "InvalidPasswordLink")

    status, headers, session = await post(
        f"{auth_url}/v1/users/login", {"email": created["email"], "password": PASSWORD}
    )
    assert status == 200 and headers["Cache-Control"] == "no-store"
    async with aiohttp.ClientSession() as http:
        bearer = {"Authorization": f"Bearer {session['accessToken']}"}
        async with http.get(f"{ingest_url}/v1/calendars/{account['accountCode']}", headers=bearer) as response:
            assert response.status == 200
        other = await stack.new_account()
        async with http.get(f"{ingest_url}/v1/calendars/{other['accountCode']}", headers=bearer) as response:
            assert response.status == 403


async def test_login_errors_use_the_contracts_error_body(stack: Stack, auth_url: str) -> None:
    status, _, body = await post(f"{auth_url}/v1/users/login", {"email": "nobody@example.com", "password": "x" * 12})
    assert body == {
        "success": False,
        "statusCode": 401,
        "errors": [{"code": "InvalidCredentials", "reason": "the email or the password is wrong"}],
    }
    status, _, body = await post(f"{auth_url}/v1/users/login", {"email": "nobody@example.com"})
    assert status == 400 and "password" in body["errors"][0]["reason"]
    status, _, body = await post(f"{auth_url}/v1/users/refresh", {"refreshToken": "rt_nothing"})
    assert (status, body["errors"][0]["code"]) == (401, "SessionEnded")
    status, _, _ = await post(f"{auth_url}/v1/users/logout", {"refreshToken": "rt_nothing"})
    assert status == 204
