"""Access-token checks done locally (verify_with_keys), with RSA and EC keys made here by joserfc, and
JwksVerifier's per-token cache, which never outruns the denylist or a token's expiry."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, OctKey, RSAKey

from shared.denylist import Entry
from shared.tokens import (
    AUDIENCE,
    LEEWAY,
    AccessClaims,
    InvalidToken,
    JwksVerifier,
    accepted_algorithms,
    key_algorithm,
    token_kid,
    verify_with_keys,
)

ISSUER = "http://127.0.0.1:8081"
KEY = RSAKey.generate_key(2048, parameters={"kid": "k1"})
OTHER_KEY = RSAKey.generate_key(2048, parameters={"kid": "k1"})  # same kid, different key: a forgery
PUBLIC = KeySet([RSAKey.import_key(KEY.as_dict(private=False))])
NOW = datetime(2030, 1, 1, 12, tzinfo=UTC)


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


# --- algorithms: ES256 and RS256, and only what the key set publishes -------------------------------

EC_KEY = ECKey.generate_key("P-256", parameters={"kid": "e1", "alg": "ES256"}, private=True)
EC_PUBLIC = KeySet([ECKey.import_key(EC_KEY.as_dict(private=False))])
BOTH = KeySet([RSAKey.import_key(KEY.as_dict(private=False)), ECKey.import_key(EC_KEY.as_dict(private=False))])


def sign_es256(payload: dict[str, Any], header: dict[str, Any] | None = None) -> str:
    return jwt.encode(header or {"alg": "ES256", "kid": "e1", "typ": "at+jwt"}, payload, EC_KEY)


def unsigned(header: dict[str, Any], payload: dict[str, Any], signature: str = "") -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part(header)}.{part(payload)}.{signature}"


def test_an_es256_token_verifies_against_an_ec_key_set_and_a_mixed_one() -> None:
    token = sign_es256(claims())
    assert verify_with_keys(token, EC_PUBLIC, ISSUER).client_id == "client-1"
    assert verify_with_keys(token, BOTH, ISSUER).client_id == "client-1"
    assert verify_with_keys(sign(claims()), BOTH, ISSUER).client_id == "client-1"  # and RS256 beside it


def test_the_accepted_algorithms_are_those_the_key_set_publishes() -> None:
    assert accepted_algorithms(PUBLIC) == ["RS256"]
    assert accepted_algorithms(EC_PUBLIC) == ["ES256"]
    assert accepted_algorithms(BOTH) == ["ES256", "RS256"]
    assert accepted_algorithms([OctKey.generate_key(256)]) == []  # a symmetric key verifies nothing
    assert key_algorithm(ECKey.generate_key("P-384")) is None  # only P-256 (ES256)


def test_a_token_in_an_algorithm_the_key_set_does_not_publish_is_refused() -> None:
    with pytest.raises(InvalidToken, match="not one the key set publishes"):
        verify_with_keys(sign_es256(claims()), PUBLIC, ISSUER)
    with pytest.raises(InvalidToken, match="not one the key set publishes"):
        verify_with_keys(sign(claims()), EC_PUBLIC, ISSUER)


def test_a_header_that_names_another_algorithm_than_its_key_is_refused() -> None:
    genuine = sign_es256(claims())
    _, payload, signature = genuine.split(".")
    forged = unsigned({"alg": "RS256", "kid": "e1", "typ": "at+jwt"}, claims())
    with pytest.raises(InvalidToken, match="does not match its key"):
        verify_with_keys(forged.rsplit(".", 1)[0] + "." + signature, BOTH, ISSUER)
    with pytest.raises(InvalidToken):
        verify_with_keys(f"{forged.split('.')[0]}.{payload}.{signature}", BOTH, ISSUER)


@pytest.mark.parametrize("kid", ["k1", "e1"])
def test_hmac_with_a_published_public_key_as_the_secret_is_refused(kid: str) -> None:
    # Alg confusion: the attacker signs HS256 with the bytes of a key everyone can read. Done by hand:
    # joserfc itself refuses to turn a public key into an HMAC secret, an attacker does not.
    public = (KEY if kid == "k1" else EC_KEY).as_pem(private=False)
    signing_input = unsigned({"alg": "HS256", "kid": kid, "typ": "at+jwt"}, claims()).rstrip(".")
    mac = hmac.new(public, signing_input.encode(), hashlib.sha256).digest()
    token = f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    with pytest.raises(InvalidToken, match="not one the key set publishes"):
        verify_with_keys(token, BOTH, ISSUER)


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "HS256", "ES512", "PS256"])
def test_unsigned_or_foreign_algorithms_naming_a_real_kid_are_refused(alg: str) -> None:
    with pytest.raises(InvalidToken):
        verify_with_keys(unsigned({"alg": alg, "kid": "k1", "typ": "at+jwt"}, claims()), BOTH, ISSUER)


# --- the per-token cache in JwksVerifier -----------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now


def verifier_with(keys: KeySet, clock: Clock, cache_size: int = 100) -> JwksVerifier:
    """A verifier with its key set installed (no fetch: min_refresh keeps it from asking)."""
    verifier = JwksVerifier(ISSUER, cache_size=cache_size, clock=clock, min_refresh=3600)
    verifier.install_key_set(keys.as_dict(private=False))
    return verifier


async def test_a_verified_token_is_answered_from_the_cache_until_it_expires() -> None:
    clock = Clock()
    verifier = verifier_with(BOTH, clock)
    token = sign_es256(claims(exp=int(clock.now) + 300))
    first = await verifier.verify(token)
    assert (verifier.cache.hits, verifier.cache.misses) == (0, 1)
    assert await verifier.verify(token) == first
    assert verifier.cache.hits == 1
    clock.now += 300 + LEEWAY  # still inside the leeway verification allows
    assert await verifier.verify(token) == first
    clock.now += 1  # past it: refused, cached or not
    with pytest.raises(InvalidToken, match="expired"):
        await verifier.verify(token)
    assert len(verifier.cache) == 0


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        (Entry("token", "t-1", True, NOW, NOW + timedelta(hours=1)), "has been revoked"),
        (Entry("family", "fam-1", True, NOW, NOW + timedelta(hours=1)), "its grant was revoked"),
        (Entry("client", "client-1", True, NOW, None), "client of this access token is disabled"),
        (Entry("account", "acc-1", True, NOW, None), "account of this access token is disabled"),
    ],
)
async def test_a_cached_token_is_refused_as_soon_as_the_denylist_names_it(entry: Entry, reason: str) -> None:
    clock = Clock()
    clock.now = NOW.timestamp()
    verifier = verifier_with(BOTH, clock)
    token = sign(claims(account_id="acc-1", sid="fam-1", iat=int(clock.now), exp=int(clock.now) + 300))
    assert (await verifier.verify(token)).token_id == "t-1"
    assert (await verifier.verify(token)).token_id == "t-1"
    assert verifier.cache.hits == 1  # cached now
    verifier.denylist.apply(entry)
    with pytest.raises(InvalidToken, match=reason):
        await verifier.verify(token)
    assert verifier.cache.hits == 2  # refused on a cache hit: the denylist runs after the cache
    verifier.denylist.apply(dataclasses.replace(entry, denied=False, expires_at=NOW + timedelta(days=1)))
    assert (await verifier.verify(token)).token_id == "t-1"  # re-enabled client or account


async def test_a_cached_token_whose_key_is_no_longer_published_is_verified_again_and_refused() -> None:
    clock = Clock()
    verifier = verifier_with(BOTH, clock)
    token = sign_es256(claims())
    await verifier.verify(token)
    verifier.install_key_set(PUBLIC.as_dict(private=False))  # the EC key withdrawn from the JWKS
    with pytest.raises(InvalidToken, match="unknown key"):
        await verifier.verify(token)


async def test_only_the_exact_token_hits_and_the_cache_keeps_its_bound() -> None:
    clock = Clock()
    verifier = verifier_with(BOTH, clock, cache_size=2)
    tokens = [sign_es256(claims(jti=f"t-{n}")) for n in range(3)]
    for token in tokens:
        await verifier.verify(token)
    assert len(verifier.cache) == 2  # the least recently used one went
    header, _, signature = tokens[2].split(".")
    other_payload = base64.urlsafe_b64encode(json.dumps(claims(account_code="rival")).encode()).rstrip(b"=")
    with pytest.raises(InvalidToken, match="access token rejected"):
        await verifier.verify(f"{header}.{other_payload.decode()}.{signature}")  # same signature, not a hit
    await verifier.verify(tokens[0])
    assert verifier.cache.misses == 5 and verifier.cache.hits == 0
