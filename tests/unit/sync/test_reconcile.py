"""The push diff (pure): what to create, update and remove, and the backoff after failures."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

from services.sync.domain.reconcile import EventHead, PushedHead, backoff, desired, plan
from shared.selection import EventFilter

NOW = datetime(2026, 5, 1, tzinfo=UTC)
TAG_A, TAG_B = uuid.uuid4(), uuid.uuid4()


def head(sequence: int = 1, **overrides: object) -> EventHead:
    values: dict[str, object] = {"event_id": uuid.uuid4(), "sequence": sequence, "created_at": NOW}
    values.update(overrides)
    return EventHead(**values)  # type: ignore[arg-type]


def pushed(event: EventHead, sequence: int | None = None) -> PushedHead:
    return PushedHead(event.event_id, f"https://dav.example/{event.event_id}.ics", '"e1"', sequence or event.sequence)


def test_events_never_pushed_are_created_and_nothing_else_happens() -> None:
    a, b = head(), head()
    result = plan(desired(EventFilter(), [a, b], []), {})
    assert sorted(result.creates) == sorted([a.event_id, b.event_id])
    assert result.updates == [] and result.deletes == []


def test_a_state_already_pushed_plans_nothing_so_a_replay_pushes_nothing() -> None:
    a, b = head(3), head(1)
    result = plan(desired(EventFilter(), [a, b], []), {a.event_id: pushed(a), b.event_id: pushed(b)})
    assert result.empty and len(result) == 0


def test_an_event_is_updated_only_when_the_pushed_sequence_is_older() -> None:
    newer, same, older_remote = head(5), head(2), head(1)
    state = {
        newer.event_id: pushed(newer, 4),
        same.event_id: pushed(same),
        older_remote.event_id: pushed(older_remote, 7),
    }
    result = plan(desired(EventFilter(), [newer, same, older_remote], []), state)
    assert [u.event_id for u in result.updates] == [newer.event_id]
    assert result.updates[0].remote_id.endswith(f"{newer.event_id}.ics")  # updated where it lives
    assert result.creates == [] and result.deletes == []


def test_deleted_events_and_events_the_filter_no_longer_selects_are_removed() -> None:
    kept = head(tag_ids=frozenset({TAG_A}))
    filtered_out = head(tag_ids=frozenset({TAG_B}))
    gone = head(2, deleted=True, tag_ids=frozenset({TAG_A}))
    state = {e.event_id: pushed(e, 1) for e in (kept, filtered_out, gone)}
    result = plan(desired(EventFilter(tag_ids=frozenset({TAG_A})), [kept, filtered_out, gone], []), state)
    assert sorted(d.event_id for d in result.deletes) == sorted([filtered_out.event_id, gone.event_id])
    assert result.creates == [] and result.updates == []


def test_the_calendar_events_go_through_the_shared_selection_rule() -> None:
    tagged = head(tag_ids=frozenset({TAG_A}), time_zone_tag="Eastern Standard Time")
    other_zone = head(tag_ids=frozenset({TAG_A}), time_zone_tag="Pacific Standard Time")
    excluded = head(tag_ids=frozenset({TAG_A}), external_id="m-9")
    selection = EventFilter(
        tag_ids=frozenset({TAG_A}), time_zone_tag="eastern standard time", exclude_external=frozenset({"m-9"})
    )
    assert desired(selection, [tagged, other_zone, excluded], []) == {tagged.event_id: 1}


def test_a_subscriptions_own_events_are_all_shown_whatever_its_filter() -> None:
    own = head(4, tag_ids=frozenset({TAG_B}))
    deleted_own = head(2, deleted=True)
    assert desired(EventFilter(tag_ids=frozenset({TAG_A})), [], [own, deleted_own]) == {own.event_id: 4}


def test_a_deactivated_subscription_keeps_only_events_created_before_its_cutoff() -> None:
    before = head(created_at=NOW - timedelta(days=1))
    after = head(created_at=NOW + timedelta(days=1))
    own_after = head(created_at=NOW + timedelta(days=1))
    assert desired(EventFilter(cutoff=NOW), [before, after], [own_after]) == {before.event_id: 1}


def test_the_plan_is_ordered_the_same_way_every_time() -> None:
    events = [head() for _ in range(20)]
    first = plan(desired(EventFilter(), events, []), {})
    again = plan(desired(EventFilter(), list(reversed(events)), []), {})
    assert first.creates == again.creates == sorted(first.creates)


def test_backoff_grows_exponentially_is_capped_and_jittered_within_half_to_full() -> None:
    rng = random.Random(7)
    for failures, full in ((1, 1.0), (2, 2.0), (3, 4.0), (6, 32.0), (30, 300.0)):
        delays = [backoff(failures, 1.0, 300.0, rng) for _ in range(200)]
        assert all(full / 2 <= d <= full for d in delays), (failures, min(delays), max(delays))
        assert max(delays) - min(delays) > full / 10  # spread, so retries do not return together
