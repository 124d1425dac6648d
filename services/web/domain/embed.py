"""The embeddable "Subscribe" button merchants paste into their sites (pure).

`<script src=".../embed/{account}/{calendar}.js" async></script>` puts a styled link to the calendar
page right after the script tag; the no-script variant is the same link written by hand (README).
"""

from __future__ import annotations

import json
from urllib.parse import quote

from markupsafe import escape

STYLE = (
    "display:inline-block;padding:10px 16px;border-radius:8px;background:#1a56c4;color:#fff;"
    "font:600 16px/1.2 system-ui,sans-serif;text-decoration:none"
)


def _js(value: str) -> str:
    """A JavaScript string literal that cannot close the script element it sits in."""
    return json.dumps(value).replace("</", "<\\/").replace("<!--", "<\\!--")


def page_link(public_web_url: str, account_code: str, calendar_code: str) -> str:
    return f"{public_web_url}/c/{quote(account_code, safe='')}/{quote(calendar_code, safe='')}"


def button_script(public_web_url: str, account_code: str, calendar_code: str, calendar_name: str) -> str:
    href = page_link(public_web_url, account_code, calendar_code) + "?utm_medium=embed"
    return (
        "(function(){var s=document.currentScript;if(!s||!s.parentNode)return;"
        "var a=document.createElement('a');"
        f"a.href={_js(href)};a.textContent={_js('Subscribe to ' + calendar_name)};"
        f"a.setAttribute('style',{_js(STYLE)});a.className='kalends-subscribe';"
        "s.parentNode.insertBefore(a,s.nextSibling);})();\n"
    )


def no_script_button(public_web_url: str, account_code: str, calendar_code: str, calendar_name: str) -> str:
    href = page_link(public_web_url, account_code, calendar_code)
    return f'<a class="kalends-subscribe" href="{escape(href)}">Subscribe to {escape(calendar_name)}</a>'
