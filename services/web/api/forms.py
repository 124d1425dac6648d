"""Reading a posted form: a body that is not one is the visitor's 400, never a 500."""

from __future__ import annotations

from aiohttp import web
from multidict import MultiDictProxy

# What aiohttp's `request.post()` raises on a body it cannot read as a form (each seen by hand):
# ValueError for multipart without a boundary, without its starting boundary, with a field without a
# name or cut short, and (UnicodeDecodeError) urlencoded bytes that are not the charset's; LookupError
# for a charset Python does not know.
_UNREADABLE = (ValueError, LookupError)


async def posted_form(request: web.Request) -> MultiDictProxy[str | bytes | bytearray | web.FileField]:
    """The request's form (aiohttp keeps it: a second call reads no body)."""
    try:
        return await request.post()
    except _UNREADABLE:
        raise web.HTTPBadRequest(reason="the form could not be read; send it again from the page") from None
