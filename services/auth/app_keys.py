"""Typed application keys of the auth service (one module, so handlers and app share them)."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter

from services.auth.authentication import FailureLimits
from services.auth.keys import KeyStore
from services.auth.services import TokenService
from services.auth.settings import AuthSettings
from shared.lifecycle import POOL

__all__ = ["KEYS", "LIMITS", "METRICS", "POOL", "SETTINGS", "TOKENS", "AuthMetrics"]


@dataclass(frozen=True)
class AuthMetrics:
    issued: Counter
    errors: Counter

    @classmethod
    def register(cls, registry: CollectorRegistry) -> AuthMetrics:
        return cls(
            issued=Counter("auth_tokens_issued", "Access tokens issued", ["grant_type"], registry=registry),
            errors=Counter("auth_oauth_errors", "OAuth error answers", ["endpoint", "error"], registry=registry),
        )


SETTINGS = web.AppKey("auth_settings", AuthSettings)
KEYS = web.AppKey("signing_keys", KeyStore)
TOKENS = web.AppKey("token_service", TokenService)
LIMITS = web.AppKey("failure_limits", FailureLimits)
METRICS = web.AppKey("auth_metrics", AuthMetrics)
