"""The mail API's JSON shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def delivery_json(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "uid": row["uid"],
        "method": row["method"],
        "sequence": row["sequence"],
        "attendee": {"email": row["attendee_email"], "name": row["attendee_name"]},
        "status": row["status"],
        "partstat": row["partstat"],
        "attempts": row["attempts_made"],
        "smtpCode": row["smtp_code"],
        "smtpAnswer": row["smtp_answer"],
        "messageId": row["message_id"],
        "createdAt": iso(row["created_at"]),
        "sentAt": iso(row["sent_at"]),
        "repliedAt": iso(row["replied_at"]),
    }
