"""Subscription rules: which path a subscriber takes, what device they used, their webcal URL.

The platform rules are a handful of user-agent tokens, written here rather than taken from a
general user-agent parser because the decision also needs in-app browser markers (Facebook's
`FB4A`/`FBAN`, Outlook) that such parsers do not map to a platform.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from typing import Literal
from urllib.parse import quote, urlsplit

from shared.errors import InvalidRequest

SubscriptionType = Literal["webcal", "google", "caldav"]

_ANDROID = re.compile(r"android|fb4a|\bcros\b|chrome os", re.IGNORECASE)
_APPLE_MOBILE = re.compile(r"iphone|ipod|fban|fbios", re.IGNORECASE)
_IPAD = re.compile(r"ipad", re.IGNORECASE)
_DESKTOP = re.compile(r"macintosh|mac os x|windows|outlook|microsoft office|linux|x11|cros", re.IGNORECASE)
_TABLET_HINT = re.compile(r"tablet|sm-t\d|nexus (7|9|10)", re.IGNORECASE)

# 24 random bytes: 192 bits, beyond guessing, so one fast hash is a fit store for it.
PASSWORD_BYTES = 24
PASSWORD_HASH_PREFIX = "sha256:"


def subscription_type(method: str | None, user_agent: str | None) -> SubscriptionType:
    """`subscriptionMethod` when given, else from the user agent: Android and Chrome OS take the
    Google path; Apple platforms, Windows, Outlook and anything unknown take webcal."""
    if method is not None and method.strip():
        chosen = method.strip().lower()
        if chosen == "webcal":
            return "webcal"
        if chosen == "google":
            return "google"
        if chosen == "caldav":
            return "caldav"
        raise InvalidRequest("subscriptionMethod: must be WebCal, Google or CalDAV")
    if user_agent and _ANDROID.search(user_agent) and not _APPLE_MOBILE.search(user_agent):
        return "google"
    return "webcal"


def device_name(user_agent: str | None) -> str:
    """The device class of seed 002's webhook payload (`deviceName`)."""
    if not user_agent:
        return "Unknown"
    if _IPAD.search(user_agent):
        return "iPad"
    if _APPLE_MOBILE.search(user_agent):
        return "iPhone"
    if re.search(r"android|fb4a", user_agent, re.IGNORECASE):
        return "Android Tablet" if _TABLET_HINT.search(user_agent) else "Android Phone"
    if _DESKTOP.search(user_agent):
        return "Desktop"
    if "mobile" in user_agent.lower():
        return "Mobile"
    return "Unknown"


def referrer_source(url_referrer: str | None) -> str | None:
    """Seed 002's `source`: the referrer grouped at the domain level."""
    if not url_referrer:
        return None
    text = url_referrer if "//" in url_referrer else f"//{url_referrer}"
    try:
        host = urlsplit(text).hostname
    except ValueError:
        return None
    return host.removeprefix("www.") if host else None


def new_feed_password() -> str:
    return secrets.token_urlsafe(PASSWORD_BYTES)


def hash_feed_password(password: str) -> str:
    """`sha256:<hex>` of the UTF-8 password: what the feed checks HTTP Basic credentials against."""
    return PASSWORD_HASH_PREFIX + hashlib.sha256(password.encode()).hexdigest()


def feed_password_matches(password: str, stored: str) -> bool:
    return hmac.compare_digest(hash_feed_password(password), stored)


def webcal_url(
    public_feed_url: str, subscription_id: uuid.UUID, *, username: str | None = None, password: str | None = None
) -> str:
    """`webcal://` + the public feed host + `/v1/webcal/{id}`, with credentials when protected."""
    parts = urlsplit(public_feed_url)
    host = parts.netloc.rsplit("@", 1)[-1]
    base_path = parts.path.rstrip("/")
    credentials = ""
    if username is not None and password is not None:
        credentials = f"{quote(username, safe='')}:{quote(password, safe='')}@"
    return f"webcal://{credentials}{host}{base_path}/v1/webcal/{subscription_id}"


def require_routing_hint(method: str | None, user_agent: str | None) -> None:
    """Seed 002: `userAgent` is "Required if no subscriptionMethod value is passed through"; it is
    what chooses between the webcal and the Google path."""
    if (method is None or not method.strip()) and (user_agent is None or not user_agent.strip()):
        raise InvalidRequest(
            "userAgent: required when no subscriptionMethod is given; send the subscriber's user agent,"
            " or subscriptionMethod (WebCal or Google)"
        )
