"""Every URL of the webhook service."""

from __future__ import annotations

from typing import Any

from services.webhook.api import handlers
from services.webhook.api.schemas import EndpointCreate, EndpointUpdate, SecretRotation
from shared.web import Route

BASE = "/v1/webhooks/{accountCode}"


def endpoint_links() -> dict[str, dict[str, Any]]:
    """From a created endpoint to every operation on it (schemathesis' stateful phase follows these)."""
    parameters = {"accountCode": "$request.path.accountCode", "webhookId": "$response.body#/id"}
    operations = ("get_webhook", "update_webhook", "delete_webhook", "rotate_secret", "send_test", "list_deliveries")
    return {name: {"operationId": name, "parameters": parameters} for name in operations}


def routes() -> list[Route]:
    return [
        Route(
            "POST",
            BASE,
            handlers.create_webhook,
            "add a webhook endpoint (answers its signing secret)",
            request_model=EndpointCreate,
            responses={"201": "created", "409": "the account has as many webhooks as it may"},
            links=endpoint_links(),
        ),
        Route("GET", BASE, handlers.list_webhooks, "the account's webhook endpoints"),
        Route(
            "GET",
            BASE + "/{webhookId}",
            handlers.get_webhook,
            "one webhook endpoint",
            responses={"404": "no such webhook"},
        ),
        Route(
            "PUT",
            BASE + "/{webhookId}",
            handlers.update_webhook,
            "change a webhook endpoint (only the fields sent)",
            request_model=EndpointUpdate,
        ),
        Route(
            "DELETE",
            BASE + "/{webhookId}",
            handlers.delete_webhook,
            "remove a webhook endpoint",
            responses={"204": "deleted"},
        ),
        Route(
            "POST",
            BASE + "/{webhookId}/rotate-secret",
            handlers.rotate_secret,
            "new signing secret; the previous one keeps signing during the grace period",
            request_model=SecretRotation,
        ),
        Route(
            "POST",
            BASE + "/{webhookId}/test",
            handlers.send_test,
            "send the seed's Test Event Object through the delivery pipeline",
            responses={"202": "accepted", "409": "the webhook is disabled"},
        ),
        Route(
            "GET",
            BASE + "/{webhookId}/deliveries",
            handlers.list_deliveries,
            "the endpoint's deliveries, newest first, each with its attempts",
        ),
        Route(
            "POST",
            BASE + "/deliveries/{deliveryId}/retry",
            handlers.retry_delivery,
            "one more attempt of a failed delivery, recorded like any other",
            responses={"202": "accepted", "409": "not failed"},
        ),
    ]
