"""The one queue the feed consumes: `feed.projection`, bound to every key that changes a feed."""

from __future__ import annotations

from shared.consumer import QueueSpec

PROJECTION_QUEUE = QueueSpec(
    name="feed.projection",
    routing_keys=(
        "calendar.created",
        "calendar.updated",
        "calendar.deleted",
        "tag.created",
        "tag.updated",
        "tag.deleted",
        "event.created",
        "event.updated",
        "event.deleted",
        "subscription.created",
        "subscription.updated",
        "subscription.deactivated",
        "subscription_event.accepted",
        "api_key.created",
        "api_key.revoked",
    ),
    delivery_limit=5,
    prefetch=64,
)
