"""A calendar's row at one version and what every subscriber's feed of it shares (split from services.py)."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from services.feed.domain.feeds import ceil_second, http_date
from services.feed.domain.headers import HeaderTemplate


class CalendarCopy:
    """A calendar's row at one version, with what every subscriber's feed of it shares: the template
    of their headers, the file name, and the HTTP date of the newest change a subscriber's own
    version does not pass (worked out once per calendar version, not once per subscriber)."""

    __slots__ = (
        "_stamps",
        "disposition",
        "filename",
        "last_modified",
        "last_modified_http",
        "moment",
        "protected",
        "record",
        "template",
        "version",
    )

    def __init__(
        self, version: int, record: asyncpg.Record, template: HeaderTemplate | None, filename: str, disposition: str
    ) -> None:
        self.version = version
        self.record = record
        self.template = template
        self.filename = filename
        self.disposition = disposition
        self.protected = bool(record["protected"])
        moments = [m for m in (record["feed_changed_at"], record["changed_at"]) if m is not None]
        self.moment: datetime | None = max(moments) if moments else None
        self.last_modified = ceil_second(self.moment) if self.moment is not None else None
        self.last_modified_http = http_date(self.last_modified) if self.last_modified is not None else ""
        self._stamps: dict[datetime, tuple[datetime, str]] = {}

    def stamp(self, subscription_changed_at: datetime | None) -> tuple[datetime, str]:
        """Last-Modified of a subscriber's feed (the later of the calendar's and the subscription's
        changes, rounded up to the second) and its HTTP form."""
        moment = self.moment
        if subscription_changed_at is None or (moment is not None and subscription_changed_at <= moment):
            assert self.last_modified is not None
            return self.last_modified, self.last_modified_http
        found = self._stamps.get(subscription_changed_at)
        if found is None:
            last_modified = ceil_second(subscription_changed_at)
            if len(self._stamps) > 10_000:
                self._stamps.clear()
            found = self._stamps[subscription_changed_at] = (last_modified, http_date(last_modified))
        return found
