"""A real calendar client (vdirsyncer's http storage) pulls a feed into a local folder."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import icalendar

from tests.integration.feed import messages as m
from tests.integration.feed.conftest import FeedHarness
from tests.tools.feed_parsers import ROOT

VDIRSYNCER = ROOT / ".cache" / "vdirsyncer-venv" / "bin" / "vdirsyncer"


async def vdirsyncer(config: Path, *args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        str(VDIRSYNCER),
        "--config",
        str(config),
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(b"y\n" * 5), 120)
    assert process.returncode == 0, out.decode()
    return out.decode()


async def test_vdirsyncer_stores_one_item_per_uid_and_follows_updates(feed: FeedHarness, tmp_path: Path) -> None:
    cal = m.calendar(uuid.uuid4())
    await feed.publish("calendar.created", cal)
    weekly = m.event(cal, "Weekly", recurrence=["RRULE:FREQ=WEEKLY;COUNT=5"])
    events = [
        weekly,
        m.event(cal, "Single", day=3),
        m.event(cal, "All day", start="2026-03-04", end="2026-03-05", all_day=True),
    ]
    for event in events:
        await feed.publish("event.created", event)
    sub = m.subscription(cal)
    await feed.publish("subscription.created", sub)
    path = f"/v1/webcal/{sub.subscription_id}"
    await feed.wait_for(path, lambda s, b: b.count(b"BEGIN:VEVENT") == 3)

    local = tmp_path / "local"
    local.mkdir()
    config = tmp_path / "config"
    config.write_text(
        f"""[general]
status_path = "{tmp_path / "status"}"

[pair kalends]
a = "kalends_feed"
b = "kalends_local"
collections = null

[storage kalends_feed]
type = "http"
url = "{feed.client.make_url(path)}"

[storage kalends_local]
type = "filesystem"
path = "{local}"
fileext = ".ics"
"""
    )
    await vdirsyncer(config, "discover")
    await vdirsyncer(config, "sync")
    items = sorted(local.glob("*.ics"))
    # vdirsyncer's http storage names items by a hash of their text (it does not trust feed UIDs),
    # so what must hold is one stored item per UID of the feed, each with exactly that event.
    assert len(items) == len(events)
    stored = [icalendar.Calendar.from_ical(p.read_bytes()).walk("VEVENT") for p in items]
    assert all(len(vevents) == 1 for vevents in stored)
    assert sorted(str(v[0]["SUMMARY"]) for v in stored) == ["All day", "Single", "Weekly"]

    await feed.publish("event.updated", weekly.model_copy(update={"title": "Weekly, moved", "sequence": 2}))
    await feed.wait_for(path, lambda s, b: b"Weekly, moved" in b)
    await vdirsyncer(config, "sync")
    items = sorted(local.glob("*.ics"))
    assert len(items) == 3
    titles = sorted(str(icalendar.Calendar.from_ical(p.read_bytes()).walk("VEVENT")[0]["SUMMARY"]) for p in items)
    assert titles == ["All day", "Single", "Weekly, moved"]
