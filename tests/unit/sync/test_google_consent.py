"""Google consent pieces: the signed single-use state, PKCE S256 and the consent URL."""

from __future__ import annotations

import base64
import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from services.sync.domain.google_consent import (
    InvalidState,
    consent_url,
    new_pkce,
    new_state,
    read_state,
)
from shared.crypto import SecretBox

BOX = SecretBox([SecretBox.generate_key()])


def test_a_state_round_trips_to_its_subscription_and_nonce() -> None:
    subscription = uuid.uuid4()
    made, text = new_state(BOX, subscription)
    read = read_state(BOX, text)
    assert read.subscription_id == subscription and read.nonce == made.nonce
    assert new_state(BOX, subscription)[0].nonce != made.nonce


def test_a_forged_or_altered_state_is_refused() -> None:
    _, text = new_state(BOX, uuid.uuid4())
    other_key = SecretBox([SecretBox.generate_key()])
    with pytest.raises(InvalidState):
        read_state(other_key, text)
    payload, _, signature = text.partition(".")
    with pytest.raises(InvalidState):
        read_state(BOX, payload[:-2] + "xx." + signature)
    with pytest.raises(InvalidState):
        read_state(BOX, "garbage")


def test_a_state_signed_by_a_rotated_out_key_still_verifies_while_the_key_is_listed() -> None:
    old, new = SecretBox.generate_key(), SecretBox.generate_key()
    _, text = new_state(SecretBox([old]), uuid.uuid4())
    assert read_state(SecretBox([new, old]), text)
    with pytest.raises(InvalidState):
        read_state(SecretBox([new]), text)


def test_an_expired_state_is_refused() -> None:
    _, text = new_state(BOX, uuid.uuid4(), now=datetime.now(UTC) - timedelta(hours=2))
    with pytest.raises(InvalidState, match="too long"):
        read_state(BOX, text)


def test_pkce_challenge_is_the_s256_of_the_verifier() -> None:
    pkce = new_pkce()
    assert 43 <= len(pkce.verifier) <= 128
    expected = base64.urlsafe_b64encode(hashlib.sha256(pkce.verifier.encode()).digest()).rstrip(b"=").decode()
    assert pkce.challenge == expected


def test_the_consent_url_asks_for_offline_access_to_app_created_calendars_only() -> None:
    url = consent_url(
        "https://accounts.google.com/o/oauth2/v2/auth",
        client_id="cid",
        public_sync_url="https://sync.example.com/",
        state="st",
        challenge="ch",
    )
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert parts.netloc == "accounts.google.com"
    assert query == {
        "client_id": "cid",
        "redirect_uri": "https://sync.example.com/v1/google/callback",
        "response_type": "code",
        "scope": "https://www.googleapis.com/auth/calendar.app.created openid email",
        "access_type": "offline",
        "prompt": "consent",
        "state": "st",
        "code_challenge": "ch",
        "code_challenge_method": "S256",
    }


def test_rate_limits_and_server_errors_are_retried_other_refusals_are_not() -> None:
    from services.sync.domain.google_retry import is_retryable

    assert is_retryable(403, "rateLimitExceeded") and is_retryable(403, "userRateLimitExceeded")
    assert is_retryable(429, None) and is_retryable(503, "backendError")
    assert not is_retryable(403, "forbidden") and not is_retryable(400, "invalid") and not is_retryable(404, None)


def test_the_merchants_redirect_may_be_a_page_or_an_app_link_but_never_script() -> None:
    from services.sync.google_flow import valid_redirect

    assert valid_redirect("https://acme.example/thanks?x=1") and valid_redirect("acmeapp://subscribed")
    for bad in ("javascript:alert(1)", "JavaScript:alert(1)", "data:text/html,x", "no scheme", ""):
        assert not valid_redirect(bad), bad


def test_result_parameters_are_appended_to_the_merchants_own_query() -> None:
    from services.sync.google_flow import result_url

    assert result_url("https://a.test/ok", {"success": "true"}) == "https://a.test/ok?success=true"
    assert result_url("https://a.test/ok?ref=7", {"new": "false"}) == "https://a.test/ok?ref=7&new=false"


def test_a_consent_request_names_what_is_missing() -> None:
    from services.sync.google_flow import parse_consent_request
    from shared.errors import InvalidRequest

    with pytest.raises(InvalidRequest, match="subscriptionId"):
        parse_consent_request({"redirectTo": "https://a.test/"})
    with pytest.raises(InvalidRequest, match="redirectTo"):
        parse_consent_request({"subscriptionId": str(uuid.uuid4()), "redirectTo": "javascript:x"})
    parsed = parse_consent_request(
        {"subscriptionId": str(uuid.uuid4()), "redirectTo": "https://a.test/", "ifNeeded": True}
    )
    assert parsed.if_needed and parsed.subscription is None
