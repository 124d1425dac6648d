"""Key rotation selection and failed-authentication window arithmetic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.auth.domain import keys, ratelimit
from services.auth.domain.keys import KeyRecord
from services.auth.domain.ratelimit import Window

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_the_newest_unretired_key_signs() -> None:
    old = KeyRecord("old", at(0), retired_at=at(100), expires_at=at(500))
    mid = KeyRecord("mid", at(50))
    new = KeyRecord("new", at(100))
    assert keys.signing_key([old, mid, new]) == new
    assert keys.signing_key([old]) is None
    assert keys.signing_key([]) is None


def test_retired_keys_stay_published_until_their_tokens_can_have_expired() -> None:
    expiry = keys.retirement_expiry(at(100), access_ttl=300, cache=30)
    assert expiry == at(100 + 300 + 30) + keys.MARGIN
    old = KeyRecord("old", at(0), retired_at=at(100), expires_at=expiry)
    new = KeyRecord("new", at(100))
    assert [k.kid for k in keys.published_keys([old, new], at(200))] == ["new", "old"]
    assert [k.kid for k in keys.published_keys([old, new], expiry)] == ["new"]


def test_rotation_is_due_without_a_key_or_when_the_key_is_too_old() -> None:
    key = KeyRecord("k", at(0))
    assert keys.rotation_due(None, at(0), 0)
    assert not keys.rotation_due(key, at(99), 100)
    assert keys.rotation_due(key, at(100), 100)
    assert not keys.rotation_due(key, at(10**9), 0)  # automatic rotation off


def test_failures_below_the_limit_allow_another_attempt() -> None:
    assert ratelimit.retry_after(None, at(0), 60, 3) is None
    assert ratelimit.retry_after(Window(at(0), 2), at(10), 60, 3) is None


def test_reaching_the_limit_blocks_until_the_window_ends() -> None:
    window = Window(at(0), 3)
    assert ratelimit.retry_after(window, at(10), 60, 3) == 50
    assert ratelimit.retry_after(window, at(59.2), 60, 3) == 1
    assert ratelimit.retry_after(window, at(60), 60, 3) is None


def test_a_failure_after_the_window_starts_a_new_one() -> None:
    assert ratelimit.after_failure(Window(at(0), 7), at(61), 60) == Window(at(61), 1)
    assert ratelimit.after_failure(Window(at(0), 7), at(30), 60) == Window(at(0), 8)
    assert ratelimit.after_failure(None, at(5), 60) == Window(at(5), 1)


@pytest.mark.parametrize("algorithm", ["ES256", "RS256"])
def test_the_public_jwk_keeps_no_private_member(algorithm: str) -> None:
    from services.auth.keys import generate_key, public_jwk

    key = generate_key(algorithm)
    private = key.as_dict(private=True)
    public = public_jwk(private)
    assert public == key.as_dict(private=False)
    assert public["alg"] == algorithm and public["kid"] == key.kid
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(public)
    if algorithm == "ES256":
        assert public["kty"] == "EC" and public["crv"] == "P-256" and public["x"] and public["y"]


def test_a_signing_key_of_another_algorithm_than_the_configured_one_is_rotated() -> None:
    rsa = KeyRecord("k1", at(0), algorithm="RS256")
    assert keys.rotation_due(rsa, at(1), 0, "ES256")  # KALENDS_TOKEN_ALG switched to ES256
    assert not keys.rotation_due(rsa, at(1), 0, "RS256")
    assert not keys.rotation_due(KeyRecord("k2", at(0), algorithm="ES256"), at(1), 100, "ES256")


def test_the_algorithm_setting_defaults_to_es256_and_refuses_anything_else() -> None:
    from services.auth.settings import AuthSettings
    from shared.settings import SettingsError

    assert AuthSettings.from_env({}).token_algorithm == "ES256"
    assert AuthSettings.from_env({"KALENDS_TOKEN_ALG": "rs256"}).token_algorithm == "RS256"
    for wrong in ("HS256", "none", "ES512"):
        with pytest.raises(SettingsError, match="KALENDS_TOKEN_ALG must be one of ES256, RS256"):
            AuthSettings.from_env({"KALENDS_TOKEN_ALG": wrong})
