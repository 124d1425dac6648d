"""Access-token checks done locally (verify_with_keys), with RSA keys made here by joserfc."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, OctKey, RSAKey

from shared.tokens import AUDIENCE, AccessClaims, InvalidToken, token_kid, verify_with_keys

ISSUER = "http://127.0.0.1:8081"
KEY = RSAKey.generate_key(2048, parameters={"kid": "k1"})
OTHER_KEY = RSAKey.generate_key(2048, parameters={"kid": "k1"})  # same kid, different key: a forgery
PUBLIC = KeySet([RSAKey.import_key(KEY.as_dict(private=False))])


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "client-1",
        "client_id": "client-1",
        "account_id": "7f1e0c4e-0000-4000-8000-000000000001",
        "account_code": "league",
        "jti": "t-1",
        "iat": now,
        "exp": now + 300,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def sign(payload: dict[str, Any], *, key: Any = KEY, header: dict[str, Any] | None = None) -> str:
    return jwt.encode(header or {"alg": "RS256", "kid": "k1", "typ": "at+jwt"}, payload, key)


def test_a_valid_access_token_gives_its_claims() -> None:
    verified = verify_with_keys(sign(claims()), PUBLIC, ISSUER)
    assert verified == AccessClaims(
        subject="client-1",
        client_id="client-1",
        account_id="7f1e0c4e-0000-4000-8000-000000000001",
        account_code="league",
        token_id="t-1",
        expires_at=verified.expires_at,
    )
    assert verified.expires_at > time.time()


def test_the_audience_may_be_a_list_holding_ours() -> None:
    assert verify_with_keys(sign(claims(aud=["other", AUDIENCE])), PUBLIC, ISSUER).account_code == "league"


def test_application_at_jwt_is_accepted_as_the_type() -> None:
    token = sign(claims(), header={"alg": "RS256", "kid": "k1", "typ": "application/at+jwt"})
    assert verify_with_keys(token, PUBLIC, ISSUER).client_id == "client-1"


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (lambda: sign(claims(), key=OTHER_KEY), "access token rejected"),
        (lambda: sign(claims(exp=int(time.time()) - 120)), "expired"),
        (lambda: sign(claims(iss="http://evil.example")), "issued by another server"),
        (lambda: sign(claims(aud="another-api")), "not for this API"),
        (lambda: sign(claims(aud=None)), "not for this API"),
        (lambda: sign(claims(exp=None)), "expired"),
        (lambda: sign(claims(iat=int(time.time()) + 3600)), "not valid yet"),
        (lambda: sign(claims(account_code=None)), "lacks required claims"),
        (lambda: sign(claims(), header={"alg": "RS256", "kid": "k1", "typ": "JWT"}), "not an access token"),
        (lambda: sign(claims(), header={"alg": "RS256", "kid": "k1"}), "not an access token"),
        (lambda: "not.a.jwt", "access token rejected"),
        (lambda: "", "access token rejected"),
    ],
)
def test_a_token_that_is_not_a_valid_access_token_of_ours_is_refused(token: Any, message: str) -> None:
    with pytest.raises(InvalidToken, match=message):
        verify_with_keys(token(), PUBLIC, ISSUER)


def test_a_token_signed_with_a_symmetric_key_is_refused_even_with_a_matching_secret() -> None:
    # The classic alg-confusion attack: HS256 signed with something the attacker knows.
    secret = OctKey.generate_key(256, parameters={"kid": "k1"})
    token = jwt.encode({"alg": "HS256", "kid": "k1", "typ": "at+jwt"}, claims(), secret)
    with pytest.raises(InvalidToken):
        verify_with_keys(token, KeySet([secret]), ISSUER)


def test_unsigned_tokens_are_refused() -> None:
    header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "at+jwt"}).encode()).rstrip(b"=")
    payload = base64.urlsafe_b64encode(json.dumps(claims()).encode()).rstrip(b"=")
    with pytest.raises(InvalidToken):
        verify_with_keys(f"{header.decode()}.{payload.decode()}.", PUBLIC, ISSUER)


def test_leeway_tolerates_small_clock_skew_only() -> None:
    token = sign(claims(exp=1_000_000, iat=999_700))
    assert verify_with_keys(token, PUBLIC, ISSUER, now=1_000_020).token_id == "t-1"
    with pytest.raises(InvalidToken, match="expired"):
        verify_with_keys(token, PUBLIC, ISSUER, now=1_000_031)


@pytest.mark.parametrize(
    ("token", "kid"),
    [
        (sign(claims()), "k1"),
        (sign(claims(), header={"alg": "RS256", "typ": "at+jwt"}), None),
        ("%%%.x.y", None),
        (base64.urlsafe_b64encode(b"[1,2]").decode() + ".x.y", None),
        (base64.urlsafe_b64encode(b'"text"').decode() + ".x.y", None),
        ("", None),
    ],
)
def test_token_kid_reads_the_header_and_shrugs_at_garbage(token: str, kid: str | None) -> None:
    assert token_kid(token) == kid
