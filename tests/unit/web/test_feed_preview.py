"""A protected subscription's feed, computed with the feed's own selection rule from the APIs' answers."""

from __future__ import annotations

import uuid
from typing import Any

from services.web.console.feed_preview import selected_events

LIONS, TIGERS = str(uuid.uuid4()), str(uuid.uuid4())


def event(title: str, tags: list[str], created: str = "2026-11-01T10:00:00.000", **more: Any) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "title": title, "tags": tags, "createdAt": created, "status": "confirmed", **more}


def subscription(**fields: Any) -> dict[str, Any]:
    return {"tags": [], "timezoneId": None, "events": [], "isActive": True, **fields}


def titles(events: list[Any]) -> list[str]:
    return [e["title"] for e in events]


def test_a_tag_choice_selects_that_tags_events_and_no_choice_selects_all_live_ones() -> None:
    events = [event("Lions 1", [LIONS]), event("Tigers 1", [TIGERS]), event("Gone", [LIONS], status="cancelled")]
    assert titles(selected_events(subscription(tags=[{"id": LIONS, "name": "Lions"}]), events)) == ["Lions 1"]
    assert titles(selected_events(subscription(), events)) == ["Lions 1", "Tigers 1"]


def test_excluded_events_are_left_out_and_a_deactivated_subscription_keeps_only_older_events() -> None:
    old, new = event("Old", [], "2026-11-01T10:00:00.000"), event("New", [], "2026-11-20T10:00:00.000")
    excluded = subscription(events=[{"id": old["id"], "isExcluded": True}])
    assert titles(selected_events(excluded, [old, new])) == ["New"]
    ended = subscription(isActive=False, deactivatedDate="2026-11-10T00:00:00.000")
    assert titles(selected_events(ended, [old, new])) == ["Old"]
