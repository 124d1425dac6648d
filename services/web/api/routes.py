"""Every URL of the web service. `/console/...` belongs to the merchant console."""

from __future__ import annotations

from services.web.api import handlers as h
from shared.web import Route


def routes() -> list[Route]:
    return [
        Route("GET", "/", h.home, "what this site is", public=True, response_content_type="text/html"),
        Route(
            "GET",
            "/static/{name}",
            h.static_asset,
            "the pages' CSS and script (content-hashed URLs, cached for a year)",
            public=True,
            response_content_type="text/css",
        ),
    ]
