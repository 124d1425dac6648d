"""The console's HTTP client of the public APIs (auth, ingest, webhook, feed), with the user's token.

Answers in the contract's error body become `ApiProblem`, which pages show as they are: the console
applies no rule of its own, so it says exactly what the API says.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aiohttp

from services.web.console.settings import ConsoleSettings
from shared.http import whole_number
from shared.logging import get_logger

log = get_logger(__name__)


@dataclass
class ApiProblem(Exception):
    """A refused API call: its status and the errors' reasons (or what went wrong reaching it)."""

    status: int
    reasons: list[str]
    codes: list[str]
    retry_after: int | None = None

    def __str__(self) -> str:
        return "; ".join(self.reasons)


def _problem(status: int, text: str, headers: Any) -> ApiProblem:
    reasons, codes = [], []
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        for error in body["errors"]:
            if isinstance(error, dict):
                reasons.append(str(error.get("reason", "")))
                codes.append(str(error.get("code", "")))
    if not reasons:
        reasons = ["the service is unavailable; try again in a moment" if status >= 500 else f"refused ({status})"]
        codes = ["Unavailable" if status >= 500 else "Refused"]
    retry = headers.get("Retry-After", "")
    return ApiProblem(status, reasons, codes, whole_number(retry))


class Apis:
    """One aiohttp session for every call the console makes."""

    def __init__(self, settings: ConsoleSettings, session: aiohttp.ClientSession) -> None:
        self.settings = settings
        self._session = session
        self._bases = {
            "auth": settings.auth_url,
            "ingest": settings.ingest_url,
            "webhook": settings.webhook_url,
            "feed": settings.feed_url,
        }

    async def call(
        self,
        method: str,
        service: str,
        path: str,
        *,
        token: str | None = None,
        body: Any = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """The JSON answer (None for an empty one), or ApiProblem."""
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        url = self._bases[service] + path
        try:
            async with self._session.request(
                method, url, json=body, params=params, headers=sent, allow_redirects=False
            ) as response:
                text = await response.text()
                if response.status >= 400:
                    if response.status >= 500:
                        log.warning("console.api_failed", service=service, path=path, status=response.status)
                    raise _problem(response.status, text, response.headers)
                if not text:
                    return None
                if "json" not in response.content_type:
                    return text
                return json.loads(text)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("console.api_unreachable", service=service, path=path, error=repr(exc))
            raise ApiProblem(
                503, [f"the {service} service cannot be reached; try again in a moment"], ["Unavailable"]
            ) from None

    async def text(self, service: str, path: str) -> tuple[int, str]:
        """A non-JSON resource (a feed): its status and text."""
        try:
            async with self._session.get(self._bases[service] + path, allow_redirects=False) as response:
                return response.status, await response.text()
        except (aiohttp.ClientError, TimeoutError):
            return 503, ""
