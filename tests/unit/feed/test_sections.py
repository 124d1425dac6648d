"""Sectioned feeds: the same bytes as a whole-body rendering, one gzip member, memory per subscription."""

from __future__ import annotations

import gzip
import os
import uuid
import zlib
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from services.feed.domain.feeds import Feed, Section, http_date
from services.feed.domain.gzip_parts import CompressedRun, CrcShift, gzip_member
from shared.ical import CalendarHeader, EventInput, assemble, render_event, render_header
from shared.zone_needs import vtimezone_block

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def rendered(title: str, day: int, timezone: str = "America/New_York") -> tuple[bytes, list[str]]:
    event = render_event(
        EventInput(
            uid=str(uuid.uuid4()),
            sequence=0,
            changed_at=NOW,
            created_at=NOW,
            title=title,
            description="Doors open one hour before.",
            location="Main Arena",
            start=f"2026-03-{day:02d}T19:00:00",
            end=f"2026-03-{day:02d}T21:30:00",
            timezone=timezone,
            all_day=False,
        )
    )
    return event.block, list(event.tzids)


def section_of(events: list[tuple[bytes, list[str]]], version: int = 1) -> Section:
    return Section(
        version, b"".join(b for b, _ in events), frozenset(t for _, tz in events for t in tz), changed_at=NOW
    )


def header(subscription_id: uuid.UUID) -> bytes:
    return render_header(
        CalendarHeader(
            name="Acme games",
            description=f"All the games\n\nUnsubscribe: https://api.example.test/v1/unsubscribe/{subscription_id}",
            refresh_interval="PT1H",
            source=f"https://feeds.example.test/v1/webcal/{subscription_id}",
            timezone="America/New_York",
        )
    )


def feed_of(section: Section, private: list[tuple[bytes, list[str]]] = (), sub: uuid.UUID | None = None) -> Feed:  # type: ignore[assignment]
    return Feed(
        header=header(sub or uuid.uuid4()),
        section=section,
        private_blocks=[b for b, _ in private],
        private_needs=[t for _, tz in private for t in tz],
        last_modified=NOW,
        filename="games.ics",
    )


EVENTS = [rendered(f"Game {i}", 1 + i % 28) for i in range(200)]


@pytest.mark.parametrize(
    "private",
    [
        [],
        [rendered("Private in the same zone", 3)],
        # A zone the shared events do not use: the feed gets VTIMEZONEs of its own.
        [rendered("Private in Paris", 4, "Europe/Paris"), rendered("And Tokyo", 5, "Asia/Tokyo")],
    ],
    ids=["shared only", "private, same zones", "private, new zones"],
)
def test_a_sectioned_body_is_byte_identical_to_the_whole_body_rendering(private: list[tuple[bytes, list[str]]]) -> None:
    section = section_of(EVENTS)
    feed = feed_of(section, private)
    tzids = [t for _, tz in [*EVENTS, *private] for t in tz]
    whole = assemble(feed.header, tzids, [section.blocks, *(b for b, _ in private)], vtimezone_block)
    assert b"".join(feed.chunks()) == whole == feed.body
    assert feed.length == len(whole)


@pytest.mark.parametrize("private", [[], [rendered("Private in Paris", 4, "Europe/Paris")]])
def test_the_gzip_of_a_sectioned_body_is_one_member_that_decompresses_to_the_same_bytes(
    private: list[tuple[bytes, list[str]]],
) -> None:
    feed = feed_of(section_of(EVENTS), private)
    compressed = b"".join(feed.gzip_chunks())
    assert gzip.decompress(compressed) == feed.body
    # One member: a strict single-stream decoder (what some HTTP clients use) reads it all.
    decoder = zlib.decompressobj(wbits=31)
    assert decoder.decompress(compressed) == feed.body
    assert decoder.eof and decoder.unused_data == b""
    assert len(compressed) < len(feed.body) / 3


def test_feeds_of_one_section_share_its_compressed_bytes_and_hold_only_their_own_part() -> None:
    section = section_of(EVENTS)
    first, second = feed_of(section), feed_of(section)
    first_gzip, second_gzip = first.gzip_chunks(), second.gzip_chunks()
    assert first.body != second.body and first.etag != second.etag
    # The big pieces are the very same objects: compressed once per section, not per subscription.
    # (gzip header and stored-block prefix, the header itself, the zones' deflate, the events' deflate, ...)
    assert first_gzip[3] is second_gzip[3] and len(first_gzip[3]) > 1000
    assert first.chunks()[2] is second.chunks()[2] is section.blocks
    # What a subscription holds of its own: its header and small values, never the events.
    own = [getattr(first, name) for name in Feed.__slots__ if name not in ("section", "zones", "_gzip")]
    assert sum(len(v) for v in own if isinstance(v, bytes | str)) < len(first.header) + 500
    assert first.size < len(first.header) + 1024 < len(section.blocks) / 10


