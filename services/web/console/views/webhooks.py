"""Webhooks: endpoints (create, enable, delete), secret rotation, test, the delivery log and retries."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from aiohttp import web

from services.web.console.apis import ApiProblem
from services.web.console.pages import account, api, done, form_text, once_only, render
from shared.http import read_form, whole_number

EVENT_TYPES = ("Subscribe", "Unsubscribe", "AttendeeReplied")


def _q(value: str) -> str:
    return quote(value, safe="")


def _base(request: web.Request) -> str:
    return f"/v1/webhooks/{_q(account(request))}"


async def list_webhooks(request: web.Request) -> web.Response:
    answer = await api(request, "GET", "webhook", _base(request))
    context = {"webhooks": answer["webhooks"], "values": {}, "event_types": EVENT_TYPES}
    return await render(request, "console/webhooks.html", context)


SENT_ALREADY = "That form was sent already; the secret was shown once. Rotate it if it was not kept."


async def create_webhook(request: web.Request) -> web.Response:
    form = await read_form(request)
    await once_only(request, form, "/console/webhooks", SENT_ALREADY)
    body: dict[str, Any] = {"url": form_text(form, "url", 5000), "description": form_text(form, "description", 1000)}
    chosen = [t for t in form.getall("eventTypes", []) if isinstance(t, str)]
    if chosen:
        body["eventTypes"] = chosen
    try:
        created = await api(request, "POST", "webhook", _base(request), body=body)
    except ApiProblem as problem:
        answer = await api(request, "GET", "webhook", _base(request))
        context = {
            "webhooks": answer["webhooks"],
            "values": body,
            "errors": problem.reasons,
            "event_types": EVENT_TYPES,
        }
        return await render(request, "console/webhooks.html", context, status=problem.status)
    # The secret is shown once, on the page that follows; it is not kept in the session's notice.
    return await _webhook_page(request, created["id"], secret=created.get("secret"), notice="Endpoint created.")


async def _webhook_page(
    request: web.Request,
    webhook_id: str,
    *,
    secret: str | None = None,
    notice: str | None = None,
    errors: list[str] | None = None,
    status: int = 200,
) -> web.Response:
    path = f"{_base(request)}/{_q(webhook_id)}"
    webhook = await api(request, "GET", "webhook", path)
    params = {"limit": "20"}
    if request.query.get("status"):
        params["status"] = request.query["status"]
    if request.query.get("before"):
        params["before"] = request.query["before"]
    log = await api(request, "GET", "webhook", path + "/deliveries", params=params)
    context = {
        "webhook": webhook,
        "deliveries": log["deliveries"],
        "next_cursor": log.get("nextCursor"),
        "secret": secret,
        "event_types": EVENT_TYPES,
        "status_filter": request.query.get("status", ""),
        "errors": errors or [],
    }
    if notice is not None:
        context["notice"] = notice
    return await render(request, "console/webhook.html", context, status=status)


async def show_webhook(request: web.Request) -> web.Response:
    return await _webhook_page(request, request.match_info["webhookId"])


async def update_webhook(request: web.Request) -> web.Response:
    webhook_id = request.match_info["webhookId"]
    form = await read_form(request)
    body: dict[str, Any] = {
        "url": form_text(form, "url", 5000),
        "description": form_text(form, "description", 1000),
        "enabled": form.get("enabled") == "on",
        "eventTypes": [t for t in form.getall("eventTypes", []) if isinstance(t, str)] or list(EVENT_TYPES[:2]),
    }
    try:
        await api(request, "PUT", "webhook", f"{_base(request)}/{_q(webhook_id)}", body=body)
    except ApiProblem as problem:
        return await _webhook_page(request, webhook_id, errors=problem.reasons, status=problem.status)
    await done(request, f"/console/webhooks/{_q(webhook_id)}", "Endpoint saved.")


async def delete_webhook(request: web.Request) -> web.Response:
    await api(request, "DELETE", "webhook", f"{_base(request)}/{_q(request.match_info['webhookId'])}")
    await done(request, "/console/webhooks", "Endpoint deleted.")


async def rotate_secret(request: web.Request) -> web.Response:
    webhook_id = request.match_info["webhookId"]
    form = await read_form(request)
    await once_only(request, form, f"/console/webhooks/{_q(webhook_id)}", SENT_ALREADY)
    grace = form_text(form, "gracePeriodSeconds", 10) or "86400"
    seconds = whole_number(grace)
    body = {"gracePeriodSeconds": seconds if seconds is not None else grace}
    try:
        rotated = await api(request, "POST", "webhook", f"{_base(request)}/{_q(webhook_id)}/rotate-secret", body=body)
    except ApiProblem as problem:
        return await _webhook_page(request, webhook_id, errors=problem.reasons, status=problem.status)
    return await _webhook_page(request, webhook_id, secret=rotated.get("secret"), notice="Secret rotated.")


async def send_test(request: web.Request) -> web.Response:
    webhook_id = request.match_info["webhookId"]
    try:
        delivery = await api(request, "POST", "webhook", f"{_base(request)}/{_q(webhook_id)}/test")
    except ApiProblem as problem:
        return await _webhook_page(request, webhook_id, errors=problem.reasons, status=problem.status)
    await done(request, f"/console/webhooks/{_q(webhook_id)}", f"Test sent: {_outcome(delivery)}")


async def retry_delivery(request: web.Request) -> web.Response:
    webhook_id, delivery_id = request.match_info["webhookId"], request.match_info["deliveryId"]
    try:
        delivery = await api(request, "POST", "webhook", f"{_base(request)}/deliveries/{_q(delivery_id)}/retry")
    except ApiProblem as problem:
        return await _webhook_page(request, webhook_id, errors=problem.reasons, status=problem.status)
    await done(request, f"/console/webhooks/{_q(webhook_id)}#delivery-{delivery_id}", f"Retried: {_outcome(delivery)}")


def _outcome(delivery: dict[str, Any]) -> str:
    attempts = delivery.get("attempts") or []
    if not attempts:
        return f"delivery {delivery.get('status', 'pending')}"
    last = attempts[-1]
    answer = f"HTTP {last['statusCode']}" if last.get("statusCode") is not None else (last.get("error") or "no answer")
    return f"attempt {last['number']} {'succeeded' if last.get('succeeded') else 'failed'} ({answer})."
