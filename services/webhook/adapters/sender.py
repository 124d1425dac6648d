"""Sending one webhook attempt over HTTP: signed, bounded in time, never redirected, never to a
forbidden address.

The SSRF rule is enforced in the socket factory, i.e. on the very address the connection is made
to after resolution (an IP literal, a DNS answer, each happy-eyeballs candidate), so a DNS answer
that changes between the check and the connect cannot slip through. Host header and TLS SNI stay
those of the URL because aiohttp still connects by name.
"""

from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import dataclass

import aiohappyeyeballs
import aiohttp

from shared.addresses import forbidden_reason

USER_AGENT = "Kalends-Webhooks/1.0 (+https://github.com/kalends/kalends)"
RESPONSE_BODY_LIMIT = 20 * 1024


class ForbiddenAddress(OSError):
    """The endpoint resolved to an address webhooks may not reach."""


@dataclass(frozen=True)
class AttemptOutcome:
    succeeded: bool
    duration_ms: float
    status_code: int | None = None
    error: str | None = None
    response_body: bytes | None = None  # the first bytes of the body, as sent: any bytes at all


def guarded_socket(addr_info: aiohappyeyeballs.AddrInfoType) -> socket.socket:
    family, type_, proto, _, sockaddr = addr_info
    address = str(sockaddr[0])
    reason = forbidden_reason(address)
    if reason is not None:
        raise ForbiddenAddress(
            f"refused to connect to {address}: {reason} (set KALENDS_WEBHOOK_ALLOW_PRIVATE=1 to allow)"
        )
    return socket.socket(family=family, type=type_, proto=proto)


def _describe(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, TimeoutError | asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        return f"timed out after {timeout:g} s"
    cause = exc.__cause__ or getattr(exc, "os_error", None)
    if isinstance(cause, ForbiddenAddress):
        return str(cause)
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:1000]


class WebhookSender:
    """One HTTP client session for a worker: a global connection bound, keep-alive reuse."""

    def __init__(self, *, timeout: float, allow_private: bool, max_connections: int = 256) -> None:
        self.timeout = timeout
        self.allow_private = allow_private
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    def _ensure(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections,
                socket_factory=None if self.allow_private else guarded_socket,
                ttl_dns_cache=10,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                trust_env=False,  # never through an environment proxy: the address check must see the endpoint
                auto_decompress=True,
                headers={"User-Agent": USER_AGENT},
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def send(self, url: str, headers: dict[str, str], body: bytes) -> AttemptOutcome:
        """POST once. Success is a 2xx status within the timeout; the first 20 KB of the response
        body are kept either way."""
        session = self._ensure()
        started = time.perf_counter()
        deadline = started + self.timeout

        def elapsed() -> float:
            return round((time.perf_counter() - started) * 1000, 3)

        try:
            async with asyncio.timeout(self.timeout):
                response = await session.post(
                    url, data=body, headers=headers, allow_redirects=False, timeout=aiohttp.ClientTimeout(total=None)
                )
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
            return AttemptOutcome(succeeded=False, duration_ms=elapsed(), error=_describe(exc, self.timeout))
        status = response.status
        duration = elapsed()
        raw: bytes | None = None
        try:
            remaining = max(deadline - time.perf_counter(), 0.5)
            async with asyncio.timeout(remaining):
                raw = await response.content.read(RESPONSE_BODY_LIMIT)
        except (aiohttp.ClientError, OSError, TimeoutError, RuntimeError):
            raw = None
        finally:
            response.release()
        ok = 200 <= status < 300
        return AttemptOutcome(
            succeeded=ok,
            duration_ms=duration,
            status_code=status,
            error=None if ok else f"HTTP {status}" + (" (redirects are not followed)" if 300 <= status < 400 else ""),
            response_body=raw,
        )


class UnsafeDestination(ValueError):
    """A webhook URL whose host is, or resolves to, an address webhooks may not reach."""


async def check_destination(host: str, port: int) -> None:
    """Refuse a host that is, or resolves to, a forbidden address (at creation; the socket factory
    checks again at delivery). Raises UnsafeDestination with a reason fit for the API client."""
    reason = forbidden_reason(host.strip("[]"))
    if reason is None:
        return
    if reason != "not an IP address":
        raise UnsafeDestination(f"{host} is {reason}; webhooks only go to public addresses")
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), 10)
    except (OSError, TimeoutError, UnicodeError):
        raise UnsafeDestination(f"host {host} does not resolve") from None
    for *_, sockaddr in infos:
        address = str(sockaddr[0])
        reason = forbidden_reason(address)
        if reason is not None:
            raise UnsafeDestination(
                f"host {host} resolves to {address}, {reason}; webhooks only go to public addresses"
            )
