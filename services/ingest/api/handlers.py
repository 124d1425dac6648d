"""HTTP handlers of the ingest API: parse, call one use-case, answer in the seed's shapes."""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from services.ingest.api import bodies, schemas, unsubscribe_page
from services.ingest.api.schemas import (
    CalendarBody,
    DeactivateBody,
    EventBody,
    SubscribeBody,
    SubscriptionEventBody,
    TagBody,
    TagRenameBody,
    UpdateSubscriptionBody,
)
from services.ingest.domain.subscriptions import require_routing_hint
from services.ingest.services import Account, Ingest
from shared.errors import InvalidRequest, NotFound
from shared.http import read_form, read_json, read_model, whole_number
from shared.lean import lean
from shared.web import ACTING_FOR_KEY, claims, json_response

INGEST = web.AppKey("ingest", Ingest)

MAX_PAGE = 1000


def _account(request: web.Request) -> Account:
    verified = claims(request)
    return Account(uuid.UUID(verified.account_id), verified.account_code)


async def _account_named(request: web.Request) -> Account:
    """The token's account, or, for a platform token acting for the path's account (the web
    service's calendar pages, scope `calendar-pages`), that account."""
    acting_for = request.get(ACTING_FOR_KEY)
    if acting_for is None:
        return _account(request)
    return await _ingest(request).account_by_code(acting_for)


def _path(request: web.Request, name: str) -> str:
    value = request.match_info[name]
    if "\x00" in value or len(value) > 255:
        raise NotFound(f"{name} '{value[:64]}' not found")
    return value


def _ingest(request: web.Request) -> Ingest:
    return request.app[INGEST]


