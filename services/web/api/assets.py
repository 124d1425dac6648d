"""The static assets (CSS, the progressive-enhancement script), served from memory with a content hash."""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

TYPES = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    etag: str


@dataclass(frozen=True)
class Assets:
    files: dict[str, Asset]

    @classmethod
    def load(cls, directory: Path) -> Assets:
        files = {}
        for path in sorted(directory.iterdir()):
            if path.is_file() and not path.name.startswith("."):
                body = path.read_bytes()
                kind = TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                files[path.name] = Asset(body, kind, hashlib.sha256(body).hexdigest()[:16])
        return cls(files)

    def url(self, name: str) -> str:
        """`/static/<name>?v=<hash>`: the hash lets browsers keep the file for a year."""
        return f"/static/{name}?v={self.files[name].etag}"

    def response(self, request: web.Request, name: str) -> web.StreamResponse:
        asset = self.files.get(name)
        if asset is None:
            raise web.HTTPNotFound()
        etag = f'"{asset.etag}"'
        headers = {"ETag": etag, "Cache-Control": "public, max-age=31536000, immutable"}
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers=headers)
        return web.Response(body=asset.body, content_type=asset.content_type, charset="utf-8", headers=headers)
