"""Request and response shapes of the webhook API; the only place its wire names live."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
from pydantic import Field, StrictBool

from services.webhook.adapters.repository import Endpoint
from shared.errors import InvalidRequest
from shared.http import CaseInsensitiveModel


class EndpointCreate(CaseInsensitiveModel):
    url: str = Field(max_length=4096)
    event_types: list[str] | None = Field(None, alias="eventTypes")
    enabled: StrictBool = True
    description: str = Field("", max_length=500)


class EndpointUpdate(CaseInsensitiveModel):
    """Only the fields sent change."""

    url: str | None = Field(None, max_length=4096)
    event_types: list[str] | None = Field(None, alias="eventTypes")
    enabled: StrictBool | None = None
    description: str | None = Field(None, max_length=500)


class SecretRotation(CaseInsensitiveModel):
    """How long the current secret keeps signing next to the new one (0 = stop at once)."""

    grace_period_seconds: int = Field(86400, alias="gracePeriodSeconds", ge=0, le=7 * 86400)


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def endpoint_json(endpoint: Endpoint, *, with_secret: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": str(endpoint.id),
        "url": endpoint.url,
        "description": endpoint.description,
        "eventTypes": list(endpoint.event_types),
        "enabled": endpoint.enabled,
        "createdAt": iso(endpoint.created_at),
        "updatedAt": iso(endpoint.updated_at),
    }
    if endpoint.previous_secret_expires_at is not None and endpoint.previous_secret_expires_at > datetime.now(UTC):
        body["previousSecretExpiresAt"] = iso(endpoint.previous_secret_expires_at)
    if with_secret:
        body["secret"] = endpoint.secret
    return body


def response_text(body: bytes | None) -> str | None:
    """A stored response body for JSON: UTF-8, with U+FFFD for what does not decode."""
    return None if body is None else bytes(body).decode("utf-8", errors="replace")


def attempt_json(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "number": row["number"],
        "trigger": row["trigger"],
        "url": row["url"],
        "startedAt": iso(row["started_at"]),
        "finishedAt": iso(row["finished_at"]),
        "durationMs": row["duration_ms"],
        "statusCode": row["status_code"],
        "error": row["error"],
        "succeeded": row["succeeded"],
        "responseBody": response_text(row["response_body"]),
    }


def delivery_json(row: asyncpg.Record, attempts: list[asyncpg.Record]) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "webhookId": str(row["endpoint_id"]),
        "eventId": str(row["event_id"]),
        "eventType": row["event_type"],
        "status": row["status"],
        "attemptCount": row["attempts_made"],
        "createdAt": iso(row["created_at"]),
        "firstAttemptAt": iso(row["first_attempt_at"]),
        "nextAttemptAt": iso(row["next_attempt_at"]) if row["status"] == "pending" else None,
        "completedAt": iso(row["completed_at"]),
        "failureReason": row["failure_reason"],
        "payload": json.loads(bytes(row["body"])),
        "attempts": [attempt_json(a) for a in attempts],
    }


def encode_cursor(created_at: datetime, delivery_id: uuid.UUID) -> str:
    raw = f"{created_at.astimezone(UTC).isoformat()}|{delivery_id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, _, ident = raw.partition("|")
        return datetime.fromisoformat(stamp), uuid.UUID(ident)
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest("before: is not a cursor this API returned (use nextCursor)") from None
