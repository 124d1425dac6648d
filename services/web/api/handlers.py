"""Thin handlers of the web service: parse, call one use-case, render a template."""

from __future__ import annotations

import math
from urllib.parse import quote

import aiohttp_jinja2
from aiohttp import web
from markupsafe import Markup, escape

from services.web.api.assets import Assets
from services.web.api.middleware import PAGE_HEADERS as SECURITY_HEADERS
from services.web.api.middleware import error_page
from services.web.api.rendering import page_variables
from services.web.domain import embed
from services.web.domain.devices import LABELS, App, device_of, is_mobile
from services.web.domain.page import CalendarPage
from services.web.domain.rate_limit import SubscribeLimiter
from services.web.domain.subscribe import UTM_FIELDS, FormProblem, PageVisit, read_form
from services.web.services import CalendarPages
from services.web.settings import WebSettings
from shared.http import read_form as read_posted_form
from shared.logging import get_logger
from shared.web import client_address

log = get_logger(__name__)

SETTINGS = web.AppKey("web_settings", WebSettings)
ASSETS = web.AppKey("web_assets", Assets)
PAGES = web.AppKey("web_pages", CalendarPages)
LIMITER = web.AppKey("web_subscribe_limiter", SubscribeLimiter)
PAGE_CACHE = "public, max-age=30"
# The calendar page's headers, built once. It differs by device: shared caches must not hand an
# iPhone's page to a Windows PC (Vary).
PAGE_HEADERS = {
    "Content-Type": "text/html; charset=utf-8",
    "Cache-Control": PAGE_CACHE,
    "Vary": "User-Agent",
    **SECURITY_HEADERS,
}
NO_STORE = "no-store"


async def home(request: web.Request) -> web.Response:
    return aiohttp_jinja2.render_template("home.html", request, {})


async def static_asset(request: web.Request) -> web.StreamResponse:
    return request.app[ASSETS].response(request, request.match_info["name"])


def _codes(request: web.Request) -> tuple[str, str]:
    account, code = request.match_info["accountCode"], request.match_info["calendarCode"]
    if len(account) > 64 or len(code) > 255 or "\x00" in account + code:
        raise web.HTTPNotFound()
    return account, code


def visit_fields(visit: PageVisit) -> bytes:
    """The hidden inputs that carry the visit (UTM parameters, referrer) into the subscribe form."""
    fields = [*visit.utm.items(), *([("referrer", visit.referrer)] if visit.referrer else [])]
    return "".join(f'<input type="hidden" name="{n}" value="{escape(v)}">' for n, v in fields).encode()


async def calendar_page(request: web.Request) -> web.Response:
    account, code = _codes(request)
    before, after = await request.app[PAGES].html(account, code, request.headers.get("User-Agent"))
    visit = PageVisit.from_query(request.query, request.headers.get("Referer"))
    return web.Response(body=before + visit_fields(visit) + after, headers=PAGE_HEADERS)


async def subscribe(request: web.Request) -> web.StreamResponse:
    address = client_address(request, request.app[SETTINGS].platform.trusted_proxies)
    wait = request.app[LIMITER].take(address)
    if wait:
        log.warning("web.subscribe_limited", address=address, retry_after=wait)
        minutes = math.ceil(wait / 60)
        reason = f"too many subscriptions from your network; try again in {minutes} minute{'s' * (minutes != 1)}"
        response = error_page(request, 429, reason)
        response.headers["Retry-After"] = str(int(wait))
        return response
    account, code = _codes(request)
    pages = request.app[PAGES]
    page = await pages.page(account, code)
    form = await read_posted_form(request)
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    tags = [v for v in form.getall("tag", []) if isinstance(v, str)]
    user_agent = request.headers.get("User-Agent")
    try:
        choice = read_form(values, tags, page)
    except FormProblem as problem:
        return aiohttp_jinja2.render_template(
            "calendar.html",
            request,
            page_context(request, page, user_agent, problem=problem, form=values, chosen=tags),
            status=400,
        )
    base = request.app[SETTINGS].public_web_url
    confirmation = await pages.subscribe(
        page,
        choice,
        user_agent=user_agent,
        ip_address=address,
        google_return=f"{base}/c/{quote(page.account_code, safe='')}/{quote(page.code, safe='')}/google",
    )
    if confirmation.redirect:
        raise web.HTTPSeeOther(confirmation.redirect, headers={"Cache-Control": NO_STORE})
    # The answer of the POST itself: a protected feed's credentials are in this page's body only,
    # never in a URL the browser keeps in its history or sends as a referrer.
    response = aiohttp_jinja2.render_template(
        "confirmation.html", request, {"c": confirmation, "label": LABELS[confirmation.app], "App": App}
    )
    response.headers["Cache-Control"] = NO_STORE
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


async def google_done(request: web.Request) -> web.Response:
    """Where sync's Google flow sends the visitor back (success, subscriptionId in the query)."""
    account, code = _codes(request)
    page = await request.app[PAGES].page(account, code)
    ok = request.query.get("success", "").lower() == "true"
    subscription = request.query.get("subscriptionId", "")[:64]
    base = request.app[SETTINGS].public_api_url
    response = aiohttp_jinja2.render_template(
        "google_done.html",
        request,
        {
            "page": page,
            "ok": ok,
            "unsubscribe_url": f"{base}/v1/unsubscribe/{quote(subscription, safe='')}" if ok and subscription else None,
        },
    )
    response.headers["Cache-Control"] = NO_STORE
    return response


async def embed_script(request: web.Request) -> web.Response:
    account, code = _codes(request)
    page = await request.app[PAGES].page(account, code)
    script = embed.button_script(request.app[SETTINGS].public_web_url, page.account_code, page.code, page.name)
    return web.Response(
        text=script,
        content_type="text/javascript",
        headers={"Cache-Control": "public, max-age=300", "Cross-Origin-Resource-Policy": "cross-origin"},
    )


def page_context(
    request: web.Request,
    page: CalendarPage,
    user_agent: str | None,
    *,
    problem: FormProblem,
    form: dict[str, str],
    chosen: list[str],
) -> dict[str, object]:
    """The calendar template's context for a form shown again with a problem to fix."""
    visit = PageVisit.from_query({k: v for k, v in form.items() if k in UTM_FIELDS}, form.get("referrer"))
    variables = page_variables(request.app[SETTINGS], page, device_of(user_agent), not is_mobile(user_agent))
    return {
        **variables,
        "problem": problem,
        "form": form,
        "chosen": set(chosen),
        "visit": Markup(visit_fields(visit).decode()),  # noqa: S704 - escaped by visit_fields
    }
