"""Feed credentials of protected calendars: reused when stored, made when missing, refused to others."""

from __future__ import annotations

import pytest

from services.ingest.domain import credentials
from services.ingest.domain.subscriptions import hash_feed_password, require_routing_hint
from services.ingest.settings import IngestSettings
from shared.crypto import SecretBox
from shared.errors import InvalidRequest
from shared.settings import PlatformSettings, SettingsError

BOX = SecretBox([SecretBox.generate_key()])


def row_of(found: credentials.FeedCredentials) -> dict[str, str | None]:
    return {"feed_username": found.username, "feed_password_encrypted": found.password_encrypted}


def test_a_protected_webcal_subscription_gets_a_password_kept_only_as_hash_and_ciphertext() -> None:
    made = credentials.for_subscribe(BOX, protected=True, subscription_type="webcal", subscriber="fan", existing=None)
    assert made.issued and made.username == "fan" and made.password is not None
    assert made.password_hash == hash_feed_password(made.password)
    assert made.password_encrypted is not None and made.password not in made.password_encrypted
    assert BOX.decrypt(made.password_encrypted) == made.password


def test_the_stored_password_is_answered_again_for_the_same_subscriber() -> None:
    made = credentials.issue(BOX, "fan")
    again = credentials.for_subscribe(
        BOX, protected=True, subscription_type="webcal", subscriber="fan", existing=row_of(made)
    )
    assert again == made


@pytest.mark.parametrize(
    "existing",
    [
        None,
        {"feed_username": "fan", "feed_password_encrypted": None},  # made before the calendar was protected
        {"feed_username": "someone-else", "feed_password_encrypted": BOX.encrypt("theirs")},
        {"feed_username": "fan", "feed_password_encrypted": SecretBox([SecretBox.generate_key()]).encrypt("lost")},
    ],
)
def test_a_new_password_is_made_when_none_can_be_reused(existing: dict[str, str | None] | None) -> None:
    made = credentials.for_subscribe(
        BOX, protected=True, subscription_type="webcal", subscriber="fan", existing=existing
    )
    assert made.issued and made.password not in ("theirs", "lost")


def test_caldav_subscriptions_of_protected_calendars_keep_a_protected_fallback_feed() -> None:
    found = credentials.for_subscribe(BOX, protected=True, subscription_type="caldav", subscriber="c", existing=None)
    assert found.issued and found.username == "c"


def test_unprotected_calendars_and_google_subscriptions_get_no_credentials() -> None:
    for protected, kind in ((False, "webcal"), (True, "google"), (False, "google")):
        found = credentials.for_subscribe(
            BOX, protected=protected, subscription_type=kind, subscriber="x", existing=None
        )
        assert found == credentials.NONE and not found.issued


def test_a_subscription_without_subscriber_gets_a_generic_username() -> None:
    assert credentials.issue(BOX, None).username == credentials.ANONYMOUS_USERNAME


def test_user_agent_or_subscription_method_must_be_given() -> None:
    for method, agent in ((None, None), ("", " "), (" ", None)):
        with pytest.raises(InvalidRequest, match=r"^userAgent: .*subscriptionMethod"):
            require_routing_hint(method, agent)
    require_routing_hint("WebCal", None)
    require_routing_hint(None, "Mozilla/5.0")


def test_ingest_will_not_start_without_an_encryption_key() -> None:
    with pytest.raises(SettingsError, match="KALENDS_ENCRYPTION_KEYS is not set"):
        IngestSettings.from_platform(PlatformSettings(), {})
    with pytest.raises(SettingsError, match="Fernet"):
        IngestSettings.from_platform(PlatformSettings(), {"KALENDS_ENCRYPTION_KEYS": "not-a-key"})


def test_a_password_stored_under_an_old_key_is_still_answered_after_a_new_key_is_put_first() -> None:
    old_key, new_key = SecretBox.generate_key(), SecretBox.generate_key()
    made = credentials.issue(SecretBox([old_key]), "fan")
    rotated_box = SecretBox([new_key, old_key])
    again = credentials.for_subscribe(
        rotated_box, protected=True, subscription_type="webcal", subscriber="fan", existing=row_of(made)
    )
    assert again.password == made.password and again.password_hash == made.password_hash
