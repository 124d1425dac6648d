"""Google Calendar behind the provider interface, and Google's OAuth endpoints (code, refresh, revoke, userinfo).

Each failure Google reports becomes the provider error the push engine acts on: 401 -> AuthExpired
(the engine refreshes once), `invalid_grant` -> NeedsConsent, 404/410 on our calendar -> CalendarGone,
403 rateLimitExceeded / 429 -> RateLimited (per Google user), 5xx and network trouble -> TransientError,
any other 4xx on an event -> EventRejected with Google's own message.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import aiohttp

from services.sync.domain.google_events import calendar_colors, google_calendar, google_event
from services.sync.domain.google_retry import is_retryable
from services.sync.domain.provider import (
    AuthExpired,
    CalendarGone,
    CalendarMeta,
    Connection,
    EventRejected,
    NeedsConsent,
    Provider,
    ProviderError,
    PushedEvent,
    RateLimited,
    TransientError,
)
from services.sync.google_settings import GoogleSettings
from shared.http import whole_number
from shared.logging import get_logger
from shared.messages import CalendarData, EventData

log = get_logger(__name__)
EXPIRY_MARGIN = 60.0  # refresh a minute before Google's expiry rather than collect a 401


@dataclass(frozen=True)
class GoogleTokens:
    access_token: str
    refresh_token: str | None
    expires_at: float

    def credentials(self) -> dict[str, Any]:
        return {"access_token": self.access_token, "refresh_token": self.refresh_token, "expires_at": self.expires_at}


class GoogleApiError(ProviderError):
    """A refusal that fits none of the engine's categories (kept with Google's status and reason)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"Google answered {status} {reason}: {message}")
        self.status, self.google_reason = status, reason


def _retry_after(response: aiohttp.ClientResponse) -> float | None:
    value = response.headers.get("Retry-After", "")
    seconds = whole_number(value)
    return float(seconds) if seconds is not None else None


async def _error_of(response: aiohttp.ClientResponse) -> tuple[str, str]:
    """(reason, message) from Google's error body, whichever of its two shapes it has."""
    try:
        body = await response.json(content_type=None)
    except (ValueError, aiohttp.ClientError):
        return "", (await response.text())[:200]
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        first = (error.get("errors") or [{}])[0]
        return str(first.get("reason", error.get("status", ""))), str(error.get("message", ""))[:300]
    return str(error or ""), str(body.get("error_description", ""))[:300] if isinstance(body, dict) else ""


class GoogleOAuth:
    """Google's OAuth 2.0 endpoints, as this client (KALENDS_GOOGLE_CLIENT_ID) uses them."""

    def __init__(self, settings: GoogleSettings, session: aiohttp.ClientSession) -> None:
        self.settings, self._session = settings, session

    async def _token(self, form: dict[str, str]) -> dict[str, Any]:
        form = {**form, "client_id": self.settings.client_id, "client_secret": self.settings.client_secret}
        try:
            async with self._session.post(self.settings.token_url, data=form) as response:
                if response.status == 200:
                    body: dict[str, Any] = await response.json(content_type=None)
                    return body
                reason, message = await _error_of(response)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransientError(f"Google's token endpoint is unreachable: {type(exc).__name__}") from None
        if reason == "invalid_grant":
            raise NeedsConsent(f"Google refused the grant ({message or 'invalid_grant'}): the user must consent again")
        if response.status >= 500 or response.status == 429:
            raise TransientError(f"Google's token endpoint answered {response.status}")
        raise GoogleApiError(response.status, reason, message)

    async def exchange(self, code: str, verifier: str, redirect_uri: str) -> GoogleTokens:
        body = await self._token(
            {"grant_type": "authorization_code", "code": code, "code_verifier": verifier, "redirect_uri": redirect_uri}
        )
        return GoogleTokens(body["access_token"], body.get("refresh_token"), time.time() + float(body["expires_in"]))

    async def refresh(self, refresh_token: str) -> GoogleTokens:
        body = await self._token({"grant_type": "refresh_token", "refresh_token": refresh_token})
        return GoogleTokens(body["access_token"], refresh_token, time.time() + float(body["expires_in"]))

    async def email(self, access_token: str) -> str:
        headers = {"Authorization": f"Bearer {access_token}"}
        try:
            async with self._session.get(self.settings.userinfo_url, headers=headers) as response:
                if response.status != 200:
                    reason, message = await _error_of(response)
                    raise GoogleApiError(response.status, reason, message)
                body = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise TransientError(f"Google's userinfo endpoint failed: {type(exc).__name__}") from None
        if not body.get("email"):
            raise GoogleApiError(200, "noEmail", "Google did not share the account's email address")
        return str(body["email"]).lower()

    async def revoke(self, token: str) -> bool:
        """True when Google revoked it (or it was already dead); False when Google could not be reached."""
        try:
            async with self._session.post(self.settings.revoke_url, data={"token": token}) as response:
                return response.status in (200, 400)  # 400 invalid_token: already revoked
        except (aiohttp.ClientError, TimeoutError):
            return False


