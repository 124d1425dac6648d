"""The CalDAV provider: discovery (RFC 6764, RFC 4791), one collection per subscription, one
resource per event written with If-None-Match / If-Match, errors mapped to the engine's types."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import aiohttp

from services.sync.adapters.webdav import (
    CALDAV,
    DAV,
    DavClient,
    DavResponse,
    ForbiddenAddress,
    href_in,
    mkcalendar_body,
    parse_multistatus,
    propfind_body,
    proppatch_body,
    tag,
)
from services.sync.domain.provider import (
    CalendarGone,
    CalendarMeta,
    Connection,
    EventRejected,
    Provider,
    PushedEvent,
    RateLimited,
    TransientError,
    Unauthorized,
)
from shared.http import whole_number
from shared.ical import InvalidEvent, render_single
from shared.messages import EventData

XML = {"Content-Type": "application/xml; charset=utf-8"}


class CalDavRefused(Exception):
    """Connecting failed in a way the subscriber can fix; `code` and `reason` go in the 400."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class Found:
    home_url: str | None
    collection_url: str
    remote_user: str
    created: bool


def retry_after(response: DavResponse) -> float | None:
    """Seconds from a Retry-After header (delta seconds or an HTTP date), None without one."""
    raw = response.headers.get("retry-after", "").strip()
    seconds = whole_number(raw)
    if seconds is not None:
        return float(seconds)
    try:
        return max(0.0, (parsedate_to_datetime(raw) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


def _collection(url: str) -> str:
    return url if url.endswith("/") else url + "/"


def resource_url(collection_url: str, event_id: uuid.UUID) -> str:
    """One resource per event, named by its UID (a UUID: no character needs escaping, stable forever)."""
    return urljoin(_collection(collection_url), quote(f"{event_id}.ics"))


class CalDavProvider(Provider):
    name = "caldav"

    def __init__(self, *, timeout: float, allow_private: bool) -> None:
        self.client = DavClient(timeout=timeout, allow_private=allow_private)

    async def close(self) -> None:
        await self.client.close()

    # --- connecting -----------------------------------------------------------------------------

    async def _call(self, method: str, url: str, creds: dict[str, Any], **kwargs: Any) -> DavResponse:
        """A request during connect: network failures become the subscriber's error."""
        try:
            return await self.client.request(
                method, url, username=creds["username"], password=creds["password"], **kwargs
            )
        except aiohttp.InvalidURL:
            raise CalDavRefused("CalDavUrlInvalid", f"{url} is not an http(s) URL") from None
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            cause = exc.__cause__ or getattr(exc, "os_error", None) or exc
            if isinstance(cause, ForbiddenAddress):
                raise CalDavRefused("CalDavAddressForbidden", str(cause)) from None
            host = urlsplit(url).netloc
            raise CalDavRefused(
                "CalDavUnreachable", f"the CalDAV server {host} did not answer ({type(exc).__name__})"
            ) from None

    @staticmethod
    def _refuse_auth(response: DavResponse, statuses: tuple[int, ...] = (401, 403)) -> None:
        if response.status in statuses:
            raise CalDavRefused(
                "CalDavUnauthorized",
                f"the CalDAV server refused the username and password (HTTP {response.status}):"
                " check them, or create an app password for Kalends",
            )

    async def _propfind(self, url: str, creds: dict[str, Any], depth: str, *props: tuple[str, str]) -> list[Any] | None:
        response = await self._call("PROPFIND", url, creds, body=propfind_body(*props), headers={**XML, "Depth": depth})
        self._refuse_auth(response)
        if response.status != 207:
            return None
        try:
            return parse_multistatus(response.body, response.url)
        except ValueError:
            return None

    async def _home(self, url: str, creds: dict[str, Any]) -> tuple[str | None, bool]:
        """(calendar home URL, whether `url` itself is a calendar collection)."""
        props = [(DAV, "current-user-principal"), (DAV, "resourcetype"), (CALDAV, "calendar-home-set")]
        found = await self._propfind(url, creds, "0", *props)
        if not found:
            parts = urlsplit(url)
            well_known = f"{parts.scheme}://{parts.netloc}/.well-known/caldav"
            found = await self._propfind(well_known, creds, "0", *props)
        if not found:
            raise CalDavRefused("CalDavNotAServer", f"{url} does not answer CalDAV requests (PROPFIND)")
        first = found[0]
        kind = first.props.get(tag(DAV, "resourcetype"))
        if kind is not None and kind.find(tag(CALDAV, "calendar")) is not None:
            return None, True
        home = href_in(first.props.get(tag(CALDAV, "calendar-home-set")), first.href)
        if home:
            return home, False
        principal = href_in(first.props.get(tag(DAV, "current-user-principal")), first.href)
        if principal:
            of_principal = await self._propfind(principal, creds, "0", (CALDAV, "calendar-home-set"))
            if of_principal:
                home = href_in(of_principal[0].props.get(tag(CALDAV, "calendar-home-set")), of_principal[0].href)
        return home, False

    async def _first_calendar(self, home: str, creds: dict[str, Any]) -> str | None:
        children = await self._propfind(home, creds, "1", (DAV, "resourcetype"))
        for child in children or []:
            kind = child.props.get(tag(DAV, "resourcetype"))
            if kind is not None and kind.find(tag(CALDAV, "calendar")) is not None and child.href != home:
                return child.href
        return None

    async def _mkcalendar(self, home: str, creds: dict[str, Any], calendar: CalendarMeta) -> str | None:
        url = urljoin(_collection(home), f"kalends-{uuid.uuid4()}/")
        body = mkcalendar_body(calendar.name, calendar.description, calendar.color, calendar.timezone)
        response = await self._call("MKCALENDAR", url, creds, body=body, headers=XML)
        # The credentials already passed discovery: a 403 here is "not here" (iCloud, shared
        # accounts), the cue to fall back to an existing calendar, not a wrong password.
        self._refuse_auth(response, (401,))
        return url if response.status in (200, 201) else None

    async def connect(self, url: str, username: str, password: str, calendar: CalendarMeta) -> Found:
        """Find the home, create a collection (or fall back to an existing one); raises CalDavRefused."""
        if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
            raise CalDavRefused("CalDavUrlInvalid", f"url must be an http(s) URL with a host, got {url!r}")
        creds = {"username": username, "password": password}
        remote_user = f"{username}@{urlsplit(url).hostname}"
        home, is_calendar = await self._home(url, creds)
        if is_calendar:
            return Found(None, _collection(url), remote_user, False)
        if home is None:
            raise CalDavRefused(
                "CalDavNoCalendarHome",
                f"{url} names no calendar home (no calendar-home-set): give the URL of a calendar instead",
            )
        created = await self._mkcalendar(home, creds, calendar)
        if created is not None:
            return Found(home, created, remote_user, True)
        existing = await self._first_calendar(home, creds)
        if existing is None:
            raise CalDavRefused(
                "CalDavNoCollection", "the CalDAV server refused to create a calendar and has none to use"
            )
        return Found(home, existing, remote_user, False)

    # --- the engine's interface -----------------------------------------------------------------

    async def _send(self, method: str, url: str, connection: Connection, **kwargs: Any) -> DavResponse:
        creds = connection.credentials
        try:
            response = await self.client.request(
                method, url, username=creds["username"], password=creds["password"], **kwargs
            )
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise TransientError(f"{method} {url}: {type(exc).__name__}: {exc}"[:500]) from exc
        if response.status in (401, 403):
            raise Unauthorized(
                f"the CalDAV server {urlsplit(url).hostname} refused the stored credentials (HTTP {response.status})"
            )
        if response.status == 429 or (response.status == 503 and "retry-after" in response.headers):
            raise RateLimited(f"HTTP {response.status} from {urlsplit(url).hostname}", retry_after(response))
        if response.status >= 500:
            raise TransientError(f"HTTP {response.status} from {urlsplit(url).hostname}")
        return response

    async def ensure_calendar(
        self, connection: Connection, calendar: CalendarMeta, remote_calendar_id: str | None
    ) -> str:
        if remote_calendar_id is not None:
            return remote_calendar_id
        home = connection.credentials.get("home_url")
        if not home:
            raise CalendarGone("no calendar home is known for this CalDAV connection")
        try:
            created = await self._mkcalendar(home, connection.credentials, calendar)
        except CalDavRefused as exc:
            raise (Unauthorized if exc.code == "CalDavUnauthorized" else TransientError)(exc.reason) from None
        if created is None:
            raise CalendarGone(f"the CalDAV server refused to create a calendar in {home}")
        return created

    async def update_calendar(self, connection: Connection, remote_calendar_id: str, calendar: CalendarMeta) -> None:
        body = proppatch_body(calendar.name, calendar.description, calendar.color)
        response = await self._send("PROPPATCH", remote_calendar_id, connection, body=body, headers=XML)
        if response.status in (404, 410):
            raise CalendarGone(f"the calendar {remote_calendar_id} is gone (HTTP {response.status} on PROPPATCH)")
        # A server that keeps its own names (403, 207 with failed properties) is left as it is.

    async def put_event(
        self,
        connection: Connection,
        remote_calendar_id: str,
        calendar: CalendarMeta,
        event: EventData,
        remote_id: str | None,
        etag: str | None,
    ) -> PushedEvent:
        url = remote_id or resource_url(remote_calendar_id, event.event_id)
        try:
            body = render_single(event)
        except (InvalidEvent, ValueError) as exc:
            raise EventRejected(f"the event cannot be rendered: {exc}") from None
        headers = {"Content-Type": "text/calendar; charset=utf-8"}
        if remote_id is None:
            headers["If-None-Match"] = "*"
        elif etag:
            headers["If-Match"] = etag
        response = await self._send("PUT", url, connection, body=body, headers=headers)
        if response.status == 412:
            # It exists (a push whose record was lost) or the user changed it: ours is a mirror, overwrite.
            headers.pop("If-None-Match", None)
            headers.pop("If-Match", None)
            response = await self._send("PUT", url, connection, body=body, headers=headers)
        if response.status in (404, 409, 410):
            raise CalendarGone(f"the calendar {remote_calendar_id} is gone (HTTP {response.status} on PUT)")
        if not 200 <= response.status < 300:
            raise EventRejected(f"HTTP {response.status} on PUT: {response.body[:200].decode(errors='replace')}")
        return PushedEvent(remote_id=url, etag=response.etag)

    async def delete_event(
        self, connection: Connection, remote_calendar_id: str, remote_id: str, etag: str | None
    ) -> None:
        headers = {"If-Match": etag} if etag else {}
        response = await self._send("DELETE", remote_id, connection, headers=headers)
        if response.status == 412:
            response = await self._send("DELETE", remote_id, connection)
        if response.status in (404, 410) or 200 <= response.status < 300:
            return
        if response.status == 409:
            raise CalendarGone(f"the calendar {remote_calendar_id} is gone (HTTP 409 on DELETE)")
        raise TransientError(f"HTTP {response.status} on DELETE {remote_id}")
