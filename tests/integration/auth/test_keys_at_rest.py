"""Private signing keys are encrypted at rest; plaintext rows are sealed at start; tokens still
verify after the encryption keys rotate (new key first, old key still listed)."""

from __future__ import annotations

import base64
import dataclasses
import json
from datetime import UTC, datetime

import asyncpg
from joserfc.jwk import KeySet

from services.auth.keys import KeyStore, generate_key, seal_signing_keys
from services.auth.services import FailureLimits, TokenService
from services.auth.settings import AuthSettings
from shared.crypto import SecretBox
from shared.tokens import verify_with_keys
from tests.integration.auth.conftest import ENCRYPTION_KEY
from tests.integration.auth.test_tokens import issue, new_grantee


async def key_rows(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        return await conn.fetch("SELECT kid, public_jwk, private_jwk, private_jwk_encrypted FROM auth.signing_keys")


async def issue_and_verify(pool: asyncpg.Pool, settings: AuthSettings, limits: FailureLimits) -> str:
    keys = KeyStore(pool, settings)
    grantee, created = await new_grantee(pool, limits)
    token = (await issue(TokenService(pool, settings, keys), limits, created)).access_token
    jwks = KeySet.import_key_set(await keys.public_jwks())  # type: ignore[arg-type]
    assert verify_with_keys(token, jwks, settings.issuer).client_id == grantee.client_id
    return token


async def test_a_new_signing_key_is_stored_encrypted_and_its_private_part_appears_nowhere_in_the_clear(
    pool: asyncpg.Pool, settings: AuthSettings, limits: FailureLimits
) -> None:
    await issue_and_verify(pool, settings, limits)

    (row,) = await key_rows(pool)
    assert row["private_jwk"] is None
    private = settings.secret_box.decrypt(row["private_jwk_encrypted"])
    secret_member = json.loads(private)["d"]
    assert secret_member not in str(dict(row)) and "d" not in row["public_jwk"]


async def test_a_plaintext_key_from_before_is_sealed_and_keeps_signing(
    pool: asyncpg.Pool, settings: AuthSettings, limits: FailureLimits
) -> None:
    # Keys from before sealing were all RS256; a process still configured for RS256 keeps them.
    settings = dataclasses.replace(settings, token_algorithm="RS256")
    key = generate_key("RS256")
    private = key.as_dict(private=True)
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO auth.signing_keys (kid, private_jwk, created_at) VALUES ($1, $2, $3)",
            key.kid,
            private,
            datetime.now(UTC),
        )
        assert await seal_signing_keys(conn, settings.secret_box) == 1
        assert await seal_signing_keys(conn, settings.secret_box) == 0  # idempotent

    (row,) = await key_rows(pool)
    assert row["private_jwk"] is None and private["d"] not in str(dict(row))
    assert row["public_jwk"]["kid"] == key.kid and row["public_jwk"]["n"] == private["n"]
    token = await issue_and_verify(pool, settings, limits)
    assert json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))["kid"] == key.kid


async def test_after_an_encryption_key_rotation_old_and_new_tokens_verify_and_the_old_key_can_go(
    pool: asyncpg.Pool, settings: AuthSettings, limits: FailureLimits
) -> None:
    before = await issue_and_verify(pool, settings, limits)
    new_key = SecretBox.generate_key()
    rotated = dataclasses.replace(settings, box=SecretBox([new_key, ENCRYPTION_KEY]))  # new first, old listed
    async with pool.acquire() as conn:
        assert await seal_signing_keys(conn, rotated.secret_box) == 1

    after = await issue_and_verify(pool, rotated, limits)
    keys = KeySet.import_key_set(await KeyStore(pool, rotated).public_jwks())  # type: ignore[arg-type]
    for token in (before, after):
        assert verify_with_keys(token, keys, settings.issuer)
    (row,) = await key_rows(pool)
    assert SecretBox([new_key]).decrypt(row["private_jwk_encrypted"])  # the new key alone opens it now
