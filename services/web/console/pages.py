"""What every console page shares: its session, the API calls with the user's token, rendering, redirects."""

from __future__ import annotations

import secrets
from typing import Any, NoReturn

import aiohttp_jinja2
from aiohttp import web

from services.web.console import auth, sessions
from services.web.console.apis import Apis
from services.web.console.auth import ConsoleSession
from services.web.console.settings import ConsoleSettings
from shared.lifecycle import POOL

APIS = web.AppKey("console_apis", Apis)
CONSOLE = web.AppKey("console_settings", ConsoleSettings)
SESSION_KEY = "console_session"
SESSION_COOKIE = "kalends_console"
LOGIN_CSRF_COOKIE = "kalends_console_csrf"
COOKIE_PATH = "/console"


def session_of(request: web.Request) -> ConsoleSession:
    session: ConsoleSession = request[SESSION_KEY]
    return session


def account(request: web.Request) -> str:
    return session_of(request).account_code


async def api(request: web.Request, method: str, service: str, path: str, **kwargs: Any) -> Any:
    """One call of a public API as the logged-in user (ApiProblem when refused)."""
    return await request.app[APIS].call(method, service, path, token=session_of(request).access_token, **kwargs)


async def render(request: web.Request, template: str, context: dict[str, Any], status: int = 200) -> web.Response:
    session: ConsoleSession | None = request.get(SESSION_KEY)
    notice = None
    if session is not None and request.method == "GET":
        notice = await auth.notice(request.app[POOL], session.session_id)
    response = aiohttp_jinja2.render_template(
        template,
        request,
        {
            "session": session,
            "csrf": session.csrf_token if session else "",
            "form_id": secrets.token_urlsafe(16),  # see once_only
            "notice": notice,
            "errors": [],
            **context,
        },
        status=status,
    )
    response.headers["Cache-Control"] = "no-store"
    return response


async def done(request: web.Request, location: str, notice: str | None = None) -> NoReturn:
    """After a successful POST: leave a notice for the next page and redirect there (303, POST/redirect/GET)."""
    if notice is not None:
        await auth.notice(request.app[POOL], session_of(request).session_id, notice)
    raise web.HTTPSeeOther(location)


async def once_only(request: web.Request, form: Any, location: str, notice: str) -> None:
    """For a form that makes a secret: the first post of its one-time `formId` goes on; a later one (the
    browser reloading the page that showed the secret) is redirected to `location` with `notice`, so a
    reload never makes a second key, client, endpoint or rotation. A post without the field goes on."""
    form_id = form.get("formId")
    if not isinstance(form_id, str) or not form_id:
        return
    async with request.app[POOL].acquire() as conn:
        first = await sessions.use_form(conn, session_of(request).session_id, form_id[:64])
    if not first:
        await done(request, location, notice)


def set_cookie(response: web.StreamResponse, request: web.Request, name: str, value: str, max_age: int | None) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=COOKIE_PATH,
        httponly=True,
        samesite="Lax",
        secure=request.app[CONSOLE].secure_cookies,
    )


def form_text(form: Any, name: str, maximum: int = 20_000) -> str:
    value = form.get(name, "")
    return value.strip()[:maximum] if isinstance(value, str) else ""
