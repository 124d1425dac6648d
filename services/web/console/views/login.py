"""Login, logout and the one-time set-password page."""

from __future__ import annotations

import secrets

from aiohttp import web

from services.web.api.handlers import SETTINGS
from services.web.console import auth
from services.web.console.apis import ApiProblem
from services.web.console.pages import (
    APIS,
    CONSOLE,
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    form_text,
    render,
    session_of,
    set_cookie,
)
from shared.http import read_form
from shared.lifecycle import POOL
from shared.web import client_address

HOME = "/console/calendars"


def _next(request: web.Request, value: str) -> str:
    """Only a console path: never a redirect off the site."""
    return value if value.startswith("/console/") and not value.startswith("//") and "\\" not in value else HOME


async def _form_page(
    request: web.Request, template: str, context: dict[str, object], status: int = 200
) -> web.Response:
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
    response = await render(request, template, {"form_csrf": token, **context}, status=status)
    set_cookie(response, request, LOGIN_CSRF_COOKIE, token, max_age=3600)
    return response


async def login_form(request: web.Request) -> web.Response:
    target = _next(request, request.query.get("next", ""))
    context = {"email": "", "next": target, "logged_out": bool(request.query.get("out"))}
    return await _form_page(request, "console/login.html", context)


async def login(request: web.Request) -> web.StreamResponse:
    form = await read_form(request)
    email, password = form_text(form, "email", 1024), str(form.get("password", ""))[:1024]
    target = _next(request, form_text(form, "next", 2048))
    address = client_address(request, request.app[SETTINGS].platform.trusted_proxies)
    try:
        session = await auth.login(
            request.app[POOL], request.app[APIS], request.app[CONSOLE].secret_box, email, password, address
        )
    except ApiProblem as problem:
        status = problem.status if problem.status in (400, 401, 403, 429) else 503
        return await _form_page(
            request,
            "console/login.html",
            {"email": email, "next": target, "errors": problem.reasons, "logged_out": False},
            status=status,
        )
    response = web.HTTPSeeOther(target)
    max_age = None  # a browser-session cookie; the server side ends with the refresh token's expiry
    set_cookie(response, request, SESSION_COOKIE, session.session_id, max_age)
    response.del_cookie(LOGIN_CSRF_COOKIE, path="/console")
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    session = session_of(request)
    await auth.logout(request.app[POOL], request.app[APIS], request.app[CONSOLE].secret_box, session.session_id)
    response = web.HTTPSeeOther("/console/login?out=1")
    response.del_cookie(SESSION_COOKIE, path="/console")
    raise response


async def set_password_form(request: web.Request) -> web.Response:
    return await _form_page(request, "console/set_password.html", {"done": False})


async def set_password(request: web.Request) -> web.Response:
    form = await read_form(request)
    password, again = str(form.get("password", ""))[:1024], str(form.get("again", ""))[:1024]
    if password != again:
        return await _form_page(
            request, "console/set_password.html", {"done": False, "errors": ["the two passwords differ"]}, status=400
        )
    try:
        answer = await request.app[APIS].call(
            "POST",
            "auth",
            "/v1/users/password",
            body={"token": request.match_info["token"], "password": password},
        )
    except ApiProblem as problem:
        status = problem.status if problem.status in (400, 429) else 503
        return await _form_page(
            request, "console/set_password.html", {"done": False, "errors": problem.reasons}, status=status
        )
    return await _form_page(request, "console/set_password.html", {"done": True, "email": answer["email"]})


async def home(request: web.Request) -> web.StreamResponse:
    raise web.HTTPSeeOther(HOME)
