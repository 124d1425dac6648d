"""Time zone names at the API edge: shared.timezones' resolution, its refusals as 400s naming the field."""

from __future__ import annotations

from shared.errors import InvalidRequest
from shared.timezones import WINDOWS_TO_IANA, UnknownTimezone, resolve, windows_id

__all__ = ["WINDOWS_TO_IANA", "require_windows_id", "to_iana", "windows_id"]


def to_iana(name: str, field: str) -> str:
    """An IANA name for a Windows id or an IANA name; a 400 naming `field` otherwise."""
    try:
        return resolve(name)
    except UnknownTimezone as exc:
        raise InvalidRequest(f"{field}: {exc}") from None


def require_windows_id(name: str, field: str) -> str:
    """A time-zone tag must be a Windows id (what CalReply's time-zone filter matches)."""
    windows = windows_id(name)
    if windows is None:
        raise InvalidRequest(f"{field}: unknown Windows time zone id {name.strip()[:64]!r}")
    return windows
