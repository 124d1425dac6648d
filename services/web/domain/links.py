"""The links that hand a subscription's feed to each calendar app (pure: strings in, strings out).

ingest answers a webcal subscription with `webcal://[user:pass@]feed-host/v1/webcal/{id}`. Apple
Calendar and Outlook desktop open that link themselves; Google Calendar and Outlook on the web take
the feed's http(s) address in their add-by-URL pages; a browser downloads the http(s) address.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode, urlsplit, urlunsplit

from services.web.domain.devices import App

GOOGLE_ADD = "https://calendar.google.com/calendar/render"
OUTLOOK_COM_ADD = "https://outlook.live.com/calendar/0/addfromweb"
OFFICE365_ADD = "https://outlook.office.com/calendar/0/addfromweb"


def http_feed_url(subscription_url: str, public_feed_url: str) -> str:
    """The webcal URL as http(s), the scheme the public feed address is served with."""
    parts = urlsplit(subscription_url)
    if parts.scheme in ("http", "https"):
        return subscription_url
    scheme = urlsplit(public_feed_url).scheme or "https"
    return urlunsplit(parts._replace(scheme=scheme))


def webcal_feed_url(subscription_url: str) -> str:
    parts = urlsplit(subscription_url)
    return urlunsplit(parts._replace(scheme="webcal"))


def google_add_url(feed_url: str) -> str:
    """Google Calendar's "From URL" dialog, pre-filled (`cid` takes the webcal address)."""
    return f"{GOOGLE_ADD}?{urlencode({'cid': webcal_feed_url(feed_url)}, quote_via=quote)}"


def outlook_web_add_url(base: str, feed_url: str, name: str) -> str:
    return f"{base}?{urlencode({'url': feed_url, 'name': name}, quote_via=quote)}"


def app_link(app: App, subscription_url: str, public_feed_url: str, calendar_name: str) -> str:
    """Where the confirmation page sends the visitor for `app` (COPY: the address to copy)."""
    http_url = http_feed_url(subscription_url, public_feed_url)
    match app:
        case App.APPLE | App.OUTLOOK:
            return webcal_feed_url(subscription_url)
        case App.GOOGLE:
            return google_add_url(http_url)
        case App.OUTLOOK_COM:
            return outlook_web_add_url(OUTLOOK_COM_ADD, http_url, calendar_name)
        case App.OFFICE365:
            return outlook_web_add_url(OFFICE365_ADD, http_url, calendar_name)
        case App.ICS | App.COPY:
            return http_url
