"""A console session outlives its access token: web refreshes it through auth (once per expiry, under
the session row's lock), and a session whose refresh auth refuses ends with the login page."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from tests.e2e.console.conftest import Console, Merchant

# Access tokens of 32 s: web refreshes when less than 30 s are left, so from 2 s after login on.
TOKEN_TTL = "32"


@pytest.fixture(scope="module")
def auth_env() -> dict[str, str]:
    return {"KALENDS_ACCESS_TOKEN_TTL": TOKEN_TTL}


async def _session_tokens(database_url: str, email: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url)
    try:
        return list(
            await conn.fetch(
                "SELECT s.id, count(r.*) AS tokens, count(r.used_at) AS spent FROM auth.user_sessions s"
                " JOIN auth.user_refresh_tokens r ON r.session_id = s.id JOIN auth.users u ON u.id = s.user_id"
                " WHERE u.email = $1 GROUP BY s.id",
                email,
            )
        )
    finally:
        await conn.close()


async def test_pages_after_the_access_token_nears_its_end_refresh_it_once_and_stay_logged_in(
    console: Console, merchant: Merchant, e2e_database_url: str
) -> None:
    await console.login(merchant.email)
    assert [(r["tokens"], r["spent"]) for r in await _session_tokens(e2e_database_url, merchant.email)] == [(1, 0)]
    await asyncio.sleep(2.5)
    # Three pages at once: one request refreshes, the others wait on the row and use its result.
    pages = await asyncio.gather(
        *(console.get(p) for p in ("/console/calendars", "/console/webhooks", "/console/keys"))
    )
    assert all(merchant.email in page for page in pages)
    assert [(r["tokens"], r["spent"]) for r in await _session_tokens(e2e_database_url, merchant.email)] == [(2, 1)]


async def test_a_session_whose_refresh_is_refused_ends_at_the_login_page(
    console: Console, merchant: Merchant, e2e_database_url: str
) -> None:
    await console.login(merchant.email)
    conn = await asyncpg.connect(e2e_database_url)
    try:  # the session ended at auth (as when an operator disables the user's account)
        await conn.execute(
            "UPDATE auth.user_sessions s SET revoked_at = now(), revoked_reason = 'test' FROM auth.users u"
            " WHERE u.id = s.user_id AND u.email = $1",
            merchant.email,
        )
    finally:
        await conn.close()
    await asyncio.sleep(2.5)
    async with console.session.get(console.base + "/console/calendars", allow_redirects=False) as response:
        assert response.status == 303 and response.headers["Location"].startswith("/console/login")
