"""HTML error pages for visitors (the JSON error body is for API clients) and the pages' security headers."""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from shared.errors import ApiError
from shared.logging import get_logger
from shared.web import Handler

log = get_logger(__name__)

# Pages load only their own CSS and script; images (calendar pictures) may come from anywhere over HTTPS.
CSP = (
    "default-src 'self'; img-src 'self' https: data:; style-src 'self' 'unsafe-inline'; script-src 'self'; "
    "form-action 'self' https://calendar.google.com https://accounts.google.com; base-uri 'none'; "
    "frame-ancestors 'none'; object-src 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}
TITLES = {
    400: "Bad request",
    404: "Not found",
    405: "Method not allowed",
    413: "Too large",
    429: "Too many requests",
    503: "Unavailable",
}


def error_page(request: web.Request, status: int, reason: str) -> web.Response:
    title = TITLES.get(status, "Error" if status < 500 else "Something went wrong")
    response = aiohttp_jinja2.render_template(
        "error.html", request, {"title": title, "status": status, "reason": reason}, status=status
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def _wants_html(request: web.Request) -> bool:
    return "text/html" in request.headers.get("Accept", "") and not request.path.startswith("/embed/")


@web.middleware
async def pages_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A visitor who asks for HTML gets an error page (probes and API clients keep the JSON body),
    and every HTML answer the pages' security headers."""
    try:
        response = await handler(request)
    except ApiError as error:
        if not _wants_html(request):
            raise
        response = error_page(request, error.status, error.reason if error.status < 500 else "please try again soon")
    except web.HTTPException as exc:
        if exc.status < 400 or not _wants_html(request):
            raise
        reason = "there is no page at this address" if exc.status == 404 else exc.reason
        response = error_page(request, exc.status, reason if exc.status < 500 else "please try again soon")
    if not response.prepared and (response.content_type or "").startswith("text/html"):
        for name, value in PAGE_HEADERS.items():
            response.headers.setdefault(name, value)  # a handler's stricter choice stands
    return response
