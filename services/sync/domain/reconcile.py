"""Reconciliation, pure: what a subscription should show against what was pushed, as a diff.

The engine runs this after every change, restart or replay; because it compares states rather than
replaying changes, a message seen twice or a crash between a push and its record changes nothing:
an event is created when it was never pushed, updated only when the pushed sequence is older,
removed when it was pushed and is no longer selected (deleted, filtered out).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from shared.selection import EventFilter


@dataclass(frozen=True)
class EventHead:
    """What selection and diffing need of an event (its body stays in the database)."""

    event_id: uuid.UUID
    sequence: int
    created_at: datetime
    external_id: str | None = None
    tag_ids: frozenset[uuid.UUID] = frozenset()
    time_zone_tag: str | None = None
    deleted: bool = False


@dataclass(frozen=True)
class PushedHead:
    """One event as pushed: where it lives remotely and which sequence it showed."""

    event_id: uuid.UUID
    remote_id: str
    etag: str | None
    sequence: int
    rejected: str | None = None


@dataclass(frozen=True)
class Plan:
    creates: list[uuid.UUID] = field(default_factory=list)
    updates: list[PushedHead] = field(default_factory=list)
    deletes: list[PushedHead] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.creates or self.updates or self.deletes)

    def __len__(self) -> int:
        return len(self.creates) + len(self.updates) + len(self.deletes)


def desired(
    selection: EventFilter, calendar_events: Iterable[EventHead], own_events: Iterable[EventHead]
) -> dict[uuid.UUID, int]:
    """event id -> sequence of every event the subscription should show.

    A calendar's events go through the subscription's filter (shared/selection.py, the feed's rule);
    its own events (manual, subscription events) are all shown, within the cutoff of a deactivated one."""
    out: dict[uuid.UUID, int] = {}
    for event in calendar_events:
        if event.deleted:
            continue
        if selection.matches(
            event_id=event.event_id,
            external_id=event.external_id,
            tag_ids=event.tag_ids,
            time_zone_tag=event.time_zone_tag,
            created_at=event.created_at,
        ):
            out[event.event_id] = event.sequence
    for event in own_events:
        if not event.deleted and (selection.cutoff is None or event.created_at <= selection.cutoff):
            out[event.event_id] = event.sequence
    return out


def plan(wanted: Mapping[uuid.UUID, int], pushed: Mapping[uuid.UUID, PushedHead]) -> Plan:
    """The diff, ordered: creates and updates by event id, then deletes (stable across runs)."""
    result = Plan()
    for event_id in sorted(wanted):
        sequence = wanted[event_id]
        before = pushed.get(event_id)
        if before is None:
            result.creates.append(event_id)
        elif before.sequence < sequence:
            result.updates.append(before)
    for event_id in sorted(pushed):
        if event_id not in wanted:
            result.deletes.append(pushed[event_id])
    return result


def backoff(failures: int, base: float, ceiling: float, rng: random.Random | None = None) -> float:
    """Seconds to wait after `failures` consecutive failures: exponential, capped, with full jitter
    (half fixed, half random) so that many subscriptions failing together do not return together."""
    exponent = min(max(failures - 1, 0), 30)
    delay = min(ceiling, base * (2**exponent))
    draw = (rng or random).random()
    return delay / 2 + draw * delay / 2
