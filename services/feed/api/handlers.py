"""Feed HTTP handlers: thin, each calls one use-case and answers with HTTP caching done right."""

from __future__ import annotations

import uuid
from email.utils import format_datetime, parsedate_to_datetime

from aiohttp import web

from services.feed.app_keys import FEEDS
from services.feed.domain.credentials import credentials_match
from services.feed.services import CalendarProtected, Feed, FeedNotFound
from shared.errors import ApiError, Forbidden, NotFound, Unauthorized

CONTENT_TYPE = "text/calendar; charset=utf-8"
# A subscriber's own feed (it carries their unsubscribe link): no shared cache may keep it, and
# clients revalidate each poll, which costs a 304 when nothing changed.
FEED_CACHE_CONTROL = "private, max-age=0, must-revalidate"
CALENDAR_CACHE_CONTROL = "public, max-age=0, must-revalidate"


def wants_gzip(request: web.Request) -> bool:
    for part in request.headers.get("Accept-Encoding", "").split(","):
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


def _not_modified(request: web.Request, feed: Feed) -> bool:
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None:
        return _etag_matches(if_none_match, feed)
    if_modified_since = request.headers.get("If-Modified-Since")
    if if_modified_since:
        try:
            since = parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError):
            return False
        if since.tzinfo is None:
            return False
        return feed.last_modified <= since
    return False


async def feed_response(request: web.Request, feed: Feed, disposition: str, cache_control: str) -> web.Response:
    gz = wants_gzip(request)
    headers = {
        "Content-Type": CONTENT_TYPE,
        "Content-Disposition": disposition,
        "ETag": feed.gzip_etag if gz else feed.etag,
        "Last-Modified": format_datetime(feed.last_modified, usegmt=True),
        "Cache-Control": cache_control,
        "Vary": "Accept-Encoding, Authorization",
    }
    if _not_modified(request, feed):
        return web.Response(status=304, headers=headers)
    if gz:
        headers["Content-Encoding"] = "gzip"
        return web.Response(body=await request.app[FEEDS].gzip_body(feed), headers=headers)
    return web.Response(body=feed.body, headers=headers)


def _subscription_id(request: web.Request) -> uuid.UUID:
    raw = request.match_info["subscriptionId"]
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise NotFound(f"no subscription {raw!r}: a subscription id is a UUID", code="SubscriptionNotFound") from None


def _check_credentials(request: web.Request, feed: Feed) -> None:
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


async def get_subscription_feed(request: web.Request) -> web.Response:
    """GET|HEAD /v1/webcal/{subscriptionId}"""
    subscription_id = _subscription_id(request)
    try:
        feed = await request.app[FEEDS].subscription_feed(subscription_id)
    except FeedNotFound as exc:
        raise NotFound(str(exc), code="SubscriptionNotFound") from None
    _check_credentials(request, feed)
    return await feed_response(request, feed, f'inline; filename="{feed.filename}"', FEED_CACHE_CONTROL)


async def get_calendar_feed(request: web.Request) -> web.Response:
    """GET|HEAD /v1/calendars/{accountCode}/{calendarCode}.ics"""
    try:
        feed = await request.app[FEEDS].calendar_feed(
            request.match_info["accountCode"], request.match_info["calendarCode"]
        )
    except FeedNotFound as exc:
        raise NotFound(str(exc), code="CalendarNotFound") from None
    except CalendarProtected as exc:
        raise Forbidden(f"{exc}: subscribe to it to get a feed", code="CalendarProtected") from None
    return await feed_response(request, feed, f'attachment; filename="{feed.filename}"', CALENDAR_CACHE_CONTROL)


__all__ = ["ApiError", "get_calendar_feed", "get_subscription_feed"]
