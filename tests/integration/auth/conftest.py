"""Fixtures for the auth adapters and use-cases against a fresh, migrated database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from services.auth.keys import KeyStore
from services.auth.services import FailureLimits, TokenService
from services.auth.settings import AuthSettings
from shared import db
from shared.crypto import SecretBox
from shared.settings import PlatformSettings

ENCRYPTION_KEY = SecretBox.generate_key()


@pytest.fixture
def settings(database_url: str) -> AuthSettings:
    return AuthSettings(
        platform=PlatformSettings(database_url=database_url, auth_url="http://auth.test"),
        failures_per_client=3,
        failures_per_address=5,
        failure_window=60,
        box=SecretBox([ENCRYPTION_KEY]),
    )


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    async with db.pool_context(database_url, min_size=1, max_size=5) as pool:
        yield pool


@pytest.fixture
def keys(pool: asyncpg.Pool, settings: AuthSettings) -> KeyStore:
    return KeyStore(pool, settings)


@pytest.fixture
def tokens(pool: asyncpg.Pool, settings: AuthSettings, keys: KeyStore) -> TokenService:
    return TokenService(pool, settings, keys)


@pytest.fixture
def limits(settings: AuthSettings) -> FailureLimits:
    return FailureLimits.of(settings)
