"""The console's gate: a live session for every page but login, CSRF on every form, API refusals as pages.

CSRF: a form of a session carries the session's token; the login and set-password forms (before a
session exists) carry a token also set as a cookie (double submit). SameSite=Lax cookies and an
Origin check (when the browser sends one) stop cross-site posts a second way.
"""

from __future__ import annotations

import hmac
from urllib.parse import quote, urlsplit

from aiohttp import web

from services.web.console import auth
from services.web.console.apis import ApiProblem
from services.web.console.pages import APIS, CONSOLE, LOGIN_CSRF_COOKIE, SESSION_COOKIE, SESSION_KEY, render
from shared.http import read_form
from shared.lifecycle import POOL
from shared.logging import get_logger
from shared.web import Handler

log = get_logger(__name__)

OPEN_PATHS = ("/console/login", "/console/set-password/")


def _is_open(path: str) -> bool:
    return path == OPEN_PATHS[0] or path.startswith(OPEN_PATHS[1])


def _same_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    if origin is None or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.host


async def _refused(request: web.Request, reason: str) -> web.Response:
    return await render(request, "console/problem.html", {"title": "Refused", "reasons": [reason]}, status=403)


@web.middleware
async def console_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not (request.path == "/console" or request.path.startswith("/console/")):
        return await handler(request)
    if request.match_info.http_exception is not None:
        # No such page, or not with this method: its 404 or 405 (with Allow), as for anyone, rather
        # than a redirect to the login page that a signed-in visitor would follow back to the error.
        return await handler(request)
    posting = request.method == "POST"
    if posting and not _same_origin(request):
        return await _refused(request, "this form was sent from another site")
    try:
        if _is_open(request.path):
            if posting:
                form = await read_form(request)
                cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
                sent = form.get("csrf", "")
                if not cookie or not isinstance(sent, str) or not hmac.compare_digest(cookie, sent):
                    return await _refused(request, "the form expired; reload the page and try again")
            return await handler(request)
        session_id = request.cookies.get(SESSION_COOKIE, "")
        session = None
        if session_id:
            session = await auth.load(request.app[POOL], request.app[APIS], request.app[CONSOLE].secret_box, session_id)
        if session is None:
            target = request.path_qs if request.method == "GET" else "/console/"
            raise web.HTTPSeeOther(f"/console/login?next={quote(target, safe='')}")
        request[SESSION_KEY] = session
        if posting:
            form = await read_form(request)
            sent = form.get("csrf", "")
            if not isinstance(sent, str) or not hmac.compare_digest(session.csrf_token, sent):
                return await _refused(request, "the form expired; reload the page and try again")
        return await handler(request)
    except ApiProblem as problem:
        # A refusal no page handled itself (a deleted calendar, a 503): the API's own words.
        title = "Not found" if problem.status == 404 else "Refused" if problem.status < 500 else "Unavailable"
        status = problem.status if problem.status in (400, 403, 404, 409, 429, 503) else 502
        return await render(
            request, "console/problem.html", {"title": title, "reasons": problem.reasons}, status=status
        )
