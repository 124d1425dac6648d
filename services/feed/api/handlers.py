"""Feed HTTP handlers: thin, each calls one use-case and answers with HTTP caching done right."""

from __future__ import annotations

import uuid
from email.utils import parsedate_to_datetime

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from services.feed.api.lean import CORS_HEADERS, lean
from services.feed.app_keys import FEEDS
from services.feed.domain.credentials import credentials_match
from services.feed.services import CalendarProtected, Feed, FeedNotFound, FeedService
from shared.errors import ApiError, Forbidden, NotFound, Unauthorized

CONTENT_TYPE = "text/calendar; charset=utf-8"
# A subscriber's own feed (it carries their unsubscribe link): no shared cache may keep it, and
# clients revalidate each poll, which costs a 304 when nothing changed.
FEED_CACHE_CONTROL = "private, max-age=0, must-revalidate"
CALENDAR_CACHE_CONTROL = "public, max-age=0, must-revalidate"
VARY = "Accept-Encoding, Authorization"


def wants_gzip(accept_encoding: str) -> bool:
    if "gzip" not in accept_encoding:
        return False
    for part in accept_encoding.split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() in {"gzip", "x-gzip"}:
            q = params.strip().lower()
            return not (q.startswith("q=") and q[2:].strip().rstrip("0").rstrip(".") in {"0", ""})
    return False


def _etag_matches(header: str, feed: Feed) -> bool:
    if header.strip() == "*":
        return True
    # Weak comparison (RFC 9110 13.1.2) for If-None-Match: W/ prefixes are ignored.
    tags = {t.strip().removeprefix("W/") for t in header.split(",")}
    return feed.etag in tags or feed.gzip_etag in tags


def _not_modified(headers: CIMultiDictProxy[str], feed: Feed) -> bool:
    if_none_match = headers.get("If-None-Match")
    if if_none_match is not None:
        # The common poll sends back exactly the tag it was given: no parsing for that.
        return if_none_match == feed.etag or if_none_match == feed.gzip_etag or _etag_matches(if_none_match, feed)
    if_modified_since = headers.get("If-Modified-Since")
    if if_modified_since:
        if if_modified_since == feed.last_modified_http:
            return True
        try:
            since = parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError):
            return False
        if since.tzinfo is None:
            return False
        return feed.last_modified <= since
    return False


class ChunksResponse(web.StreamResponse):
    """A body written as the chunks it is kept in (header, shared section, tail): nothing is joined
    per request. Its Content-Length is known up front, so no chunked encoding either.

    The first chunk goes out with the status line and headers (aiohttp coalesces them); the rest in
    one `writelines` call, a single writev, since a write per chunk would cost a system call each.
    """

    # aiohttp's opt-in (web.Response sets it too): hold the status line and headers until the first
    # body write, so they share its system call instead of costing one of their own.
    _send_headers_immediately = False

    def __init__(self, chunks: list[bytes], length: int, headers: CIMultiDict[str]) -> None:
        super().__init__(headers=headers)
        self._chunks = chunks
        self.content_length = length

    async def write_eof(self, data: bytes = b"") -> None:
        chunks, self._chunks = self._chunks, []
        if not chunks:
            await super().write_eof(data)
            return
        await self.write(chunks[0])
        rest = [chunk for chunk in chunks[1:] if chunk]
        transport = self._req.transport if self._req is not None else None
        if rest and transport is not None and not transport.is_closing():
            transport.writelines(rest)
            writer = self._payload_writer
            if writer is not None:
                await writer.drain()  # a slow reader holds this response here, as aiohttp's own writes do
        await super().write_eof()


# The headers every answer of one calendar shares (its file name, the cache policy, CORS), built
# once: a request copies them (one C-level copy) and sets its validators.
_SHARED_HEADERS: dict[tuple[str, str], CIMultiDict[str]] = {}


