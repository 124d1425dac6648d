"""ingest asks the sync service for Google consent URLs (sync keeps the PKCE verifier and the state).

The merchant's own Bearer token is forwarded, so sync holds the request to the same account."""

from __future__ import annotations

from typing import Any

import aiohttp

from shared.errors import ApiError, ServiceUnavailable


class GoogleConsentClient:
    def __init__(self, base_url: str, timeout: float = 15.0) -> None:
        self._base = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def google_consent(
        self, bearer: str, account_code: str, calendar_code: str, request: dict[str, Any]
    ) -> str | None:
        """The consent URL sync made for this subscription (None: `ifNeeded` and nothing is needed)."""
        url = f"{self._base}/v1/google/{account_code}/{calendar_code}/consent"
        try:
            async with (
                aiohttp.ClientSession(timeout=self._timeout) as session,
                session.post(url, json=request, headers={"Authorization": bearer}) as response,
            ):
                body = await response.json(content_type=None)
                status = response.status
        except (aiohttp.ClientError, TimeoutError, ValueError):
            raise ServiceUnavailable(
                "the sync service (Google consent) did not answer; retry shortly", headers={"Retry-After": "5"}
            ) from None
        if status == 200 and isinstance(body, dict):
            consent = body.get("consentUrl")
            return str(consent) if consent else None
        errors = body.get("errors") if isinstance(body, dict) else None
        first = errors[0] if errors and isinstance(errors[0], dict) else {}
        if 400 <= status < 500:
            raise ApiError(str(first.get("reason", "refused")), code=str(first.get("code", "Error")), status=status)
        raise ServiceUnavailable("the sync service (Google consent) failed; retry shortly")