class GoogleProvider(Provider):
    """Pushes into one secondary calendar per subscription with the `calendar.app.created` scope."""

    name = "google"

    def __init__(self, settings: GoogleSettings, timeout: float = 15.0) -> None:
        self.settings = settings
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    @property
    def oauth(self) -> GoogleOAuth:
        return GoogleOAuth(self.settings, self.session)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _call(
        self,
        connection: Connection,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        query: dict[str, str] | None = None,
        *,
        calendar_scoped: bool = False,
    ) -> tuple[int, dict[str, Any]]:
        """One Calendar API call: (status, body) for 2xx and for a 404/410 the caller resolves itself."""
        credentials = connection.credentials
        if float(credentials.get("expires_at") or 0) < time.time() + EXPIRY_MARGIN:
            raise AuthExpired("the Google access token has expired")
        headers = {"Authorization": f"Bearer {credentials['access_token']}"}
        try:
            async with self.session.request(
                method, self.settings.api_url + path, json=body, params=query, headers=headers
            ) as response:
                status = response.status
                if status < 300:
                    payload = await response.json(content_type=None) if status != 204 else {}
                    return status, payload or {}
                retry_after = _retry_after(response)
                reason, message = await _error_of(response)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransientError(f"Google Calendar is unreachable: {type(exc).__name__}") from None
        if status == 401:
            raise AuthExpired("Google refused the access token (401)")
        if status in (404, 410):
            if calendar_scoped:
                raise CalendarGone("the Google calendar was deleted by its owner")
            return status, {}
        if is_retryable(status, reason):
            if status == 429 or status == 403:
                raise RateLimited(f"Google rate-limits this user ({status} {reason})", retry_after)
            raise TransientError(f"Google answered {status} {reason}")
        raise EventRejected(f"Google refused it ({status} {reason}): {message}")

    async def _calendar_alive(self, connection: Connection, remote_calendar_id: str) -> None:
        """A 404 on an event: the event is gone, or the whole calendar is (CalendarGone)."""
        await self._call(connection, "GET", f"/calendars/{quote(remote_calendar_id, safe='')}", calendar_scoped=True)

    async def ensure_calendar(
        self, connection: Connection, calendar: CalendarMeta, remote_calendar_id: str | None
    ) -> str:
        if remote_calendar_id is not None:
            return remote_calendar_id
        data = _calendar_data(connection, calendar)
        status, created = await self._call(connection, "POST", "/calendars", google_calendar(data, calendar.timezone))
        if status >= 300 or "id" not in created:
            raise TransientError(f"Google answered {status} to calendars.insert")
        calendar_id = str(created["id"])
        colors = calendar_colors(data)
        if colors is not None:
            path = f"/users/me/calendarList/{quote(calendar_id, safe='')}"
            await self._call(connection, "PATCH", path, colors, {"colorRgbFormat": "true"}, calendar_scoped=True)
        return calendar_id

    async def update_calendar(self, connection: Connection, remote_calendar_id: str, calendar: CalendarMeta) -> None:
        """The merchant renamed or recoloured the calendar: calendars.patch and the list entry's colour."""
        data = _calendar_data(connection, calendar)
        path = f"/calendars/{quote(remote_calendar_id, safe='')}"
        await self._call(connection, "PATCH", path, google_calendar(data, calendar.timezone), calendar_scoped=True)
        colors = calendar_colors(data)
        if colors is not None:
            entry = f"/users/me/calendarList/{quote(remote_calendar_id, safe='')}"
            await self._call(connection, "PATCH", entry, colors, {"colorRgbFormat": "true"}, calendar_scoped=True)

    async def put_event(
        self,
        connection: Connection,
        remote_calendar_id: str,
        calendar: CalendarMeta,
        event: EventData,
        remote_id: str | None,
        etag: str | None,
    ) -> PushedEvent:
        base = f"/calendars/{quote(remote_calendar_id, safe='')}/events"
        body = google_event(event)
        if remote_id is not None:
            status, updated = await self._call(connection, "PUT", f"{base}/{quote(remote_id, safe='')}", body)
            if status < 300:
                return PushedEvent(str(updated["id"]), updated.get("etag"))
            await self._calendar_alive(connection, remote_calendar_id)  # the event alone went: import again
        # events.import is keyed by iCalUID: after a crash between Google's write and our record,
        # importing again updates the same event instead of adding a second one.
        _, imported = await self._call(connection, "POST", f"{base}/import", body, calendar_scoped=True)
        return PushedEvent(str(imported["id"]), imported.get("etag"))

    async def delete_event(
        self, connection: Connection, remote_calendar_id: str, remote_id: str, etag: str | None
    ) -> None:
        path = f"/calendars/{quote(remote_calendar_id, safe='')}/events/{quote(remote_id, safe='')}"
        status, _ = await self._call(connection, "DELETE", path)
        if status == 404:
            await self._calendar_alive(connection, remote_calendar_id)

    async def refresh(self, connection: Connection) -> dict[str, Any]:
        refresh_token = connection.credentials.get("refresh_token")
        if not refresh_token:
            raise NeedsConsent("no refresh token is stored for this Google account: the user must consent again")
        tokens = await self.oauth.refresh(str(refresh_token))
        return tokens.credentials()

    async def release(self, connection: Connection) -> None:
        """No active subscription of this Google user is left: revoke our grant (refresh token)."""
        token = connection.credentials.get("refresh_token") or connection.credentials.get("access_token")
        if token and not await self.oauth.revoke(str(token)):
            log.warning("google.revoke_failed", connection_id=str(connection.connection_id))


def _calendar_data(connection: Connection, calendar: CalendarMeta) -> CalendarData:
    """The pushed calendar's facts in the shape the Google mapping reads."""
    return CalendarData(
        calendar_id=calendar.calendar_id,
        account_id=connection.account_id,
        account_code="",
        code="",
        name=calendar.name,
        description=calendar.description,
        color=calendar.color,
        changed_at=datetime.now(UTC),
    )
