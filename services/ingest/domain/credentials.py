"""Feed credentials of protected calendars: stable per subscription, kept encrypted, checked by hash.

A protected calendar's webcal URL carries `username:password@`. The password is made once, when the
subscription first needs one, and kept encrypted (shared.crypto.SecretBox, KALENDS_ENCRYPTION_KEYS)
so that re-subscribing the same subscriber answers the same URL; only its hash travels to the feed.
A new password is made only on purpose (rotate-credentials) or when the stored one cannot be opened
(its key was dropped from the key list).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from services.ingest.domain.subscriptions import hash_feed_password, new_feed_password
from shared.crypto import DecryptionError, SecretBox

# The username of a subscription made without a subscriber id (before its calendar was protected).
ANONYMOUS_USERNAME = "subscriber"


@dataclass(frozen=True)
class FeedCredentials:
    """What a subscription row stores (username, hash, ciphertext) and its URL shows (the password)."""

    username: str | None
    password: str | None
    password_hash: str | None
    password_encrypted: str | None

    @property
    def issued(self) -> bool:
        return self.password is not None


NONE = FeedCredentials(None, None, None, None)


def needs_credentials(protected: bool, subscription_type: str) -> bool:
    """A protected calendar's subscriptions that keep a webcal feed (webcal ones, and CalDAV ones as
    their fallback) are fetched with credentials; a Google one has no feed of its own."""
    return protected and subscription_type != "google"


def issue(box: SecretBox, username: str | None) -> FeedCredentials:
    """Fresh credentials: a new random password, its hash and its ciphertext."""
    password = new_feed_password()
    return FeedCredentials(
        username=username or ANONYMOUS_USERNAME,
        password=password,
        password_hash=hash_feed_password(password),
        password_encrypted=box.encrypt(password),
    )


def stored(box: SecretBox, row: Mapping[str, Any] | None, username: str | None) -> FeedCredentials | None:
    """The credentials a subscription row already holds for `username`, when they can be opened."""
    if row is None or not row.get("feed_password_encrypted") or row.get("feed_username") != username:
        return None
    try:
        password = box.decrypt(row["feed_password_encrypted"])
    except DecryptionError:
        return None
    return FeedCredentials(
        username=username,
        password=password,
        password_hash=hash_feed_password(password),
        password_encrypted=row["feed_password_encrypted"],
    )


def for_subscribe(
    box: SecretBox,
    *,
    protected: bool,
    subscription_type: str,
    subscriber: str | None,
    existing: Mapping[str, Any] | None,
) -> FeedCredentials:
    """The credentials a (re-)subscription answers with: the stored ones when there are, else new ones."""
    if not needs_credentials(protected, subscription_type):
        return NONE
    return stored(box, existing, subscriber) or issue(box, subscriber)