def _headers(feed: Feed, cache_control: str, gz: bool) -> CIMultiDict[str]:
    key = (feed.disposition, cache_control)
    shared = _SHARED_HEADERS.get(key)
    if shared is None:
        if len(_SHARED_HEADERS) > 10_000:
            _SHARED_HEADERS.clear()
        shared = _SHARED_HEADERS[key] = CIMultiDict(
            {
                "Content-Type": CONTENT_TYPE,
                "Content-Disposition": feed.disposition,
                "Cache-Control": cache_control,
                "Vary": VARY,
                **CORS_HEADERS,
            }
        )
    headers = shared.copy()
    headers["ETag"] = feed.gzip_etag if gz else feed.etag
    headers["Last-Modified"] = feed.last_modified_http
    return headers


async def feed_response(
    feeds: FeedService, request: web.BaseRequest, feed: Feed, cache_control: str
) -> web.StreamResponse:
    request_headers = request.headers
    gz = wants_gzip(request_headers.get("Accept-Encoding", ""))
    headers = _headers(feed, cache_control, gz)
    # A 304 needs nothing but the validators: no body, no compression.
    if _not_modified(request_headers, feed):
        return web.StreamResponse(status=304, headers=headers)
    head = request.method == "HEAD"
    if gz:
        headers["Content-Encoding"] = "gzip"
        if head:
            chunks = await feeds.gzip_chunks(feed)
            return ChunksResponse([], sum(map(len, chunks)), headers)
        # A few kilobytes: joined, it leaves with the headers in one write.
        return web.Response(body=await feeds.gzip_body(feed), headers=headers)
    return ChunksResponse([] if head else feed.chunks(), feed.length, headers)


def _subscription_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise NotFound(f"no subscription {raw!r}: a subscription id is a UUID", code="SubscriptionNotFound") from None


def _check_credentials(request: web.BaseRequest, feed: Feed) -> None:
    """Fails closed: a protected calendar's feed is served only to credentials that match a stored
    hash; a subscription without one (made before the calendar became protected, a Google one) gets
    401 whatever it sends, until the merchant issues it credentials (rotate-credentials)."""
    if not feed.protected:
        return
    header = request.headers.get("Authorization", "")
    if feed.feed_password_hash and header and credentials_match(header, feed.feed_username, feed.feed_password_hash):
        return
    raise Unauthorized(
        "this calendar is protected: use the credentials of your webcal URL",
        code="FeedCredentialsRequired",
        headers={"WWW-Authenticate": 'Basic realm="Kalends calendar", charset="UTF-8"'},
    )


async def subscription_feed(feeds: FeedService, request: web.BaseRequest, raw_id: str) -> web.StreamResponse:
    """GET|HEAD /v1/webcal/{subscriptionId}, reached through the router or the front (api/front.py)."""
    # Cached under the id as text: a poll of a current feed parses nothing and touches no database,
    # nor does a popular calendar's subscriber's first poll (put together from the directory).
    feed = feeds.current(raw_id) or feeds.from_directory(raw_id)
    if feed is None:
        try:
            feed = await feeds.subscription_feed(_subscription_id(raw_id))
        except FeedNotFound as exc:
            raise NotFound(str(exc), code="SubscriptionNotFound") from None
    _check_credentials(request, feed)
    return await feed_response(feeds, request, feed, FEED_CACHE_CONTROL)


@lean
async def get_subscription_feed(request: web.Request) -> web.StreamResponse:
    """GET|HEAD /v1/webcal/{subscriptionId}"""
    return await subscription_feed(request.app[FEEDS], request, request.match_info["subscriptionId"])


@lean
async def get_calendar_feed(request: web.Request) -> web.StreamResponse:
    """GET|HEAD /v1/calendars/{accountCode}/{calendarCode}.ics"""
    feeds = request.app[FEEDS]
    try:
        feed = await feeds.calendar_feed(request.match_info["accountCode"], request.match_info["calendarCode"])
    except FeedNotFound as exc:
        raise NotFound(str(exc), code="CalendarNotFound") from None
    except CalendarProtected as exc:
        raise Forbidden(f"{exc}: subscribe to it to get a feed", code="CalendarProtected") from None
    return await feed_response(feeds, request, feed, CALENDAR_CACHE_CONTROL)


__all__ = ["ApiError", "get_calendar_feed", "get_subscription_feed", "subscription_feed"]
