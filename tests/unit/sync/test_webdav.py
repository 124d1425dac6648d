"""CalDAV details (pure): multistatus parsing, resource names, MKCALENDAR bodies, settings."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET

import pytest

from services.sync.adapters.caldav import resource_url
from services.sync.adapters.webdav import (
    APPLE,
    CALDAV,
    DAV,
    href_in,
    mkcalendar_body,
    parse_multistatus,
    tag,
)
from services.sync.settings import SyncSettings
from shared.settings import SettingsError

MULTISTATUS = b"""<?xml version="1.0"?>
<d:multistatus xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">
  <d:response>
    <d:href>/dav/</d:href>
    <d:propstat>
      <d:prop>
        <d:current-user-principal><d:href>/dav/principals/alice/</d:href></d:current-user-principal>
        <c:calendar-home-set><d:href>/dav/calendars/alice/</d:href></c:calendar-home-set>
      </d:prop>
      <d:status>HTTP/1.1 200 OK</d:status>
    </d:propstat>
    <d:propstat>
      <d:prop><d:resourcetype/></d:prop>
      <d:status>HTTP/1.1 404 Not Found</d:status>
    </d:propstat>
  </d:response>
</d:multistatus>"""


def test_a_multistatus_gives_absolute_hrefs_and_only_the_properties_found() -> None:
    (found,) = parse_multistatus(MULTISTATUS, "https://dav.example/dav/")
    assert found.href == "https://dav.example/dav/"
    assert tag(DAV, "resourcetype") not in found.props  # 404 propstat ignored
    home = href_in(found.props[tag(CALDAV, "calendar-home-set")], found.href)
    principal = href_in(found.props[tag(DAV, "current-user-principal")], found.href)
    assert home == "https://dav.example/dav/calendars/alice/"
    assert principal == "https://dav.example/dav/principals/alice/"


def test_an_answer_that_is_not_xml_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="not XML"):
        parse_multistatus(b"<html>login</html", "https://dav.example/")


def test_each_event_is_one_resource_named_by_its_uid_inside_the_collection() -> None:
    event_id = uuid.uuid4()
    assert resource_url("https://dav.example/cal/abc", event_id) == f"https://dav.example/cal/abc/{event_id}.ics"
    assert resource_url("https://dav.example/cal/abc/", event_id) == f"https://dav.example/cal/abc/{event_id}.ics"


def test_mkcalendar_names_the_collection_after_the_merchants_calendar_for_events_only() -> None:
    root = ET.fromstring(mkcalendar_body("Acme <Games>", "All of them", "#1e90ff", "Europe/London"))  # noqa: S314
    prop = root.find(f"{tag(DAV, 'set')}/{tag(DAV, 'prop')}")
    assert prop is not None
    assert prop.findtext(tag(DAV, "displayname")) == "Acme <Games>"
    assert prop.findtext(tag(CALDAV, "calendar-description")) == "All of them"
    assert prop.findtext(tag(APPLE, "calendar-color")) == "#1e90ff"
    (comp,) = prop.iter(tag(CALDAV, "comp"))
    assert comp.get("name") == "VEVENT"


def test_sync_settings_come_from_kalends_variables_and_refuse_nonsense() -> None:
    settings = SyncSettings.from_env({"KALENDS_SYNC_ALLOW_PRIVATE": "1", "KALENDS_SYNC_CONCURRENCY": "8"})
    assert settings.allow_private and settings.concurrency == 8
    assert settings.public_sync_url == "http://127.0.0.1:8085"
    with pytest.raises(SettingsError, match="KALENDS_SYNC_ALLOW_PRIVATE"):
        SyncSettings.from_env({"KALENDS_SYNC_ALLOW_PRIVATE": "maybe"})
    with pytest.raises(SettingsError, match="KALENDS_PUBLIC_SYNC_URL"):
        SyncSettings.from_env({"KALENDS_PUBLIC_SYNC_URL": "ftp://x"})


def test_retry_after_is_read_as_seconds_or_as_an_http_date() -> None:
    from datetime import UTC, datetime, timedelta
    from email.utils import format_datetime

    from services.sync.adapters.caldav import retry_after
    from services.sync.adapters.webdav import DavResponse

    def answer(value: str | None) -> DavResponse:
        return DavResponse(429, {"retry-after": value} if value is not None else {}, b"", "https://dav.example/")

    assert retry_after(answer("30")) == 30.0
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    assert 100 < (retry_after(answer(later)) or 0) <= 120
    assert retry_after(answer(None)) is None
    assert retry_after(answer("soon")) is None
