"""The one queue sync consumes: `sync.projection`, bound to every key that changes what is pushed."""

from __future__ import annotations

from shared.consumer import QueueSpec

PROJECTION_QUEUE = QueueSpec(
    name="sync.projection",
    routing_keys=(
        "calendar.created",
        "calendar.updated",
        "calendar.deleted",
        "event.created",
        "event.updated",
        "event.deleted",
        "subscription.created",
        "subscription.updated",
        "subscription.deactivated",
        "subscription_event.accepted",
    ),
    delivery_limit=5,
    prefetch=64,
)
