"""Which of Google's refusals are worth another try (the engine's backoff, with jitter, times it).

Google asks clients to back off exponentially on `403 rateLimitExceeded`/`userRateLimitExceeded`,
`429` and `5xx` (Calendar API, "Handle API errors"); any other 403 is a refusal for good.
"""

from __future__ import annotations

RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded"})


def is_retryable(status: int, reason: str | None) -> bool:
    if status == 429 or status >= 500:
        return True
    return status == 403 and reason in RATE_LIMIT_REASONS
