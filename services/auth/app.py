"""The auth service's application: OAuth routes (api role), the outbox relay (worker role)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web

from services.auth.adapters import repository as repo
from services.auth.adapters import users as users_repo
from services.auth.api.routes import routes
from services.auth.app_keys import KEYS, LIMITS, METRICS, SETTINGS, TOKENS, AuthMetrics
from services.auth.authentication import FailureLimits
from services.auth.keys import KeyStore, seal_signing_keys
from services.auth.services import TokenService
from services.auth.settings import AuthSettings
from shared import lifecycle
from shared.lean import use_lean_path
from shared.lifecycle import POOL
from shared.logging import get_logger
from shared.settings import PlatformSettings
from shared.web import REGISTRY, add_routes, create_base_app

log = get_logger(__name__)

SCHEMA = repo.SCHEMA
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
HOUSEKEEPING_INTERVAL = 600.0


def _token_machinery(app: web.Application) -> AsyncIterator[None]:
    async def ctx() -> AsyncIterator[None]:
        settings = app[SETTINGS]
        async with app[POOL].acquire() as conn:
            await seal_signing_keys(conn, settings.secret_box)  # no private key stays in the clear
        keys = KeyStore(app[POOL], settings)
        await keys.signer()  # the first key exists before the first request (created if missing)
        app[KEYS] = keys
        app[TOKENS] = TokenService(app[POOL], settings, keys)
        yield

    return ctx()


async def _purge_expired(app: web.Application) -> None:
    """Drop expired token families, revocations and failure windows (run every HOUSEKEEPING_INTERVAL)."""
    settings = app[SETTINGS]
    window = max(settings.failure_window, settings.login_lockout)  # login windows are longer
    async with app[POOL].acquire() as conn:
        counts = await repo.purge_expired(conn, datetime.now(UTC), window)
        counts |= await users_repo.purge_expired(conn, datetime.now(UTC))
    log.info("housekeeping.purged", **counts)


def create_app(settings: AuthSettings, role: str = "all") -> web.Application:
    settings.secret_box  # noqa: B018 - signing keys are encrypted at rest: no key list, no start
    app = create_base_app("auth")
    use_lean_path(app)  # POST /oauth2/token (api.handlers.token)
    app[SETTINGS] = settings
    app[LIMITS] = FailureLimits.of(settings)
    app[METRICS] = AuthMetrics.register(app[REGISTRY])
    # Auth's connections keep no session state (SET LOCAL and transaction advisory locks only): a
    # released connection needs no RESET ALL round trip, one less per token request.
    app.cleanup_ctx.append(lifecycle.database(settings.platform, SCHEMA, MIGRATIONS, reset_session=False))
    if role in ("api", "all"):
        app.cleanup_ctx.append(_token_machinery)
        add_routes(app, routes())
    if role in ("worker", "all"):
        app.cleanup_ctx.append(lifecycle.broker(settings.platform))
        app.cleanup_ctx.append(lifecycle.outbox_relay(SCHEMA))
        app.cleanup_ctx.append(lifecycle.periodic("auth-housekeeping", HOUSEKEEPING_INTERVAL, _purge_expired))
    return app


def build_app(platform: PlatformSettings, role: str) -> web.Application:
    """The factory shared.service.run calls."""
    return create_app(AuthSettings.from_platform(platform), role)
