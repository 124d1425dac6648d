"""Standard Webhooks signatures, checked with the PyPI `standardwebhooks` package."""

from __future__ import annotations

import base64
import time

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from services.webhook.domain.signing import new_secret, sign, signature_header


def headers(message_id: str, timestamp: int, signature: str) -> dict[str, str]:
    return {"webhook-id": message_id, "webhook-timestamp": str(timestamp), "webhook-signature": signature}


def test_a_new_secret_is_whsec_and_base64_of_at_least_24_random_bytes() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) >= 24
    assert new_secret() != secret


def test_a_signature_verifies_with_the_standard_webhooks_library() -> None:
    secret = new_secret()
    body = b'{"eventId":"1","eventType":"Test","eventDetails":{}}'
    now = int(time.time())
    assert Webhook(secret).verify(body, headers("msg_1", now, sign(secret, "msg_1", now, body))) == {
        "eventId": "1",
        "eventType": "Test",
        "eventDetails": {},
    }


def test_the_library_rejects_a_changed_body_or_another_secret() -> None:
    secret = new_secret()
    now = int(time.time())
    signature = sign(secret, "msg_1", now, b"{}")
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(b'{"a":1}', headers("msg_1", now, signature))
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(b"{}", headers("msg_1", now, signature))


def test_during_a_rotation_both_secrets_sign_and_either_verifies() -> None:
    old, new = new_secret(), new_secret()
    now = int(time.time())
    header = signature_header([new, old], "msg_2", now, b"{}")
    assert len(header.split(" ")) == 2
    for secret in (old, new):
        assert Webhook(secret).verify(b"{}", headers("msg_2", now, header)) == {}
