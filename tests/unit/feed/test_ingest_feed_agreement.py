"""Whatever ingest's validation accepts, the feed renders, and icalendar parses the feed.

Ingest once accepted events the feed could not render (an RDATE;VALUE=PERIOD, an EXDATE in a retired
Windows zone, zones such as `posixrules`): the feed's consumer failed five times and dead-lettered
them. Both now read time zones and recurrence lines with shared.timezones and shared.recurrence;
this property holds them to it over events built from good and bad parts alike.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import icalendar
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from services.ingest.domain.events import EventDraft, event_fields
from shared.errors import InvalidRequest
from shared.ical import CalendarHeader, EventInput, assemble, render_event, render_header
from shared.zone_needs import vtimezone_block

ZONES = [
    "Europe/Berlin",
    "america/new_york",
    "W. Europe Standard Time",
    "Mid-Atlantic Standard Time",  # retired from CLDR, still on CalReply's list
    "Kamchatka Standard Time",
    "UTC",
    "Etc/GMT+2",
    "Asia/Kolkata",
    "Australia/Lord_Howe",
    "America/Santiago",
    "posixrules",
    "right/UTC",
    "posix/Europe/Berlin",
    "Factory",
    "localtime",
    "Nowhere/City",
]
FREQS = ["SECONDLY", "MINUTELY", "HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY"]
WEEKDAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]
MOMENTS = st.datetimes(min_value=datetime(1898, 1, 1), max_value=datetime(2202, 12, 31))


@st.composite
def moment_text(draw: st.DrawFn) -> str:
    moment = draw(MOMENTS)
    form = draw(st.sampled_from(["%Y%m%d", "%Y%m%dT%H%M%S", "%Y%m%dT%H%M%SZ"]))
    return moment.strftime(form)


def _number(low: int, high: int, *edges: int) -> st.SearchStrategy[str]:
    """Mostly values in range, sometimes just outside it."""
    return st.one_of(st.integers(low, high), st.integers(low, high), st.sampled_from(edges)).map(str)


@st.composite
def rule_line(draw: st.DrawFn) -> str:
    parts = {
        "INTERVAL": _number(1, 4, 0, -1),
        "COUNT": _number(1, 30, 0, -2, 1001),
        "UNTIL": moment_text(),
        "BYMONTH": _number(1, 12, 0, 13),
        "BYMONTHDAY": _number(-31, 31, 0, 32, -32),
        "BYYEARDAY": _number(1, 366, 0, 367),
        "BYWEEKNO": _number(-53, 53, 0, 54),
        "BYHOUR": _number(0, 23, 24, -1),
        "BYMINUTE": _number(0, 59, 60),
        "BYSECOND": _number(0, 59, 60),
        "BYSETPOS": _number(-2, 2, 0, 367),
        "BYDAY": st.tuples(st.sampled_from(["", "", "1", "-1", "2", "6", "+54"]), st.sampled_from(WEEKDAYS)).map(
            "".join
        ),
        "WKST": st.sampled_from(["MO", "SU", "XX"]),
    }
    chosen = draw(st.lists(st.sampled_from(sorted(parts)), unique=True, max_size=3))
    text = ";".join(
        [f"FREQ={draw(st.sampled_from([*FREQS, *FREQS[3:], 'NEVER']))}", *(f"{p}={draw(parts[p])}" for p in chosen)]
    )
    return f"{draw(st.sampled_from(['RRULE', 'EXRULE', 'rrule']))}:{text}"


@st.composite
def dates_line(draw: st.DrawFn) -> str:
    name = draw(st.sampled_from(["RDATE", "EXDATE", "exdate"]))
    kind = draw(st.sampled_from([None, None, None, "DATE", "DATE-TIME", "PERIOD"]))
    params = f";VALUE={kind}" if kind else ""
    if draw(st.integers(0, 2)) == 0:
        params += f";TZID={draw(st.sampled_from(ZONES[:10]) | st.sampled_from(ZONES))}"
    moment = moment_text() if kind != "DATE" else MOMENTS.map(lambda m: m.strftime("%Y%m%d"))
    item = st.one_of(
        *[moment] * 8,
        st.tuples(moment_text(), moment_text()).map("/".join),
        st.sampled_from(["P1D", "T120000", "2026-04-04", "20261304T190000"]),
    )
    return f"{name}{params}:{','.join(draw(st.lists(item, min_size=1, max_size=3)))}"


@st.composite
def drafts(draw: st.DrawFn) -> EventDraft:
    all_day = draw(st.booleans())
    start = draw(MOMENTS).replace(microsecond=0)
    end = start + draw(st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3)))
    form = "%Y-%m-%d" if all_day else "%Y-%m-%dT%H:%M:%S"
    return EventDraft(
        title="Game",
        start=start.strftime(form),
        end=end.strftime(form),
        timezone=draw(st.none() | st.sampled_from(ZONES[:10]) | st.sampled_from(ZONES)),
        all_day=all_day,
        recurrence=draw(st.lists(rule_line() | dates_line(), max_size=3)),
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(drafts())
def test_whatever_ingest_accepts_the_feed_renders_and_icalendar_parses(draft: EventDraft) -> None:
    try:
        fields = event_fields(draft, default_timezone="UTC", tag_ids=[])
    except InvalidRequest:
        event("refused by ingest")
        return
    event(f"accepted with {len(fields['recurrence'])} recurrence lines")
    when = datetime(2026, 2, 1, tzinfo=UTC)
    rendered = render_event(
        EventInput(
            uid="e1",
            sequence=0,
            changed_at=when,
            created_at=when,
            title=fields["title"],
            start=fields["start"],
            end=fields["end"],
            timezone=fields["timezone"],
            all_day=fields["all_day"],
            recurrence=tuple(fields["recurrence"]),
        )
    )
    assert rendered.skipped == ()  # no line left out: the renderer reads every line as ingest did
    body = assemble(render_header(CalendarHeader(name="Cal")), rendered.tzids, [rendered.block], vtimezone_block)
    calendar = icalendar.Calendar.from_ical(body)
    (vevent,) = calendar.walk("VEVENT")
    tzids = {str(tz["TZID"]) for tz in calendar.walk("VTIMEZONE")}
    for name in ("DTSTART", "DTEND", "RDATE", "EXDATE"):
        values = vevent.get(name, [])
        for value in values if isinstance(values, list) else [values]:
            tzid = value.params.get("TZID")
            assert tzid is None or tzid in tzids
    rules = [line for line in fields["recurrence"] if line.startswith(("RRULE", "EXRULE"))]
    written = [vevent.get(name, []) for name in ("RRULE", "EXRULE")]
    assert sum(len(w) if isinstance(w, list) else 1 for w in written) == len(rules)
