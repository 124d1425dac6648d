"""Every URL of the web service. `/console/...` belongs to the merchant console."""

from __future__ import annotations

from services.web.api import handlers as h
from shared.web import Route

PAGE = "/c/{accountCode}/{calendarCode}"


def routes() -> list[Route]:
    html = "text/html"
    return [
        Route("GET", "/", h.home, "what this site is", public=True, response_content_type=html),
        Route(
            "GET",
            "/static/{name}",
            h.static_asset,
            "the pages' CSS and script (content-hashed URLs, cached for a year)",
            public=True,
            response_content_type="text/css",
        ),
        Route(
            "GET",
            PAGE,
            h.calendar_page,
            "a calendar's public page: what it holds, its tags and time zones to choose, the subscribe buttons",
            public=True,
            response_content_type=html,
            responses={"404": "no such calendar"},
        ),
        Route(
            "HEAD",
            PAGE,
            h.calendar_page,
            "the calendar page's headers (uptime checks)",
            public=True,
            response_content_type=html,
            name="calendar_page_head",
        ),
        Route(
            "POST",
            PAGE,
            h.subscribe,
            "subscribe from the page (form: app, tag..., timezone, email, opt-ins, utm_*, referrer): the"
            " confirmation page, or 303 to Google's consent screen",
            public=True,
            request_content_type="application/x-www-form-urlencoded",
            response_content_type=html,
            responses={"303": "to Google's consent screen", "400": "a choice to fix (the page again)"},
        ),
        Route(
            "GET",
            PAGE + "/google",
            h.google_done,
            "where Google's consent flow returns the visitor",
            public=True,
            response_content_type=html,
        ),
        Route(
            "GET",
            "/embed/{accountCode}/{calendarCode}.js",
            h.embed_script,
            "the embeddable Subscribe button: a script that puts a link to the calendar page after itself",
            public=True,
            response_content_type="text/javascript",
        ),
    ]
