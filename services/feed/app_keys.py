"""Typed aiohttp app keys of the feed service."""

from __future__ import annotations

from aiohttp import web

from services.feed.api.lean import LeanPath
from services.feed.services import FeedService
from services.feed.settings import FeedSettings

FEEDS = web.AppKey("feeds", FeedService)
SETTINGS = web.AppKey("feed_settings", FeedSettings)
LEAN = web.AppKey("feed_lean_path", LeanPath)
