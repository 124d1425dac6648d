"""HTTP Basic parsing and secret handling."""

from __future__ import annotations

import base64

import pytest

from services.auth.domain.credentials import (
    MalformedCredentials,
    hash_secret,
    new_api_key,
    parse_basic,
    secret_matches,
    validate_account_code,
)
from shared.api_keys import api_key_hash


def basic(raw: bytes) -> str:
    return "Basic " + base64.b64encode(raw).decode()


def test_basic_credentials_split_at_the_first_colon() -> None:
    credentials = parse_basic(basic(b"client.1:se:cret"))
    assert (credentials.client_id, credentials.client_secret) == ("client.1", "se:cret")
    assert credentials.method == "client_secret_basic"


def test_basic_credentials_are_form_url_decoded_as_rfc_6749_asks() -> None:
    credentials = parse_basic(basic(b"my%20client:p%3Ass"))
    assert (credentials.client_id, credentials.client_secret) == ("my client", "p:ss")


def test_the_scheme_name_is_case_insensitive() -> None:
    assert parse_basic("bAsIc " + base64.b64encode(b"a:b").decode()).client_id == "a"


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("Bearer abc", "Basic scheme"),
        ("Basic", "empty"),
        ("Basic !!!notbase64", "base64"),
        ("Basic YW=Jj", "base64"),
        (basic(b"no-colon-here"), "':'"),
        (basic(b"\xff\xfe:secret"), "UTF-8"),
        (basic(b":secret"), "empty client id"),
    ],
)
def test_malformed_basic_headers_are_rejected_with_a_reason(header: str, reason: str) -> None:
    with pytest.raises(MalformedCredentials, match=reason):
        parse_basic(header)


def test_a_secret_matches_only_its_own_hash() -> None:
    stored = hash_secret("right")
    assert secret_matches("right", stored)
    assert not secret_matches("wrong", stored)
    assert not secret_matches("", stored)


def test_api_keys_are_alphanumeric_and_hashed_to_hex_sha256() -> None:
    key = new_api_key()
    assert key.isalnum() and len(key) >= 40
    assert len(api_key_hash(key)) == 64 and api_key_hash(key) != api_key_hash(new_api_key())


@pytest.mark.parametrize("code", ["acct_1a2b3c4d", "a", "my-shop", "x" * 63])
def test_account_codes_of_lowercase_letters_digits_dash_and_underscore_are_valid(code: str) -> None:
    assert validate_account_code(code) == code


@pytest.mark.parametrize("code", ["", "Upper", "has space", "x" * 64, "dot.ted", "ünï"])
def test_other_account_codes_are_refused(code: str) -> None:
    with pytest.raises(ValueError, match="account code"):
        validate_account_code(code)
