"""ingest's client of the sync service: connecting a subscriber's CalDAV server during subscribe.

The call is synchronous on purpose: the subscriber must hear now whether their server and password
work (a 400 that says what to fix), and the subscribe answer carries the collection's URL.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp

from shared.errors import ApiError, InvalidRequest, ServiceUnavailable
from shared.logging import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class CalDavConnection:
    connection_id: uuid.UUID
    calendar_url: str


class SyncClient:
    def __init__(self, base_url: str, timeout: float = 60.0) -> None:
        self._base_url = base_url.rstrip("/")
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    def _ensure(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self._timeout), trust_env=False)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def connect_caldav(self, authorization: str, account_code: str, body: dict[str, Any]) -> CalDavConnection:
        """POST /v1/caldav/{accountCode}/connections on sync with the merchant's own Bearer token.

        sync's 4xx come back as they are (code and reason); an unreachable sync is a 503."""
        url = f"{self._base_url}/v1/caldav/{account_code}/connections"
        try:
            async with self._ensure().post(url, json=body, headers={"Authorization": authorization}) as response:
                payload = await response.json(content_type=None)
                status = response.status
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
            log.warning("sync.unreachable", error=repr(exc))
            raise ServiceUnavailable(
                "the sync service that connects CalDAV servers is unavailable; try again shortly",
                headers={"Retry-After": "5"},
            ) from None
        if status == 201:
            return CalDavConnection(uuid.UUID(payload["connectionId"]), payload["calendarUrl"])
        errors = payload.get("errors") if isinstance(payload, dict) else None
        first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
        reason = str(first.get("reason") or f"the sync service answered {status}")
        if 400 <= status < 500:
            if status == 400:
                raise InvalidRequest(reason, code=str(first.get("code") or "InvalidRequestParameter"))
            raise ApiError(reason, code=str(first.get("code") or "Error"), status=status)
        log.warning("sync.failed", status=status, reason=reason)
        raise ServiceUnavailable("the sync service failed to connect the CalDAV server; try again shortly")
