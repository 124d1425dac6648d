"""Which of a calendar's events a subscription sees: one pure rule for every read side (feed, sync)."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.messages import SubscriptionData


@dataclass(frozen=True)
class EventFilter:
    """Which of a calendar's events a subscription sees.

    tags: events carrying any of them (none selected = every event). time_zone_tag: events with that
    Windows id plus events with none. include lists: only those events. exclude lists: never those.
    cutoff: a deactivated subscription sees only events created before it was deactivated.
    """

    tag_ids: frozenset[uuid.UUID] = frozenset()
    time_zone_tag: str | None = None
    include_ids: frozenset[uuid.UUID] = frozenset()
    include_external: frozenset[str] = frozenset()
    exclude_ids: frozenset[uuid.UUID] = frozenset()
    exclude_external: frozenset[str] = frozenset()
    cutoff: datetime | None = field(default=None)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> EventFilter:
        """From a projected subscription row (feed's and sync's tables share these column names)."""
        return cls(
            tag_ids=frozenset(row["tag_ids"]),
            time_zone_tag=row["time_zone_tag"],
            include_ids=frozenset(row["include_ids"]),
            include_external=frozenset(row["include_external"]),
            exclude_ids=frozenset(row["exclude_ids"]),
            exclude_external=frozenset(row["exclude_external"]),
            cutoff=row["deactivated_at"],
        )

    @property
    def signature(self) -> str:
        """Stable across processes and runs: a hash of the normalised filter."""
        canonical = {
            "t": sorted(str(t) for t in self.tag_ids),
            "z": self.time_zone_tag.lower() if self.time_zone_tag else None,
            "i": sorted(str(i) for i in self.include_ids),
            "ie": sorted(self.include_external),
            "x": sorted(str(i) for i in self.exclude_ids),
            "xe": sorted(self.exclude_external),
            "c": self.cutoff.isoformat() if self.cutoff else None,
        }
        text = json.dumps(canonical, separators=(",", ":"), sort_keys=True)
        return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()

    def matches(
        self,
        *,
        event_id: uuid.UUID,
        external_id: str | None,
        tag_ids: frozenset[uuid.UUID],
        time_zone_tag: str | None,
        created_at: datetime,
    ) -> bool:
        """The rule in Python (the repository runs the same rule in SQL; tests hold them together)."""
        if self.tag_ids and not (self.tag_ids & tag_ids):
            return False
        if self.time_zone_tag and time_zone_tag and time_zone_tag.lower() != self.time_zone_tag.lower():
            return False
        if (self.include_ids or self.include_external) and not (
            event_id in self.include_ids or (external_id is not None and external_id in self.include_external)
        ):
            return False
        if event_id in self.exclude_ids or (external_id is not None and external_id in self.exclude_external):
            return False
        return self.cutoff is None or created_at <= self.cutoff


ALL_EVENTS = EventFilter()


def subscription_filter(data: SubscriptionData) -> EventFilter:
    """The filter a subscription message describes (a deactivated one keeps what it had)."""
    return EventFilter(
        tag_ids=frozenset(t.tag_id for t in data.calendar_tags),
        time_zone_tag=data.time_zone_tag or None,
        include_ids=frozenset(data.request_event_ids),
        include_external=frozenset(data.external_event_ids),
        exclude_ids=frozenset(data.exclude_request_event_ids),
        exclude_external=frozenset(data.exclude_external_event_ids),
        cutoff=None if data.active else (data.deactivated_at or data.created_at),
    )
