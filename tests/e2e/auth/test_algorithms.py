"""KALENDS_TOKEN_ALG end to end: switching RS256 -> ES256 keeps earlier tokens valid everywhere."""

from __future__ import annotations

import base64
import json
from typing import Any

import aiohttp
import jwt
import pytest

from shared.testing import Stack
from shared.tokens import InvalidToken, JwksVerifier

from .test_tokens import pyjwt_claims

pytestmark = pytest.mark.e2e


async def jwks(stack: Stack) -> list[dict[str, Any]]:
    async with aiohttp.ClientSession() as session, session.get(stack.url("auth") + "/.well-known/jwks.json") as got:
        assert got.status == 200
        body: dict[str, Any] = await got.json()
    keys: list[dict[str, Any]] = body["keys"]
    return keys


async def test_switching_from_rs256_to_es256_publishes_both_keys_and_both_tokens_verify(stack: Stack) -> None:
    await stack.start("auth", env={"KALENDS_TOKEN_ALG": "RS256"})
    account = await stack.new_account()
    before = await stack.token(account)
    assert jwt.get_unverified_header(before)["alg"] == "RS256"
    (rsa,) = await jwks(stack)
    assert rsa["kty"] == "RSA" and rsa["alg"] == "RS256"

    await stack.start("auth", env={"KALENDS_TOKEN_ALG": "ES256"})  # a restart with the new setting
    after = await stack.token(account)
    header = jwt.get_unverified_header(after)
    assert header["alg"] == "ES256" and header["kid"] != rsa["kid"]
    keys = {k["kid"]: k for k in await jwks(stack)}
    assert set(keys) == {rsa["kid"], header["kid"]}  # the retired RSA key stays until its tokens expire
    ec = keys[header["kid"]]
    assert ec["kty"] == "EC" and ec["crv"] == "P-256" and ec["alg"] == "ES256" and ec["x"] and ec["y"]
    assert "d" not in ec

    # The shared verifier every service uses, and PyJWT as an outside one, accept both tokens.
    verifier = JwksVerifier(stack.url("auth"))
    try:
        for token in (before, after):
            assert (await verifier.verify(token)).client_id == account["clientId"]
            assert (await pyjwt_claims(token, stack.url("auth")))["client_id"] == account["clientId"]
        # A token whose header claims RS256 for the EC key (or the other way round) is refused.
        _, payload, signature = after.split(".")
        claimed = json.dumps({"alg": "RS256", "typ": "at+jwt", "kid": header["kid"]}).encode()
        swapped = base64.urlsafe_b64encode(claimed).rstrip(b"=").decode()
        with pytest.raises(InvalidToken, match="algorithm does not match its key"):
            await verifier.verify(f"{swapped}.{payload}.{signature}")
    finally:
        await verifier.close()


async def test_an_unknown_algorithm_setting_stops_the_service_with_a_clear_message(stack: Stack) -> None:
    with pytest.raises(RuntimeError, match="KALENDS_TOKEN_ALG must be one of ES256, RS256"):
        await stack.start("auth", env={"KALENDS_TOKEN_ALG": "HS256"}, timeout=20)
