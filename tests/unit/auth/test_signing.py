"""The Signer's hand-serialised access tokens are the JWS every verifier expects (ES256 and RS256)."""

from __future__ import annotations

import base64
import json
import time
import uuid
import warnings
from datetime import UTC, datetime
from typing import Any

import jwt as pyjwt
import pytest
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from services.auth.domain.tokens import Grantee, access_claims, access_header
from services.auth.keys import Signer, generate_key, public_jwk
from shared.tokens import AUDIENCE, InvalidToken, verify_with_keys

with warnings.catch_warnings():  # authlib.jose says it is deprecated for joserfc: still a verifier clients use
    warnings.simplefilter("ignore")
    from authlib.jose import JsonWebKey
    from authlib.jose import jwt as authlib_jwt

ISSUER = "http://auth.test"


def _claims() -> dict[str, Any]:
    grantee = Grantee("acme.1a2b3c", uuid.uuid4(), "acme", ("calendars:any",))
    now = datetime.fromtimestamp(int(time.time()), UTC)
    return access_claims(grantee, issuer=ISSUER, issued_at=now, ttl=300, jti=uuid.uuid4(), family_id=uuid.uuid4())


def _segment(token: str, index: int) -> dict[str, Any]:
    part = token.split(".")[index]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


@pytest.fixture(params=["ES256", "RS256"])
def signer(request: pytest.FixtureRequest) -> Signer:
    key = generate_key(request.param)
    assert key.kid is not None
    return Signer(key.kid, key, request.param)


def _published(signer: Signer) -> dict[str, Any]:
    return {"keys": [public_jwk(signer.key.as_dict(private=True))]}


def test_a_signed_token_has_the_access_token_header_and_the_claims_unpadded(signer: Signer) -> None:
    claims = _claims()
    token = signer.sign(claims)
    assert token.count(".") == 2 and "=" not in token
    assert _segment(token, 0) == access_header(signer.kid, signer.algorithm)
    assert _segment(token, 1) == claims


def test_joserfc_and_the_shared_verifier_accept_it(signer: Signer) -> None:
    claims = _claims()
    token = signer.sign(claims)
    keys = KeySet.import_key_set(_published(signer))  # type: ignore[arg-type]
    decoded = jwt.decode(token, keys, algorithms=[signer.algorithm])
    assert dict(decoded.claims) == claims and decoded.header["typ"] == "at+jwt"
    verified = verify_with_keys(token, keys, ISSUER)
    assert verified.client_id == "acme.1a2b3c" and verified.account_code == "acme"


def test_authlib_and_pyjwt_accept_it(signer: Signer) -> None:
    claims = _claims()
    token = signer.sign(claims)
    (public,) = _published(signer)["keys"]
    by_authlib = authlib_jwt.decode(token, JsonWebKey.import_key(public))
    by_authlib.validate()
    assert dict(by_authlib) == claims
    key = pyjwt.PyJWK.from_dict(public)
    by_pyjwt = pyjwt.decode(token, key, algorithms=[signer.algorithm], audience=AUDIENCE, issuer=ISSUER)
    assert by_pyjwt == claims


def test_a_token_signed_by_joserfc_and_by_the_signer_carry_the_same_header_and_claims(signer: Signer) -> None:
    claims = _claims()
    reference = jwt.encode(access_header(signer.kid, signer.algorithm), claims, signer.key)
    ours = signer.sign(claims)
    assert _segment(ours, 0) == _segment(reference, 0) and _segment(ours, 1) == _segment(reference, 1)


def test_a_changed_byte_breaks_the_signature(signer: Signer) -> None:
    token = signer.sign(_claims())
    head, _, signature = token.split(".")
    forged = _claims() | {"account_code": "other"}
    forged_payload = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()
    keys = KeySet.import_key_set(_published(signer))  # type: ignore[arg-type]
    with pytest.raises(InvalidToken):
        verify_with_keys(f"{head}.{forged_payload}.{signature}", keys, ISSUER)


def test_a_signer_refuses_a_key_of_another_algorithm() -> None:
    key = generate_key("RS256")
    assert key.kid is not None
    with pytest.raises(JoseError):
        Signer(key.kid, key, "ES256")
