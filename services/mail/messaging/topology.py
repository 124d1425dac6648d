"""Every queue the mail service declares, under the Names prefix. Nowhere else declares any.

- `mail.scheduling` (quorum, via the shared IdempotentConsumer): event.created, event.updated and
  event.deleted; an event with `notify` and attendees becomes invitations (REQUEST, CANCEL).

Sending is timed by PostgreSQL (deliveries' `next_attempt_at`, claimed with SKIP LOCKED), not by
queues: a retry is a row update, so a broker outage never loses a timer.
"""

from __future__ import annotations

from aio_pika.abc import AbstractChannel

from shared.amqp import Names
from shared.consumer import QueueSpec

SCHEDULING = QueueSpec("mail.scheduling", ("event.created", "event.updated", "event.deleted"), concurrency=1)
# auth's API keys (hashes only): Convier's `Bearer <api key>`.
API_KEYS = QueueSpec("mail.api_keys", ("api_key.created", "api_key.revoked"))


async def delete_topology(channel: AbstractChannel, names: Names) -> None:
    """Remove this prefix's queues (tests)."""
    for name in [names(spec.name) + suffix for spec in (SCHEDULING, API_KEYS) for suffix in ("", ".dlq")]:
        await channel.queue_delete(name)
