"""Finished feed bodies and what the cache keeps of them: pure values, no I/O."""

from __future__ import annotations

import gzip
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from shared.ical import assemble, strong_etag
from shared.zone_needs import vtimezone_block


@dataclass
class Feed:
    """A finished response body with its validators; gzip made on first demand and kept."""

    body: bytes
    etag: str
    last_modified: datetime
    filename: str
    feed_username: str | None = None
    feed_password_hash: str | None = None
    # The calendar's flag, not the presence of a hash: a protected feed without a hash serves no one.
    protected: bool = False
    _gzip: bytes | None = field(default=None, repr=False)

    @property
    def gzip_body(self) -> bytes:
        if self._gzip is None:
            self._gzip = compress(self.body)
        return self._gzip

    @property
    def gzip_etag(self) -> str:
        return self.etag[:-1] + '-gzip"'

    @property
    def size(self) -> int:
        return len(self.body) + (len(self._gzip) if self._gzip else 0) + 512


@dataclass(frozen=True)
class Section:
    """The shared event blocks one filter selects from one calendar at one version."""

    version: int
    blocks: bytes
    tzids: frozenset[str]
    changed_at: datetime | None

    @property
    def size(self) -> int:
        return len(self.blocks) + 256


@dataclass(frozen=True)
class CachedFeed:
    calendar_id: uuid.UUID
    calendar_version: int
    subscription_version: int
    feed: Feed

    @property
    def size(self) -> int:
        return self.feed.size


def ceil_second(moment: datetime) -> datetime:
    """HTTP dates have whole seconds; round up so a change later in the same second is not hidden."""
    moment = moment.astimezone(UTC)
    if moment.microsecond:
        return moment.replace(microsecond=0) + timedelta(seconds=1)
    return moment


def compress(body: bytes) -> bytes:
    # mtime=0: the same body always compresses to the same bytes.
    return gzip.compress(body, compresslevel=6, mtime=0)


def finish(header: bytes, tzids: Iterable[str], blocks: list[bytes]) -> tuple[bytes, str]:
    """The whole body and its strong ETag."""
    body = assemble(header, tzids, blocks, vtimezone_block)
    return body, strong_etag(body)
