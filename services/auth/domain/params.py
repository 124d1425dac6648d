"""Parameters of the OAuth endpoints, from a form-urlencoded or JSON body (the seed sends JSON).

Hand-written rather than aiohttp's `request.post()` because OAuth needs rules it does not apply:
a parameter sent twice is an error (RFC 6749 section 3.2), and undecodable bytes must become an
`invalid_request` answer, never an exception.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

MAX_BODY = 16 * 1024


class MalformedParameters(ValueError):
    """The body cannot be read as OAuth parameters; the message names what is wrong."""


def _from_form(raw: bytes) -> dict[str, str]:
    try:
        text = raw.decode("ascii")
        pairs = parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise MalformedParameters("the form body is not valid application/x-www-form-urlencoded UTF-8") from None
    params: dict[str, str] = {}
    for name, value in pairs:
        if name in params:
            raise MalformedParameters(f"parameter {name!r} is included more than once")
        params[name] = value
    return params


def _unique_pairs(pairs: list[tuple[str, object]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for name, value in pairs:
        if name in out:
            raise MalformedParameters(f"parameter {name!r} is included more than once")
        out[name] = value
    return out


def _from_json(raw: bytes) -> dict[str, str]:
    try:
        document = json.loads(raw.decode("utf-8"), object_pairs_hook=_unique_pairs)
    except UnicodeDecodeError:
        raise MalformedParameters("the JSON body is not valid UTF-8") from None
    except json.JSONDecodeError as exc:
        raise MalformedParameters(
            f"the JSON body is malformed: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    if not isinstance(document, dict):
        raise MalformedParameters("the JSON body must be an object")
    params: dict[str, str] = {}
    for name, value in document.items():
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise MalformedParameters(f"parameter {name!r} must be a string")
        params[name] = str(value)
    return params


def parse_parameters(raw: bytes, content_type: str) -> dict[str, str]:
    """The body's parameters. An empty body has none. Without a content type, the first byte decides."""
    if len(raw) > MAX_BODY:
        raise MalformedParameters(f"the body is larger than {MAX_BODY} bytes")
    if not raw.strip():
        return {}
    content_type = content_type.lower()
    if content_type == "application/x-www-form-urlencoded":
        return _from_form(raw)
    if content_type in ("application/json", "text/json") or content_type.endswith("+json"):
        return _from_json(raw)
    if content_type in ("", "application/octet-stream", "text/plain"):
        return _from_json(raw) if raw.lstrip()[:1] == b"{" else _from_form(raw)
    raise MalformedParameters(
        f"send the parameters as application/x-www-form-urlencoded or application/json, not {content_type}"
    )
