"""Parses an iCalendar stream from stdin with libical (GObject bindings; run with /usr/bin/python3) and
prints, per UID, the event's occurrences as JSON: UTC instants for timed events, dates for all-day ones.

First it runs libical's iTIP restriction check (icalrestriction_check) on the whole stream: when that
fails, it prints each X-LIC-ERROR libical added to stderr and exits with status 3.

Usage: /usr/bin/python3 libical_occurrences.py UNTIL_YEAR < feed.ics
"""

import datetime
import json
import sys

import gi

gi.require_version("ICalGLib", "3.0")
from gi.repository import ICalGLib  # noqa: E402


def main() -> None:
    until_year = int(sys.argv[1]) if len(sys.argv) > 1 else 2030
    root = ICalGLib.Component.new_from_string(sys.stdin.read())
    if root is None:
        raise SystemExit("libical could not parse the feed")
    if not ICalGLib.restriction_check(root):
        errors = [line for line in root.as_ical_string().replace("\r\n ", "").splitlines() if "X-LIC-ERROR" in line]
        sys.stderr.write("libical's restriction check failed:\n" + "\n".join(errors) + "\n")
        raise SystemExit(3)
    out = {}
    event = root.get_first_component(ICalGLib.ComponentKind.VEVENT_COMPONENT)
    while event is not None:
        uid = event.get_uid()
        dtstart = event.get_dtstart()
        all_day = dtstart.is_date()
        start = ICalGLib.Time.new_from_string("19000101T000000Z")
        end = ICalGLib.Time.new_from_timet_with_zone(
            int(datetime.datetime(until_year, 1, 1, tzinfo=datetime.UTC).timestamp()),
            0,
            ICalGLib.Timezone.get_utc_timezone(),
        )
        spans = []

        def collect(component, span, _data=None, spans=spans):
            spans.append(span.get_start())

        event.foreach_recurrence(start, end, collect, None)
        occurrences = []
        for moment in spans[:500]:
            instant = datetime.datetime.fromtimestamp(moment, tz=datetime.UTC)
            if all_day:
                # libical reports an all-day occurrence as midnight of its date taken as UTC.
                occurrences.append(instant.date().isoformat())
            else:
                occurrences.append(instant.strftime("%Y-%m-%dT%H:%M:%SZ"))
        status = event.get_first_property(ICalGLib.PropertyKind.STATUS_PROPERTY)
        out[uid] = {
            "summary": event.get_summary(),
            "status": status.get_value_as_string() if status is not None else None,
            "occurrences": occurrences,
        }
        event = root.get_next_component(ICalGLib.ComponentKind.VEVENT_COMPONENT)
    sys.stdout.write(json.dumps(out))


if __name__ == "__main__":
    main()
