"""Shaping the token response and the access-token claims."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from services.auth.domain.tokens import (
    Grantee,
    IssuedTokens,
    access_claims,
    access_header,
    http_date,
    lifetime_end,
    token_response,
)

ISSUED = datetime(2015, 12, 6, 23, 53, 0, tzinfo=UTC)


def test_the_token_response_has_exactly_the_seeds_fields_in_its_order() -> None:
    tokens = IssuedTokens("at", "rt", "johnsmithmedia", ISSUED, lifetime_end(ISSUED, 300))
    assert token_response(tokens) == {
        "access_token": "at",
        "token_type": "bearer",
        "expires_in": 300,
        "refresh_token": "rt",
        "as:client_id": "johnsmithmedia",
        ".issued": "Sun, 06 Dec 2015 23:53:00 GMT",
        ".expires": "Sun, 06 Dec 2015 23:58:00 GMT",
    }
    assert list(token_response(tokens))[3] == "refresh_token"


def test_a_client_without_the_refresh_grant_gets_no_refresh_token_field() -> None:
    tokens = IssuedTokens("at", None, "c", ISSUED, lifetime_end(ISSUED, 300))
    assert "refresh_token" not in token_response(tokens)


def test_http_dates_are_rfc_1123_in_gmt_without_fractions() -> None:
    assert http_date(ISSUED.replace(microsecond=999)) == "Sun, 06 Dec 2015 23:53:00 GMT"


def test_access_claims_follow_rfc_9068_and_name_the_account() -> None:
    account_id, jti, family = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    claims = access_claims(
        Grantee("acme.1", account_id, "acme"),
        issuer="http://auth",
        issued_at=ISSUED,
        ttl=300,
        jti=jti,
        family_id=family,
    )
    assert claims["iss"] == "http://auth" and claims["aud"] == "kalends-api"
    assert claims["sub"] == claims["client_id"] == "acme.1"
    assert claims["account_id"] == str(account_id) and claims["account_code"] == "acme"
    assert claims["exp"] - claims["iat"] == 300 and claims["jti"] == str(jti)
    assert access_header("k1") == {"alg": "RS256", "typ": "at+jwt", "kid": "k1"}


def test_only_a_client_granted_a_platform_scope_has_a_scope_claim_and_verifiers_keep_known_scopes_only() -> None:
    from shared.tokens import CALENDAR_PAGES, claims_from_payload

    def claims_of(grantee: Grantee) -> dict[str, object]:
        return access_claims(grantee, issuer="i", issued_at=ISSUED, ttl=60, jti=uuid.uuid4(), family_id=uuid.uuid4())

    merchant = claims_of(Grantee("acme.1", uuid.uuid4(), "acme"))
    platform = claims_of(Grantee("web.1", uuid.uuid4(), "kalends", (CALENDAR_PAGES,)))
    assert "scope" not in merchant and platform["scope"] == "calendar-pages"
    assert claims_from_payload(merchant).scopes == frozenset()
    assert claims_from_payload(platform).scopes == {CALENDAR_PAGES}
    assert claims_from_payload({**platform, "scope": "admin calendar-pages root"}).scopes == {CALENDAR_PAGES}
