"""web as a client of ingest's public HTTP API, with the platform client's access token.

The token comes from auth's client-credentials grant for the client configured in
KALENDS_WEB_CLIENT_ID/SECRET, whose scope `calendar-pages` lets it read any account's calendar,
tags and events and subscribe visitors (shared.tokens.SCOPES); it is reused until a minute before it
expires, and fetched once however many requests need it at the same moment.
"""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any
from urllib.parse import quote

import aiohttp

from shared.errors import ApiError, InvalidRequest, NotFound, ServiceUnavailable
from shared.logging import get_logger

log = get_logger(__name__)

EARLY_RENEWAL = 60.0  # seconds before expiry a token is replaced
MAX_EVENTS_READ = 1000


class PagesNotConfigured(ServiceUnavailable):
    pass


class PlatformToken:
    """The web service's own access token (client credentials), renewed before it expires."""

    def __init__(self, session: aiohttp.ClientSession, auth_url: str, client_id: str, client_secret: str) -> None:
        self._session = session
        self._url = auth_url + "/oauth2/token"
        self._client_id = client_id
        self._client_secret = client_secret
        pair = f"{client_id}:{client_secret}".encode()
        self._basic = "Basic " + base64.b64encode(pair).decode("ascii")
        self._token: str | None = None
        self._renew_at = 0.0
        self._lock = asyncio.Lock()

    def forget(self, token: str) -> None:
        """ingest refused `token` (revoked, keys rotated): the next call fetches a new one."""
        if self._token == token:
            self._token = None

    async def get(self) -> str:
        if self._token is not None and time.monotonic() < self._renew_at:
            return self._token
        async with self._lock:
            if self._token is not None and time.monotonic() < self._renew_at:
                return self._token
            if not self._client_id:
                raise PagesNotConfigured("calendar pages are not configured on this server (KALENDS_WEB_CLIENT_ID)")
            try:
                async with self._session.post(
                    self._url,
                    data={"grant_type": "client_credentials"},
                    headers={"Authorization": self._basic},
                ) as response:
                    body = await response.json(content_type=None)
                    status = response.status
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                log.warning("web.token_unavailable", error=repr(exc))
                raise ServiceUnavailable("the auth service did not answer; retry shortly") from None
            if status != 200 or not isinstance(body, dict) or "access_token" not in body:
                log.error("web.token_refused", status=status, error=str(body)[:200])
                raise ServiceUnavailable("this server's calendar pages cannot reach the API; retry later")
            self._token = str(body["access_token"])
            lifetime = float(body.get("expires_in") or 300)
            self._renew_at = time.monotonic() + max(lifetime - EARLY_RENEWAL, lifetime / 2)
            return self._token


class IngestClient:
    """The calls a calendar page makes: read the calendar, its tags and events; subscribe."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, token: PlatformToken) -> None:
        self._session = session
        self._base = base_url
        self._token = token

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        token = await self._token.get()
        try:
            async with self._session.request(
                method, self._base + path, json=body, headers={"Authorization": f"Bearer {token}"}
            ) as response:
                status = response.status
                answer = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning("web.ingest_unavailable", path=path, error=repr(exc))
            raise ServiceUnavailable("the calendar service did not answer; retry shortly") from None
        if status < 300:
            return answer
        errors = answer.get("errors") if isinstance(answer, dict) else None
        first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
        reason, code = str(first.get("reason") or "refused"), str(first.get("code") or "Error")
        if status == 401:
            self._token.forget(token)
        if status == 404:
            raise NotFound(reason, code=code)
        if status in (400, 409, 422):
            raise InvalidRequest(reason) if status == 400 else ApiError(reason, code=code, status=status)
        log.error("web.ingest_refused", path=path, status=status, code=code, reason=reason[:200])
        raise ServiceUnavailable("the calendar service refused this request; retry later")

    @staticmethod
    def _calendar_path(account_code: str, calendar_code: str) -> str:
        return f"/v1/calendars/{quote(account_code, safe='')}/{quote(calendar_code, safe='')}"

    async def calendar(self, account_code: str, calendar_code: str) -> dict[str, Any]:
        answer: dict[str, Any] = await self._call("GET", self._calendar_path(account_code, calendar_code))
        return answer

    async def tags(self, account_code: str, calendar_code: str) -> list[dict[str, Any]]:
        answer: list[dict[str, Any]] = await self._call(
            "GET", self._calendar_path(account_code, calendar_code) + "/tags"
        )
        return answer

    async def events(self, account_code: str, calendar_code: str) -> list[dict[str, Any]]:
        """Every event, a page of the API at a time (up to MAX_EVENTS_READ)."""
        path = self._calendar_path(account_code, calendar_code) + "/events"
        found: list[dict[str, Any]] = []
        while len(found) < MAX_EVENTS_READ:
            page: list[dict[str, Any]] = await self._call("GET", f"{path}?limit=500&offset={len(found)}")
            found.extend(page)
            if len(page) < 500:
                break
        return found

    async def subscribe(self, account_code: str, calendar_code: str, body: dict[str, Any]) -> dict[str, Any]:
        path = f"/v2/subscribe/{quote(account_code, safe='')}/{quote(calendar_code, safe='')}"
        answer: dict[str, Any] = await self._call("POST", path, body)
        return answer
