// Parses an iCalendar stream from stdin with Mozilla's ical.js and prints, per UID, the event's
// occurrences as JSON: UTC instants ("2026-03-28T18:00:00Z") for timed events, dates for all-day ones.
// Usage: node icaljs_occurrences.mjs UNTIL_YEAR < feed.ics
import fs from "node:fs";
import ICAL from "ical.js";

const untilYear = Number(process.argv[2] || 2030);
const text = fs.readFileSync(0, "utf8");
const root = new ICAL.Component(ICAL.parse(text));
for (const vtimezone of root.getAllSubcomponents("vtimezone")) {
  ICAL.TimezoneService.register(vtimezone);
}
const out = {};
for (const vevent of root.getAllSubcomponents("vevent")) {
  const event = new ICAL.Event(vevent);
  const instants = [];
  const iterator = event.iterator();
  let next;
  while ((next = iterator.next()) && next.year < untilYear && instants.length < 500) {
    if (next.isDate) {
      instants.push(next.toString());
    } else {
      instants.push(new Date(next.toUnixTime() * 1000).toISOString().replace(".000Z", "Z"));
    }
  }
  out[event.uid] = {
    summary: event.summary,
    status: vevent.getFirstPropertyValue("status"),
    occurrences: instants,
  };
}
process.stdout.write(JSON.stringify(out));
