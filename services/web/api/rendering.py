"""Rendering a calendar page: its template variables, the QR code, the renderer the cache calls."""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import quote

import jinja2
import segno
from markupsafe import Markup

from services.web.domain.devices import LABELS, PRIMARY, App, Device
from services.web.domain.page import CalendarPage
from services.web.services import VISIT_MARK, PageRenderer
from services.web.settings import WebSettings


def page_url(settings: WebSettings, page: CalendarPage) -> str:
    return f"{settings.public_web_url}/c/{quote(page.account_code, safe='')}/{quote(page.code, safe='')}"


@lru_cache(maxsize=1024)
def qr_svg(url: str) -> Markup:
    """The page's address as an inline SVG QR code (segno), for desktop visitors to scan."""
    svg = segno.make(url, error="m", micro=False).svg_inline(scale=4, svgclass="qr-code", lineclass=None)
    return Markup(svg.replace("<svg ", '<svg role="img" aria-label="QR code of this page" ', 1))  # noqa: S704


def page_variables(settings: WebSettings, page: CalendarPage, device: Device, desktop: bool) -> dict[str, object]:
    primary = PRIMARY[device]
    others = [app for app in App if app is not primary]
    url = page_url(settings, page)
    return {
        "page": page,
        "primary": primary,
        "others": others,
        "labels": LABELS,
        "page_url": url,
        "page_path": f"/c/{quote(page.account_code, safe='')}/{quote(page.code, safe='')}",
        # The code carries utm_medium=qr, so the merchant's analytics count subscriptions made by scanning it.
        "qr": qr_svg(url + "?utm_medium=qr") if desktop else None,
        "problem": None,
        "form": {},
        "chosen": set(),
        "visit": Markup(VISIT_MARK),  # noqa: S704 - a constant
    }


def page_renderer(env: jinja2.Environment, settings: WebSettings) -> PageRenderer:
    def render(page: CalendarPage, device: Device, desktop: bool) -> str:
        template = env.get_template("calendar.html")
        return template.render(**page_variables(settings, page, device, desktop))

    return render
