"""The denylist's rules: which message sets which entry, and which tokens an entry refuses."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from shared.consumer import QueueSpec
from shared.denylist import Denylist, Entry, entry_of, with_denylist
from shared.messages import (
    AccessTokenRevoked,
    AccountStateChanged,
    ClientStateChanged,
    TokenFamilyRevoked,
    WebhookDeliveryDue,
    make_envelope,
)

NOW = datetime(2030, 1, 1, 12, tzinfo=UTC)
ACCOUNT = uuid.uuid4()
FAMILY = uuid.uuid4()


def claims(**overrides: str | None) -> dict[str, str | None]:
    base: dict[str, str | None] = {
        "jti": "jti-1",
        "family_id": str(FAMILY),
        "client_id": "acme.abc",
        "account_id": str(ACCOUNT),
    }
    return {**base, **overrides}


def test_each_revocation_message_sets_its_entry() -> None:
    token = make_envelope(
        "access_token.revoked",
        AccessTokenRevoked(jti="jti-1", client_id="acme.abc", account_id=ACCOUNT, expires_at=NOW),
    )
    family = make_envelope(
        "token_family.revoked",
        TokenFamilyRevoked(family_id=FAMILY, client_id="c", account_id=ACCOUNT, reason="reused", expires_at=NOW),
    )
    disabled = make_envelope(
        "account.disabled", AccountStateChanged(account_id=ACCOUNT, account_code="acme", changed_at=NOW)
    )
    enabled = make_envelope("client.enabled", ClientStateChanged(client_id="c", account_id=ACCOUNT, changed_at=NOW))
    assert entry_of(token) == Entry("token", "jti-1", True, token.occurred_at, NOW)
    assert entry_of(family) == Entry("family", str(FAMILY), True, family.occurred_at, NOW)
    assert entry_of(disabled) == Entry("account", str(ACCOUNT), True, NOW, None)
    entry = entry_of(enabled)
    assert entry is not None and entry.kind == "client" and not entry.denied and entry.expires_at == NOW + timedelta(1)


def test_other_messages_set_nothing() -> None:
    due = WebhookDeliveryDue(delivery_id=uuid.uuid4(), attempt=0)
    assert entry_of(make_envelope("webhook_delivery.due", due)) is None


def test_a_revoked_token_is_refused_until_it_would_have_expired_anyway() -> None:
    denylist = Denylist()
    denylist.apply(Entry("token", "jti-1", True, NOW, NOW + timedelta(minutes=5)))
    assert denylist.refusal(**claims(), now=NOW) == "access token has been revoked"  # type: ignore[arg-type]
    assert denylist.refusal(**claims(jti="jti-2"), now=NOW) is None  # type: ignore[arg-type]
    assert denylist.refusal(**claims(), now=NOW + timedelta(minutes=6)) is None  # type: ignore[arg-type]


def test_a_revoked_family_refuses_every_token_naming_it() -> None:
    denylist = Denylist()
    denylist.apply(Entry("family", str(FAMILY), True, NOW, NOW + timedelta(minutes=5)))
    assert "grant was revoked" in (denylist.refusal(**claims(jti="any"), now=NOW) or "")  # type: ignore[arg-type]
    assert denylist.refusal(**claims(family_id=None), now=NOW) is None  # type: ignore[arg-type]


def test_a_disabled_client_or_account_is_refused_until_enabled_again() -> None:
    denylist = Denylist()
    denylist.apply(Entry("client", "acme.abc", True, NOW, None))
    assert denylist.refusal(**claims(), now=NOW) == "the client of this access token is disabled"  # type: ignore[arg-type]
    denylist.apply(Entry("client", "acme.abc", False, NOW, NOW))
    denylist.apply(Entry("account", str(ACCOUNT), True, NOW, None))
    assert denylist.refusal(**claims(), now=NOW) == "the account of this access token is disabled"  # type: ignore[arg-type]
    denylist.replace_all([])
    assert denylist.refusal(**claims(), now=NOW) is None  # type: ignore[arg-type]


def test_the_first_queue_of_a_service_is_bound_to_the_denylist_messages_once() -> None:
    async def handler(conn: object, envelope: object) -> None:
        return None

    specs = [(QueueSpec("svc.main", ("event.created",)), handler), (QueueSpec("svc.other", ("x.y",)), handler)]
    extended = with_denylist("svc", specs)  # type: ignore[arg-type]
    assert "account.disabled" in extended[0][0].routing_keys and "event.created" in extended[0][0].routing_keys
    assert extended[1][0].routing_keys == ("x.y",)
    assert with_denylist("svc", extended) == extended
