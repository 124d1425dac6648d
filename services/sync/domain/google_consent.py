"""Google's consent, as pure functions: the signed single-use `state`, PKCE, and the consent URL.

The `state` names the pending consent (its nonce, which the sync schema records and consumes once)
and the subscription it is for, and carries an expiry; it is signed with a key derived from
KALENDS_ENCRYPTION_KEYS for this one purpose, so it cannot be forged, and a replay finds its nonce
already used. The PKCE verifier never leaves the server: it is stored with the nonce.
"""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from shared.crypto import SecretBox

SCOPES = ("https://www.googleapis.com/auth/calendar.app.created", "openid", "email")
STATE_PURPOSE = "google-consent-state"
CALLBACK_PATH = "/v1/google/callback"
STATE_TTL = timedelta(hours=1)
VERIFIER_LENGTH = 64  # RFC 7636: 43..128 characters of [A-Za-z0-9-._~]


class InvalidState(ValueError):
    """A `state` that was not made here, was altered, or has expired."""


@dataclass(frozen=True)
class ConsentState:
    nonce: str
    subscription_id: uuid.UUID
    expires_at: datetime


@dataclass(frozen=True)
class Pkce:
    verifier: str
    challenge: str


def new_pkce() -> Pkce:
    verifier = generate_token(VERIFIER_LENGTH)
    return Pkce(verifier, create_s256_code_challenge(verifier))


def new_state(box: SecretBox, subscription_id: uuid.UUID, now: datetime | None = None) -> tuple[ConsentState, str]:
    """A fresh state and its signed text: `base64url(json).signature`."""
    state = ConsentState(secrets.token_urlsafe(18), subscription_id, (now or datetime.now(UTC)) + STATE_TTL)
    payload = json.dumps(
        {"n": state.nonce, "s": str(subscription_id), "e": int(state.expires_at.timestamp())}, separators=(",", ":")
    ).encode()
    encoded = base64.urlsafe_b64encode(payload).rstrip(b"=").decode()
    return state, f"{encoded}.{box.sign(STATE_PURPOSE, encoded.encode())}"


def read_state(box: SecretBox, text: str, now: datetime | None = None) -> ConsentState:
    """The state `text` names; InvalidState when forged, altered, malformed or expired."""
    encoded, _, signature = text.partition(".")
    if not encoded or not signature or not box.verify(STATE_PURPOSE, encoded.encode(), signature):
        raise InvalidState("the state parameter was not issued by this service")
    try:
        payload = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
        state = ConsentState(
            str(payload["n"]), uuid.UUID(str(payload["s"])), datetime.fromtimestamp(int(payload["e"]), UTC)
        )
    except (ValueError, KeyError, TypeError):
        raise InvalidState("the state parameter is malformed") from None
    if state.expires_at < (now or datetime.now(UTC)):
        raise InvalidState("the consent took too long; start the subscription again")
    return state


def redirect_uri(public_sync_url: str) -> str:
    return public_sync_url.rstrip("/") + CALLBACK_PATH


def consent_url(
    auth_url: str,
    *,
    client_id: str,
    public_sync_url: str,
    state: str,
    challenge: str,
    login_hint: str | None = None,
) -> str:
    """Google's authorization-code URL: offline access, consent always shown (so a refresh token
    is always issued), PKCE S256, and only the scope that reaches calendars we create."""
    params = {
        "client_id": client_id,
        "redirect_uri": redirect_uri(public_sync_url),
        "response_type": "code",
        "scope": " ".join(SCOPES),
        "access_type": "offline",
        "prompt": "consent",
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    if login_hint:
        params["login_hint"] = login_hint
    return f"{auth_url}{'&' if '?' in auth_url else '?'}{urlencode(params)}"
