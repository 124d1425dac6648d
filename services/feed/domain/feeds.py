"""Feeds served from shared sections plus a small per-feed part: pure values, no I/O.

A body is `header + zones + events + tail` (shared.ical.assemble's layout, byte for byte):
  - a `Section` holds what one filter selects from one calendar at one version: the event blocks
    and the VTIMEZONEs they need, with their digest and (on first demand) their deflate, once per
    process however many subscriptions share the filter;
  - a `Feed` holds only what is a subscription's own: its header (name, unsubscribe link, source),
    its private events with the footer (most have none: then the tail is the shared FOOTER), its
    validators, and references to the section. It never copies the section's bytes, so memory
    grows by about a kilobyte per subscription, not by the size of its feed.
The body is written as chunks; nothing joins the big part per request.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from services.feed.domain.gzip_parts import CompressedRun, deflate_piece, gzip_head, trailer
from shared.ical import FOOTER
from shared.zone_needs import first_years, vtimezone_block

# Python's own overhead of a cached feed (the object, its strings and dict slots), for budgeting.
ENTRY_OVERHEAD = 800


def zones_for(needs: Iterable[str]) -> bytes:
    """One VTIMEZONE per TZID, sorted, from the first year its events need (as `assemble` writes them)."""
    return b"".join(vtimezone_block(tzid, year) for tzid, year in sorted(first_years(needs).items()))


class Section:
    """The shared event blocks one filter selects from one calendar at one version, with their zones."""

    __slots__ = (
        "_blocks_deflate",
        "_rest",
        "blocks",
        "changed_at",
        "digest",
        "etag_tail",
        "needs",
        "version",
        "zones",
    )

    def __init__(self, version: int, blocks: bytes, needs: frozenset[str], changed_at: datetime | None) -> None:
        self.version = version
        self.blocks = blocks
        self.needs = needs
        self.changed_at = changed_at
        self.zones = zones_for(needs)
        digest = hashlib.blake2b(digest_size=16)
        digest.update(self.zones)
        digest.update(self.blocks)
        self.digest = digest.digest()
        # What `strong_etag` hashes after a feed's header when the feed is this section and FOOTER.
        self.etag_tail = b"".join(_framed(part) for part in (self.digest, b"", FOOTER))
        self._blocks_deflate: bytes | None = None
        self._rest: CompressedRun | None = None

    @property
    def size(self) -> int:
        compressed = self._rest.size if self._rest is not None else 0
        return len(self.blocks) + len(self.zones) + compressed + 256

    @property
    def blocks_deflate(self) -> bytes:
        if self._blocks_deflate is None:
            self._blocks_deflate = deflate_piece(self.blocks, final=False)
        return self._blocks_deflate

    @property
    def rest(self) -> CompressedRun:
        """zones + blocks + FOOTER compressed once: the gzip of every feed of this section with no
        private part, after its header."""
        if self._rest is None:
            self._rest = CompressedRun.of([self.zones, self.blocks, FOOTER], [None, self.blocks_deflate])
        return self._rest

    def prepare_gzip(self) -> None:
        """Do the compression now (on a worker thread, for a big section)."""
        _ = self.rest.shift

    @property
    def gzip_ready(self) -> bool:
        return self._rest is not None and self._rest.shift_ready


class Feed:
    """One feed at one version: its own header and tail, the shared section, validators, credentials,
    and the versions it was built from (the cache serves it only while they are the newest heard of).

    One object per cached feed, on purpose: the cyclic garbage collector walks every tracked object,
    and 100,000 subscribers' feeds are 100,000 of them, not 200,000 or 300,000."""

    __slots__ = (
        "_gzip",
        "calendar_id",
        "calendar_version",
        "disposition",
        "etag",
        "feed_password_hash",
        "feed_username",
        "filename",
        "gzip_etag",
        "header",
        "last_modified",
        "last_modified_http",
        "length",
        "protected",
        "section",
        "subscription_id",
        "subscription_version",
        "tail",
        "zones",
    )

    def __init__(
        self,
        *,
        header: bytes,
        section: Section,
        last_modified: datetime,
        filename: str,
        disposition: str = "",
        private_blocks: Iterable[bytes] = (),
        private_needs: Iterable[str] = (),
        feed_username: str | None = None,
        feed_password_hash: str | None = None,
        protected: bool = False,
        calendar_id: uuid.UUID | None = None,
        calendar_version: int = 0,
        subscription_id: uuid.UUID | None = None,
        subscription_version: int = 0,
    ) -> None:
        private = b"".join(private_blocks)
        needs = set(private_needs)
        self.header = header
        self.section = section
        # Private events may need a zone (or an earlier year of one) the section does not: then this
        # feed has zones of its own; otherwise it shares the section's bytes.
        if needs and first_years(needs | section.needs) != first_years(section.needs):
            self.zones = zones_for(needs | section.needs)
        else:
            self.zones = section.zones
        self.tail = private + FOOTER if private else FOOTER
        self.length = len(header) + len(self.zones) + len(section.blocks) + len(self.tail)
        own_zones = self.zones if self.zones is not section.zones else b""
        self.etag = strong_etag(header, section.digest, own_zones, self.tail)
        self.gzip_etag = self.etag[:-1] + '-gzip"'
        self.last_modified = last_modified
        self.last_modified_http = format_datetime(last_modified, usegmt=True)
        self.filename = filename
        self.disposition = disposition or f'inline; filename="{filename}"'
        self.feed_username = feed_username
        self.feed_password_hash = feed_password_hash
        # The calendar's flag, not the presence of a hash: a protected feed without a hash serves no one.
        self.protected = protected
        # (the shared compressed pieces, the gzip trailer): 8 bytes of this feed's own once made.
        self._gzip: tuple[tuple[bytes, ...], bytes] | None = None
        self.calendar_id = calendar_id
        self.calendar_version = calendar_version
        self.subscription_id = subscription_id
        self.subscription_version = subscription_version

    @classmethod
    def of_section(
        cls,
        header: bytes,
        section: Section,
        last_modified: datetime,
        last_modified_http: str,
        filename: str,
        disposition: str,
        feed_username: str | None,
        feed_password_hash: str | None,
        protected: bool,
        calendar_id: uuid.UUID,
        calendar_version: int,
        subscription_id: uuid.UUID,
        subscription_version: int,
    ) -> Feed:
        """The feed of a subscription with no private events (the section and FOOTER after its
        header), equal to what `Feed(...)` makes, for the cost of one hash: a popular calendar's
        first poll of each subscriber is put together here, so nothing is worked out twice (the
        HTTP date comes from the caller, the hash's constant end from the section)."""
        feed = cls.__new__(cls)
        feed.header = header
        feed.section = section
        feed.zones = section.zones
        feed.tail = FOOTER
        feed.length = len(header) + len(section.zones) + len(section.blocks) + len(FOOTER)
        hexdigest = hashlib.blake2b(_framed(header) + section.etag_tail, digest_size=16).hexdigest()
        feed.etag = f'"{hexdigest}"'
        feed.gzip_etag = f'"{hexdigest}-gzip"'
        feed.last_modified = last_modified
        feed.last_modified_http = last_modified_http
        feed.filename = filename
        feed.disposition = disposition
        feed.feed_username = feed_username
        feed.feed_password_hash = feed_password_hash
        feed.protected = protected
        feed._gzip = None
        feed.calendar_id = calendar_id
        feed.calendar_version = calendar_version
        feed.subscription_id = subscription_id
        feed.subscription_version = subscription_version
        return feed

    @property
    def size(self) -> int:
        own = (len(self.zones) if self.zones is not self.section.zones else 0) + len(self.tail) - len(FOOTER)
        return len(self.header) + own + ENTRY_OVERHEAD

    @property
    def shares_section_tail(self) -> bool:
        return self.zones is self.section.zones and self.tail is FOOTER

    def chunks(self) -> list[bytes]:
        """The body, in the order it is written."""
        return [self.header, self.zones, self.section.blocks, self.tail]

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks())

    def prepare_gzip(self) -> None:
        """Compute this feed's gzip trailer (and its own compressed pieces, if it has any)."""
        if self._gzip is not None:
            return
        if self.shares_section_tail:
            rest = self.section.rest
            self._gzip = (rest.deflate, trailer(rest.crc_after(self.header), self.length))
            return
        zones_deflate = self.section.rest.deflate[0] if self.zones is self.section.zones else None
        run = CompressedRun.of(
            [self.zones, self.section.blocks, self.tail], [zones_deflate, self.section.blocks_deflate]
        )
        self._gzip = (run.deflate, trailer(run.crc_after(self.header), self.length))

    @property
    def gzip_ready(self) -> bool:
        return self._gzip is not None

    @property
    def gzip_work(self) -> int:
        """Bytes `prepare_gzip` would compress: none once the section is compressed, for a feed
        with no private part (then it is four table look-ups)."""
        if self._gzip is not None:
            return 0
        if self.shares_section_tail and self.section.gzip_ready:
            return 0
        return self.length

    def gzip_chunks(self) -> list[bytes]:
        """One gzip member of the body: the header stored, the shared part as compressed once."""
        self.prepare_gzip()
        assert self._gzip is not None
        deflate, end = self._gzip
        return [*gzip_head(self.header), *deflate, end]

    def gzip_body(self) -> bytes:
        """`gzip_chunks` joined: a compressed body is a few kilobytes, which one copy joins faster
        than the system calls of writing its pieces apart would cost (and one write is one segment)."""
        return b"".join(self.gzip_chunks())


def _framed(part: bytes) -> bytes:
    return len(part).to_bytes(8, "big") + part


def strong_etag(*parts: bytes) -> str:
    digest = hashlib.blake2b(digest_size=16)
    for part in parts:
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return f'"{digest.hexdigest()}"'


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def http_date(moment: datetime) -> str:
    """`email.utils.format_datetime(moment, usegmt=True)` for a UTC moment, in a fifth of the time."""
    return (
        f"{_DAYS[moment.weekday()]}, {moment.day:02d} {_MONTHS[moment.month - 1]} {moment.year:04d}"
        f" {moment.hour:02d}:{moment.minute:02d}:{moment.second:02d} GMT"
    )


def ceil_second(moment: datetime) -> datetime:
    """HTTP dates have whole seconds; round up so a change later in the same second is not hidden."""
    moment = moment.astimezone(UTC)
    if moment.microsecond:
        return moment.replace(microsecond=0) + timedelta(seconds=1)
    return moment
