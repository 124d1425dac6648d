"""Typed aiohttp app keys of the sync service."""

from __future__ import annotations

from aiohttp import web

from services.sync.push import PushEngine
from services.sync.services import ConnectionUseCases
from services.sync.settings import SyncSettings

SETTINGS = web.AppKey("sync_settings", SyncSettings)
CONNECTIONS = web.AppKey("sync_connections", ConnectionUseCases)
ENGINE = web.AppKey("sync_engine", PushEngine)