def test_an_event_change_changes_only_its_section_and_the_etags_of_the_feeds_on_it() -> None:
    home = EVENTS[:100]
    away = EVENTS[100:]
    changed = [rendered("Game 0, moved", 9), *home[1:]]
    sub = uuid.uuid4()
    home_before, away_before = section_of(home, 1), section_of(away, 1)
    home_after, away_after = section_of(changed, 2), section_of(away, 2)
    assert home_before.digest != home_after.digest
    assert away_before.digest == away_after.digest
    assert feed_of(home_before, sub=sub).etag != feed_of(home_after, sub=sub).etag
    assert feed_of(away_before, sub=sub).etag == feed_of(away_after, sub=sub).etag
    # And the per-subscription part alone changes the tag too (its header carries its own links).
    assert feed_of(away_after, sub=sub).etag != feed_of(away_after).etag
    # A private event changes the tag of that subscription's feed only.
    assert feed_of(away_after, [rendered("Mine", 2)], sub=sub).etag != feed_of(away_after, sub=sub).etag


def test_the_etag_of_the_gzip_differs_from_the_identity_one() -> None:
    feed = feed_of(section_of(EVENTS))
    assert feed.gzip_etag != feed.etag and feed.gzip_etag.startswith('"') and feed.gzip_etag.endswith('-gzip"')


@pytest.mark.parametrize("length", [0, 1, 7, 65_535, 65_536, 65_537, 300_001, 2_000_000])
def test_a_crc_shift_combines_crcs_as_zlib_would(length: int) -> None:
    head, tail = os.urandom(333), os.urandom(length)
    assert CrcShift.over(length)(zlib.crc32(head)) ^ zlib.crc32(tail) == zlib.crc32(head + tail)


def test_a_stored_head_and_compressed_runs_make_a_valid_gzip_member() -> None:
    head = os.urandom(70_000)  # more than one stored block
    run = CompressedRun.of([b"zones\r\n" * 10, b"events\r\n" * 5000, b"END:VCALENDAR\r\n"])
    member = b"".join(gzip_member(head, run.deflate, run.crc_after(head), len(head) + run.length))
    assert gzip.decompress(member) == head + b"zones\r\n" * 10 + b"events\r\n" * 5000 + b"END:VCALENDAR\r\n"


def test_a_section_is_hashed_once_and_its_zones_are_those_its_events_need() -> None:
    section = section_of([*EVENTS, rendered("In Paris", 2, "Europe/Paris")])
    assert section.zones.count(b"BEGIN:VTIMEZONE") == 2
    assert section.zones.index(b"TZID:America/New_York") < section.zones.index(b"TZID:Europe/Paris")


def test_a_feed_put_together_from_a_section_is_the_feed_the_full_constructor_makes() -> None:
    section = section_of(EVENTS)
    sub, calendar = uuid.uuid4(), uuid.uuid4()
    full = feed_of(section, sub=sub)
    quick = Feed.of_section(
        header(sub), section, NOW, http_date(NOW), "games.ics", 'inline; filename="games.ics"',
        "fan", "hash", True, calendar, 7, sub, 3,
    )  # fmt: skip
    assert quick.body == full.body and quick.length == full.length
    assert (quick.etag, quick.gzip_etag) == (full.etag, full.gzip_etag)
    assert quick.last_modified_http == full.last_modified_http
    assert gzip.decompress(quick.gzip_body()) == full.body
    assert (quick.calendar_id, quick.calendar_version, quick.subscription_id, quick.subscription_version) == (
        calendar, 7, sub, 3,
    )  # fmt: skip
    assert (quick.feed_username, quick.feed_password_hash, quick.protected) == ("fan", "hash", True)
    # Another subscriber of the same section: another header, another validator.
    assert (
        Feed.of_section(header(uuid.uuid4()), section, NOW, "", "", "", None, None, False, calendar, 7, sub, 3).etag
        != quick.etag
    )


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 1, 5, 9, 0, tzinfo=UTC),
        datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC),
        datetime(1999, 12, 31, 0, 0, 1, tzinfo=UTC),
        *(datetime(2026, month, day, 7, 8, 9, tzinfo=UTC) for month in range(1, 13) for day in (1, 9, 28)),
    ],
)
def test_http_date_writes_what_email_utils_writes(moment: datetime) -> None:
    assert http_date(moment) == format_datetime(moment, usegmt=True)
