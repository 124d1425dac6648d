"""When to try Google again: which answers are worth a retry, and exponential backoff with full jitter.

Google asks clients to back off exponentially on `403 rateLimitExceeded`/`userRateLimitExceeded`,
`429` and `5xx` (Calendar API, "Handle API errors"); full jitter spreads the retries of many users so
they do not come back in step. `Retry-After`, when Google sends it, is a floor.
"""

from __future__ import annotations

import random
from collections.abc import Callable

RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded"})
BASE_DELAY = 1.0
MAX_DELAY = 64.0


def is_retryable(status: int, reason: str | None) -> bool:
    if status == 429 or status >= 500:
        return True
    return status == 403 and reason in RATE_LIMIT_REASONS


def backoff_delay(
    attempt: int,
    *,
    base: float = BASE_DELAY,
    cap: float = MAX_DELAY,
    retry_after: float | None = None,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait before retry number `attempt` (1 for the first): uniform in
    [0, min(cap, base * 2**(attempt-1))], never less than Google's Retry-After."""
    ceiling = min(cap, base * 2 ** max(attempt - 1, 0))
    delay = ceiling * rand()
    return max(delay, retry_after or 0.0)
