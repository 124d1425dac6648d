"""How the batch intake acks a committed batch: one multiple ack for the run of outstanding tags the
batch starts with, never covering a message still in hand elsewhere."""

from __future__ import annotations

from services.webhook.messaging.intake import plan_acks


def test_a_batch_holding_every_outstanding_tag_is_acked_with_one_multiple_ack() -> None:
    assert plan_acks({1, 2, 3, 4}, [1, 2, 3, 4]) == (4, [])


def test_a_multiple_ack_stops_below_a_message_still_in_hand() -> None:
    # Tag 3 is being handled on the one-message path (or waits for the next batch).
    assert plan_acks({1, 2, 3, 4, 5}, [1, 2, 4, 5]) == (2, [4, 5])


def test_a_batch_behind_an_outstanding_message_is_acked_one_by_one() -> None:
    assert plan_acks({1, 2, 3}, [2, 3]) == (None, [2, 3])


def test_tags_settled_earlier_do_not_stop_the_run() -> None:
    # 1 and 2 were acked on their own already: only 3..5 are outstanding.
    assert plan_acks({3, 4, 5, 9}, [3, 4, 5]) == (5, [])


def test_a_single_message_gets_a_plain_ack() -> None:
    assert plan_acks({7}, [7]) == (None, [7])


def test_later_deliveries_not_yet_committed_are_never_covered() -> None:
    cover, singles = plan_acks({1, 2, 3, 4, 5, 6}, [1, 2, 3])
    assert cover == 3 and singles == []
