"""The primary button from the User-Agent, and the link each calendar app is handed."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from services.web.domain.devices import App, Device, buttons, device_of, is_mobile, primary_app
from services.web.domain.links import app_link, google_add_url, http_feed_url

IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Version/17.4 Mobile/15E148"
IPAD = (
    "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148"
)
MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15"
)
ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Mobile Safari/537.36"
)
CHROMEOS = "Mozilla/5.0 (X11; CrOS x86_64 15633.69.0) AppleWebKit/537.36 Chrome/119.0 Safari/537.36"
WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/124.0 Safari/537.36 Edg/124.0"
LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"


@pytest.mark.parametrize(
    ("user_agent", "device", "primary"),
    [
        (IPHONE, Device.APPLE, App.APPLE),
        (IPAD, Device.APPLE, App.APPLE),
        (MAC, Device.APPLE, App.APPLE),
        (ANDROID, Device.ANDROID, App.GOOGLE),
        (CHROMEOS, Device.ANDROID, App.GOOGLE),
        (WINDOWS, Device.WINDOWS, App.OUTLOOK),
        (LINUX, Device.OTHER, App.APPLE),
        ("", Device.OTHER, App.APPLE),
        (None, Device.OTHER, App.APPLE),
    ],
)
def test_the_device_chooses_the_primary_button(user_agent: str | None, device: Device, primary: App) -> None:
    assert device_of(user_agent) is device
    assert primary_app(user_agent) is primary


def test_an_android_user_agent_that_also_mentions_mac_os_is_android() -> None:
    assert device_of("Mozilla/5.0 (Linux; Android 13; like Mac OS X) Chrome/120 Mobile") is Device.ANDROID


def test_every_button_is_offered_once_with_the_primary_first() -> None:
    for user_agent in (IPHONE, ANDROID, WINDOWS, LINUX):
        listed = buttons(user_agent)
        assert listed[0] is primary_app(user_agent)
        assert sorted(listed) == sorted(App)


def test_phones_and_tablets_are_mobile_and_desktops_are_not() -> None:
    assert is_mobile(IPHONE) and is_mobile(IPAD) and is_mobile(ANDROID)
    assert not is_mobile(MAC) and not is_mobile(WINDOWS) and not is_mobile(LINUX) and not is_mobile(None)


WEBCAL = "webcal://feeds.example.com/v1/webcal/0b2c"
PROTECTED = "webcal://page-abc:s3cr%2Ft@feeds.example.com/v1/webcal/0b2c"


def test_webcal_apps_get_the_webcal_link_and_the_browser_the_feeds_own_scheme() -> None:
    assert app_link(App.APPLE, WEBCAL, "https://feeds.example.com", "Acme") == WEBCAL
    assert app_link(App.OUTLOOK, WEBCAL, "https://feeds.example.com", "Acme") == WEBCAL
    assert app_link(App.ICS, WEBCAL, "https://feeds.example.com", "Acme") == "https://feeds.example.com/v1/webcal/0b2c"
    assert app_link(App.COPY, WEBCAL, "http://127.0.0.1:8083", "Acme") == "http://feeds.example.com/v1/webcal/0b2c"


def test_credentials_of_a_protected_feed_stay_in_every_link() -> None:
    assert http_feed_url(PROTECTED, "https://x") == "https://page-abc:s3cr%2Ft@feeds.example.com/v1/webcal/0b2c"
    assert app_link(App.APPLE, PROTECTED, "https://x", "Acme") == PROTECTED


def test_google_gets_its_add_by_url_page_with_the_webcal_address() -> None:
    link = google_add_url("https://feeds.example.com/v1/webcal/0b2c")
    parts = urlsplit(link)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "calendar.google.com", "/calendar/render")
    assert parse_qs(parts.query) == {"cid": [WEBCAL]}


@pytest.mark.parametrize(
    ("app", "host"), [(App.OUTLOOK_COM, "outlook.live.com"), (App.OFFICE365, "outlook.office.com")]
)
def test_outlook_on_the_web_gets_its_add_from_web_page_with_the_https_feed_and_name(app: App, host: str) -> None:
    link = app_link(app, WEBCAL, "https://feeds.example.com", "Acme & Co")
    parts = urlsplit(link)
    assert (parts.netloc, parts.path) == (host, "/calendar/0/addfromweb")
    assert parse_qs(parts.query) == {"url": ["https://feeds.example.com/v1/webcal/0b2c"], "name": ["Acme & Co"]}
