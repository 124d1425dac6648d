"""The Google routes of the sync service: seed 002's `POST /v1/google/...`, the OAuth callback, and the
consent URL ingest asks for."""

from __future__ import annotations

import uuid
from typing import Any

import aiohttp
from aiohttp import web

from services.sync.google_flow import GoogleFlow, parse_consent_request, result_url, valid_redirect
from shared.errors import ApiError, InvalidRequest, ServiceUnavailable
from shared.http import read_json
from shared.tokens import CALENDAR_PAGES
from shared.web import ACTING_FOR_KEY, Route, claims, json_response

GOOGLE = web.AppKey("sync_google", GoogleFlow)
INGEST_URL = web.AppKey("sync_ingest_url", str)


async def consent(request: web.Request) -> web.Response:
    """POST /v1/google/{accountCode}/{calendarCode}/consent (ingest, with the merchant's Bearer token)."""
    body = await read_json(request)
    if not isinstance(body, dict):
        raise InvalidRequest("body: a JSON object is required")
    account_id = uuid.UUID(claims(request).account_id)
    if request.get(ACTING_FOR_KEY) is not None:
        # ingest relaying a calendar page's subscribe (platform scope calendar-pages): the account is
        # the path's, whose id ingest states.
        try:
            account_id = uuid.UUID(str(body.get("accountId")))
        except ValueError:
            raise InvalidRequest("accountId: the UUID of the path's account is required with this token") from None
    url = await request.app[GOOGLE].consent(account_id, parse_consent_request(body))
    return json_response({"consentUrl": url})


async def callback(request: web.Request) -> web.Response:
    """GET /v1/google/callback (public): Google sends the browser here after the consent screen."""
    location = await request.app[GOOGLE].callback(dict(request.query))
    raise web.HTTPFound(location, headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})


def _without(body: dict[str, Any], *names: str) -> dict[str, Any]:
    lowered = {n.lower() for n in names}
    return {k: v for k, v in body.items() if k.lower() not in lowered}


def _value(body: dict[str, Any], name: str) -> Any:
    return next((v for k, v in body.items() if k.lower() == name.lower()), None)


async def create_google_subscription(request: web.Request) -> web.Response:
    """POST /v1/google/{merchantCode}/{calCode}: seed 002's Google-only subscribe, answered with 302 to
    the consent URL. ingest creates the subscription (it owns them); this route is its Google face."""
    body = await read_json(request, required=False)
    if not isinstance(body, dict):
        raise InvalidRequest("body: a JSON object of calendarParams is required")
    redirect_to = _value(body, "redirectTo")
    if not isinstance(redirect_to, str) or not redirect_to.strip():
        raise InvalidRequest("redirectTo: required; the page the subscriber returns to after Google's consent")
    if not valid_redirect(redirect_to):
        raise InvalidRequest("redirectTo: must be a page URL or an app deep link")
    forwarded = {**_without(body, "subscriptionMethod"), "subscriptionMethod": "google"}
    merchant, calendar = request.match_info["merchantCode"], request.match_info["calCode"]
    url = f"{request.app[INGEST_URL]}/v1/subscribe/{merchant}/{calendar}"
    headers = {"Authorization": request.headers["Authorization"]}
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session,
            session.post(url, json=forwarded, headers=headers) as response,
        ):
            answer = await response.json(content_type=None)
            status = response.status
    except (aiohttp.ClientError, TimeoutError, ValueError):
        raise ServiceUnavailable(
            "the subscription service did not answer; retry", headers={"Retry-After": "5"}
        ) from None
    if status != 200:
        errors = answer.get("errors") if isinstance(answer, dict) else None
        first = errors[0] if errors and isinstance(errors[0], dict) else {}
        raise ApiError(
            str(first.get("reason", "the subscription was refused")),
            code=str(first.get("code", "Error")),
            status=status if 400 <= status < 500 else 503,
        )
    location = answer.get("redirectTo")
    if not location:  # an existing subscription: nothing to consent to, straight back to the merchant
        params = {"success": "true", "new": "false", "subscriptionId": str(answer.get("subscriptionId"))}
        if answer.get("subscriberId"):
            params["subscriberId"] = str(answer["subscriberId"])
        location = result_url(redirect_to, params)
    raise web.HTTPFound(location)


def google_routes() -> list[Route]:
    return [
        Route(
            "GET",
            "/v1/google/callback",
            callback,
            "Google's OAuth redirect: exchanges the code, creates the calendar, pushes the events, then 302 to the"
            " merchant's redirectTo with success, subscriberId, new, subscriptionId (errors on failure)",
            public=True,
            responses={
                "302": "to the merchant's redirectTo with the result",
                "400": "forged, expired or replayed state",
                "409": "Google is not enabled on this server",
            },
            name="google_callback",
        ),
        Route(
            "POST",
            "/v1/google/{merchantCode}/{calCode}",
            create_google_subscription,
            "seed 002's Create New Google Subscription: 302 to Google's consent screen (body: calendarParams,"
            " redirectTo required)",
            responses={"302": "Location: the Google consent URL", "409": "Google is not enabled on this server"},
            name="create_google_subscription",
        ),
        Route(
            "POST",
            "/v1/google/{accountCode}/{calendarCode}/consent",
            consent,
            "a consent URL for a pending Google subscription, or for re-authorization (ifNeeded): called by ingest",
            responses={"409": "Google is not enabled on this server"},
            name="google_consent",
            scope=CALENDAR_PAGES,
        ),
    ]
