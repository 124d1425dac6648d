"""Every URL of the feed service."""

from __future__ import annotations

from services.feed.api import handlers, ics
from services.feed.api.schemas import IcsRequest
from shared.web import Route

FEED_RESPONSES = {"304": "not modified", "401": "protected calendar: HTTP Basic needed", "404": "unknown"}


def routes() -> list[Route]:
    out: list[Route] = []
    for method in ("GET", "HEAD"):
        out.append(
            Route(
                method,
                "/v1/webcal/{subscriptionId}",
                handlers.get_subscription_feed,
                "a subscription's iCalendar feed (seed 002, Get Subscription)",
                public=True,
                responses=FEED_RESPONSES,
                response_content_type="text/calendar",
                name=f"subscription_feed_{method.lower()}",
            )
        )
        out.append(
            Route(
                method,
                "/v1/calendars/{accountCode}/{calendarCode}.ics",
                handlers.get_calendar_feed,
                "a whole unprotected calendar as an .ics download",
                public=True,
                responses={"304": "not modified", "403": "protected calendar", "404": "unknown calendar"},
                response_content_type="text/calendar",
                name=f"calendar_feed_{method.lower()}",
            )
        )
    out.append(
        Route(
            "POST",
            "/v1/ics",
            ics.create_calendar,
            "seed 001 Create Calendar API V2: one event in, an .ics file out (x-api-key)",
            request_model=IcsRequest,
            public=True,
            responses={"401": "x-api-key missing or not valid (seed 001's error body)"},
            response_content_type="text/calendar",
            name="create_calendar_ics",
        )
    )
    return out
