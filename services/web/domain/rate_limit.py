"""How many subscribes one address may make from calendar pages: a token bucket per address.

The public subscribe form has no session and no CAPTCHA; without a limit, one script could create
thousands of subscribers (rows in ingest, Subscribe webhooks to the merchant) in a minute. Each address
may make `limit` subscribes at once and then one more every `window / limit` seconds.

Written here rather than taken from a package (`limits`, `aiolimiter`): the whole need is an in-process
bucket per address with a bounded table, about thirty lines, and those packages bring storage backends
or per-process global limiters that are not per key. The count is per web process: with N replicas an
address gets up to N times the limit, which the gateway's own per-address limit (deploy/) caps.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    at: float


class SubscribeLimiter:
    def __init__(
        self,
        limit: int,
        window: float,
        *,
        max_addresses: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.rate = limit / window if limit > 0 and window > 0 else 0.0
        self.max_addresses = max_addresses
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.limit > 0 and self.rate > 0

    def take(self, address: str) -> float:
        """0 when `address` may subscribe now (and counts it); else the seconds until it may."""
        if not self.enabled:
            return 0.0
        now = self._clock()
        bucket = self._buckets.pop(address, None)
        if bucket is None:
            bucket = _Bucket(float(self.limit), now)
        else:
            bucket.tokens = min(float(self.limit), bucket.tokens + (now - bucket.at) * self.rate)
            bucket.at = now
        self._buckets[address] = bucket  # most recently used last
        while len(self._buckets) > self.max_addresses:
            self._buckets.popitem(last=False)  # the least recently seen address starts afresh
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return max(1.0, math.ceil((1.0 - bucket.tokens) / self.rate))