def _query_int(request: web.Request, name: str, default: int, maximum: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    number = whole_number(raw)
    if number is None or number > maximum:
        raise InvalidRequest(f"{name}: expected a whole number from 0 to {maximum}")
    return number


# --- catalog ------------------------------------------------------------------------------------


async def create_calendar(request: web.Request) -> web.Response:
    body = await read_model(request, CalendarBody)
    row = await _ingest(request).create_calendar(_account(request), body)
    return json_response(schemas.with_warnings(bodies.calendar_body(row), body), status=201)


async def list_calendars(request: web.Request) -> web.Response:
    rows = await _ingest(request).list_calendars(_account(request))
    return json_response([bodies.calendar_body(r) for r in rows])


async def get_calendar(request: web.Request) -> web.Response:
    row = await _ingest(request).get_calendar(await _account_named(request), _path(request, "calendarCode"))
    return json_response(bodies.calendar_body(row))


async def update_calendar(request: web.Request) -> web.Response:
    body = await read_model(request, CalendarBody)
    row = await _ingest(request).update_calendar(_account(request), _path(request, "calendarCode"), body)
    return json_response(schemas.with_warnings(bodies.calendar_body(row), body))


async def delete_calendar(request: web.Request) -> web.Response:
    await _ingest(request).delete_calendar(_account(request), _path(request, "calendarCode"))
    return web.Response(status=204)


async def save_tag(request: web.Request) -> web.Response:
    body = await read_model(request, TagBody)
    row, created = await _ingest(request).save_tag(_account(request), _path(request, "calendarCode"), body)
    return json_response(schemas.with_warnings(bodies.tag_body(row), body), status=201 if created else 200)


async def rename_tag(request: web.Request) -> web.Response:
    body = await read_model(request, TagRenameBody)
    row = await _ingest(request).rename_tag(
        _account(request), _path(request, "calendarCode"), _path(request, "tagId"), body.name
    )
    return json_response(schemas.with_warnings(bodies.tag_body(row), body))


async def delete_tag(request: web.Request) -> web.Response:
    await _ingest(request).delete_tag(_account(request), _path(request, "calendarCode"), _path(request, "tagId"))
    return web.Response(status=204)


async def list_tags(request: web.Request) -> web.Response:
    rows = await _ingest(request).list_tags(await _account_named(request), _path(request, "calendarCode"))
    return json_response([bodies.tag_body(r) for r in rows])


async def save_event(request: web.Request) -> web.Response:
    body = await read_model(request, EventBody)
    event, created = await _ingest(request).save_event(_account(request), _path(request, "calendarCode"), body)
    return json_response(schemas.with_warnings(bodies.event_body(event), body), status=201 if created else 200)


async def list_events(request: web.Request) -> web.Response:
    limit = _query_int(request, "limit", 100, MAX_PAGE)
    offset = _query_int(request, "offset", 0, 10_000_000)
    events = await _ingest(request).list_events(
        await _account_named(request), _path(request, "calendarCode"), limit=limit, offset=offset
    )
    if request.get(ACTING_FOR_KEY) is not None:  # a calendar page's platform token: public events only
        return json_response([b for b in map(bodies.page_event_body, events) if b is not None])
    return json_response([bodies.event_body(e) for e in events])


async def get_event(request: web.Request) -> web.Response:
    event = await _ingest(request).get_event(
        _account(request), _path(request, "calendarCode"), _path(request, "eventId")
    )
    return json_response(bodies.event_body(event))


async def replace_event(request: web.Request) -> web.Response:
    body = await read_model(request, EventBody)
    event = await _ingest(request).replace_event(
        _account(request), _path(request, "calendarCode"), _path(request, "eventId"), lambda _: body
    )
    return json_response(schemas.with_warnings(bodies.event_body(event), body))


async def patch_event(request: web.Request) -> web.Response:
    changes = await read_json(request)
    if not isinstance(changes, dict):
        raise InvalidRequest(f"request body must be a JSON object, not {type(changes).__name__}")

    parsed: list[EventBody] = []

    def merged(stored: Any) -> EventBody:
        current = {k.lower(): v for k, v in bodies.event_request_body(stored).items()}
        for key, value in changes.items():
            current[key.lower()] = value
        if "eventid" in current and "externalid" in current and "eventid" in {k.lower() for k in changes}:
            current.pop("externalid")
        parsed.append(EventBody.parse(current))
        return parsed[-1]

    event = await _ingest(request).replace_event(
        _account(request), _path(request, "calendarCode"), _path(request, "eventId"), merged
    )
    return json_response(schemas.with_warnings(bodies.event_body(event), parsed[-1]))


async def delete_event(request: web.Request) -> web.Response:
    event = await _ingest(request).delete_event(
        _account(request), _path(request, "calendarCode"), _path(request, "eventId")
    )
    return json_response(bodies.event_body(event))


# --- subscriptions ------------------------------------------------------------------------------


# The two hottest routes take the lean path (shared.lean.lean_middleware): same answers, errors, auth
# and metrics, without the platform middlewares' frames and a log line per successful request.
@lean
async def subscribe(request: web.Request) -> web.Response:
    body = SubscribeBody.parse(await read_json(request, required=False))
    require_routing_hint(body.subscription_method, body.user_agent)
    outcome = await _ingest(request).subscribe_routed(
        await _account_named(request), _path(request, "calendarCode"), body, request.headers["Authorization"]
    )
    return json_response(bodies.subscribed_body(outcome))


async def subscribe_webcal(request: web.Request) -> web.Response:
    body = SubscribeBody.parse(await read_json(request, required=False))
    outcome = await _ingest(request).subscribe(_account(request), _path(request, "calCode"), body, webcal_only=True)
    return web.Response(text=outcome.subscription_url or "", content_type="text/plain")


@lean
async def get_subscription(request: web.Request) -> web.Response:
    view = await _ingest(request).get_subscription(_account(request), _path(request, "subscriptionId"))
    return json_response(bodies.subscription_body(view))


async def subscriptions_of_username(request: web.Request) -> web.Response:
    views = await _ingest(request).subscriptions_of_username(
        _account(request), _path(request, "calendarCode"), _path(request, "username")
    )
    return json_response([bodies.subscription_body(v) for v in views])


async def update_subscription(request: web.Request) -> web.Response:
    body = await read_model(request, UpdateSubscriptionBody)
    ingest, code = _ingest(request), _path(request, "calendarCode")
    row = await ingest.update_subscription(_account(request), code, _path(request, "subscriptionId"), body)
    answer: dict[str, Any] = {
        "success": True,
        "statusCode": 200,
        "errors": [],
        "message": "Subscription updated",
        "subscriptionId": str(row["subscription_id"]),
        "subscriberId": row["subscriber_id"],
        "subscriptionType": row["subscription_type"],
    }
    # seed 002's Google Reauthorization: Google revoked us, so the user must consent again.
    consent = await ingest.reauthorization(
        _account(request), code, row, body.redirect_to, request.headers["Authorization"]
    )
    if consent is not None:
        answer["RedirectTo"] = consent
    return json_response(answer)


async def deactivate_subscriptions(request: web.Request) -> web.Response:
    body = await read_model(request, DeactivateBody)
    rows = await _ingest(request).deactivate(_account(request), _path(request, "calendarCode"), body)
    return json_response(
        {
            "success": True,
            "statusCode": 200,
            "errors": [],
            "message": f"{len(rows)} subscription(s) deactivated",
            "subscriptions": [
                {
                    "subscriptionId": str(r["subscription_id"]),
                    "subscriberId": r["subscriber_id"],
                    "isActive": r["active"],
                    "deactivatedDate": bodies.utc_text(r["deactivated_at"]),
                }
                for r in rows
            ],
        }
    )


async def rotate_credentials(request: web.Request) -> web.Response:
    outcome = await _ingest(request).rotate_credentials(
        _account(request), _path(request, "calendarCode"), _path(request, "subscriptionId")
    )
    return json_response(bodies.subscribed_body(outcome))


async def subscription_event(request: web.Request) -> web.Response:
    body = await read_model(request, SubscriptionEventBody)
    await _ingest(request).accept_subscription_event(_account(request), body)
    return web.Response(status=202)


# --- unsubscribe page (public) ------------------------------------------------------------------


def _html(text: str, status: int = 200) -> web.Response:
    return web.Response(
        text=text, status=status, content_type="text/html", charset="utf-8", headers=unsubscribe_page.HEADERS
    )


async def unsubscribe_form(request: web.Request) -> web.Response:
    found = await _ingest(request).subscription_for_page(request.match_info["subscriptionId"])
    if found is None:
        return _html(unsubscribe_page.not_found_page(), status=404)
    row, calendar, merchant = found
    if not row["active"]:
        return _html(unsubscribe_page.inactive_page(calendar["name"]))
    return _html(unsubscribe_page.confirm_page(calendar["name"], merchant, request.path))


def _form_text(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    cleaned = value.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
    return cleaned


async def unsubscribe(request: web.Request) -> web.Response:
    subscription_id = request.match_info["subscriptionId"]
    form = await read_form(request)
    found = await _ingest(request).subscription_for_page(subscription_id)
    if found is None:
        return _html(unsubscribe_page.not_found_page(), status=404)
    row, calendar, _ = found
    if not row["active"]:
        return _html(unsubscribe_page.inactive_page(calendar["name"]))
    reason = unsubscribe_page.reason_text(_form_text(form.get("reason")), _form_text(form.get("comment")))
    await _ingest(request).unsubscribe(subscription_id, reason)
    return _html(unsubscribe_page.done_page(calendar["name"]))
