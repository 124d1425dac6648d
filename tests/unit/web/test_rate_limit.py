"""The page subscribe limiter: a burst of `limit`, then one per window/limit, per address, bounded."""

from __future__ import annotations

from services.web.domain.rate_limit import SubscribeLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_address_gets_its_burst_then_waits_and_others_are_not_affected() -> None:
    clock = Clock()
    limiter = SubscribeLimiter(3, 60.0, clock=clock)  # one more every 20 s
    assert [limiter.take("192.0.2.1") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("192.0.2.1") == 20.0
    assert limiter.take("198.51.100.7") == 0.0
    clock.now += 10
    assert limiter.take("192.0.2.1") == 10.0
    clock.now += 10
    assert limiter.take("192.0.2.1") == 0.0
    assert limiter.take("192.0.2.1") == 20.0


def test_a_quiet_address_gets_back_no_more_than_its_burst() -> None:
    clock = Clock()
    limiter = SubscribeLimiter(2, 60.0, clock=clock)
    assert limiter.take("a") == 0.0
    clock.now += 3600
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 30.0]


def test_the_table_is_bounded_and_forgets_the_least_recent_address() -> None:
    clock = Clock()
    limiter = SubscribeLimiter(1, 60.0, max_addresses=2, clock=clock)
    assert limiter.take("a") == 0.0 and limiter.take("b") == 0.0
    assert limiter.take("a") > 0  # a is now the most recent
    assert limiter.take("c") == 0.0  # b is forgotten, a kept
    assert limiter.take("a") > 0
    assert limiter.take("b") == 0.0


def test_a_limit_of_zero_turns_it_off() -> None:
    limiter = SubscribeLimiter(0, 600.0)
    assert not limiter.enabled
    assert all(limiter.take("a") == 0.0 for _ in range(1000))
