"""Feed HTTP handlers: thin, each calls one use-case and answers with HTTP caching done right."""

from __future__ import annotations

import uuid
from email.utils import parsedate_to_datetime

from aiohttp import web
from multidict import CIMultiDictProxy

from services.feed.api.answer import FeedAnswer, header_lines
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


# The header lines every answer of one calendar shares (its file name, the cache policy, CORS), as
# bytes made once: a request adds its validators and length (api/answer.py writes the rest).
_SHARED_LINES: dict[tuple[str, str], bytes] = {}


def _shared_lines(feed: Feed, cache_control: str) -> bytes:
    key = (feed.disposition, cache_control)
    shared = _SHARED_LINES.get(key)
    if shared is None:
        if len(_SHARED_LINES) > 10_000:
            _SHARED_LINES.clear()
        shared = _SHARED_LINES[key] = header_lines(
            {
                "Content-Type": CONTENT_TYPE,
                "Content-Disposition": feed.disposition,
                "Cache-Control": cache_control,
                "Vary": VARY,
                **CORS_HEADERS,
            }
        )
    return shared


async def feed_response(feeds: FeedService, request: web.BaseRequest, feed: Feed, cache_control: str) -> FeedAnswer:
    request_headers = request.headers
    gz = wants_gzip(request_headers.get("Accept-Encoding", ""))
    validators = f"ETag: {feed.gzip_etag if gz else feed.etag}\r\nLast-Modified: {feed.last_modified_http}\r\n"
    # A 304 needs nothing but the validators: no body, no compression, no length.
    if _not_modified(request_headers, feed):
        return FeedAnswer(304, _shared_lines(feed, cache_control) + validators.encode())
    if gz:
        # A few kilobytes: written with the headers in one system call (api/answer.py).
        chunks = feed.gzip_chunks() if feed.gzip_ready else await feeds.gzip_chunks(feed)
        length = sum(map(len, chunks))
        lines = f"{validators}Content-Encoding: gzip\r\nContent-Length: {length}\r\n"
    else:
        lines = f"{validators}Content-Length: {feed.length}\r\n"
        chunks = feed.chunks()
    return FeedAnswer(200, _shared_lines(feed, cache_control) + lines.encode(), chunks)


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
