"""Which calendar app a visitor's device most likely uses, from its User-Agent: the primary button.

Apple devices (iPhone, iPad, Mac) open `webcal://` links in Apple Calendar; Android and ChromeOS
people live in Google Calendar; Windows people in Outlook. Anything else gets the Apple/webcal
button first, which every desktop calendar app (Thunderbird, Evolution, Outlook) understands.
"""

from __future__ import annotations

import re
from enum import StrEnum
from functools import lru_cache


class Device(StrEnum):
    APPLE = "apple"
    ANDROID = "android"
    WINDOWS = "windows"
    OTHER = "other"


class App(StrEnum):
    """The buttons of a calendar page, in the order they are listed under the primary one."""

    APPLE = "apple"  # Apple Calendar: webcal
    GOOGLE = "google"
    OUTLOOK_COM = "outlookcom"
    OFFICE365 = "office365"
    OUTLOOK = "outlook"  # Outlook desktop: webcal
    ICS = "ics"  # download the .ics once
    COPY = "copy"  # copy the feed URL


LABELS = {
    App.APPLE: "Apple Calendar",
    App.GOOGLE: "Google Calendar",
    App.OUTLOOK_COM: "Outlook.com",
    App.OFFICE365: "Microsoft 365",
    App.OUTLOOK: "Outlook desktop",
    App.ICS: "Download .ics",
    App.COPY: "Copy link",
}
PRIMARY = {Device.APPLE: App.APPLE, Device.ANDROID: App.GOOGLE, Device.WINDOWS: App.OUTLOOK, Device.OTHER: App.APPLE}

# Order matters: Windows Phone and some Android builds say "like iPhone"/"Mac OS X" too.
_ANDROID = re.compile(r"Android|CrOS", re.IGNORECASE)
_WINDOWS = re.compile(r"Windows NT|Windows Phone|Win64|WOW64", re.IGNORECASE)
_APPLE = re.compile(r"iPhone|iPad|iPod|Macintosh|Mac OS X|CFNetwork|Darwin", re.IGNORECASE)
_MOBILE = re.compile(r"Mobi|iPhone|iPod|iPad|Android|Windows Phone", re.IGNORECASE)


@lru_cache(maxsize=4096)
def device_of(user_agent: str | None) -> Device:
    ua = user_agent or ""
    if _ANDROID.search(ua):
        return Device.ANDROID
    if _WINDOWS.search(ua):
        return Device.WINDOWS
    if _APPLE.search(ua):
        return Device.APPLE
    return Device.OTHER


@lru_cache(maxsize=4096)
def is_mobile(user_agent: str | None) -> bool:
    """Phones and tablets: no QR code for them (they are the device the code would be scanned with)."""
    return bool(_MOBILE.search(user_agent or ""))


def primary_app(user_agent: str | None) -> App:
    return PRIMARY[device_of(user_agent)]


def buttons(user_agent: str | None) -> list[App]:
    """The primary app first, then every other, in App's order."""
    first = primary_app(user_agent)
    return [first, *(app for app in App if app is not first)]
