"""Secrets at rest and signed values, from one rotating key list (KALENDS_ENCRYPTION_KEYS).

Anything the platform must use again (subscribers' OAuth tokens, CalDAV passwords, webhook signing
secrets, signing keys, feed credentials) is encrypted with Fernet; the first key encrypts and every
key decrypts, so an operator rotates by putting a new key first, re-encrypting at leisure
(`SecretBox.rotate`), then dropping the old key. Values that only travel and come back (an OAuth
`state`, say) are signed with a key derived per purpose from the same list, so no second secret is
needed and rotation works the same way.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Mapping

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from shared.settings import SettingsError

ENV_NAME = "KALENDS_ENCRYPTION_KEYS"


class DecryptionError(ValueError):
    """A ciphertext that no configured key opens (wrong key list, or tampered data)."""


class SecretBox:
    """Encrypts with the first key, decrypts with any; signs and verifies per purpose."""

    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise SettingsError(f"{ENV_NAME} must hold at least one Fernet key")
        try:
            self._fernets = [Fernet(key.encode()) for key in keys]
        except (ValueError, TypeError):
            raise SettingsError(
                f"{ENV_NAME} must be comma-separated Fernet keys (32 url-safe base64 bytes each); "
                "make one with: python -c "
                "'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
            ) from None
        self._multi = MultiFernet(self._fernets)
        self._raw_keys = [base64.urlsafe_b64decode(key.encode()) for key in keys]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SecretBox:
        raw = (environ if environ is not None else os.environ).get(ENV_NAME, "")
        keys = [key.strip() for key in raw.split(",") if key.strip()]
        if not keys:
            raise SettingsError(
                f"{ENV_NAME} is not set: secrets at rest need at least one Fernet key "
                "(`make run` writes a development key into .env.local)"
            )
        return cls(keys)

    @staticmethod
    def generate_key() -> str:
        return Fernet.generate_key().decode()

    def encrypt(self, plaintext: str | bytes) -> str:
        data = plaintext.encode() if isinstance(plaintext, str) else plaintext
        return self._multi.encrypt(data).decode()

    def decrypt_bytes(self, token: str) -> bytes:
        try:
            return self._multi.decrypt(token.encode())
        except InvalidToken:
            raise DecryptionError("no key in KALENDS_ENCRYPTION_KEYS decrypts this value") from None

    def decrypt(self, token: str) -> str:
        return self.decrypt_bytes(token).decode()

    def rotate(self, token: str) -> str:
        """The same plaintext, re-encrypted under the first key."""
        try:
            return self._multi.rotate(token.encode()).decode()
        except InvalidToken:
            raise DecryptionError("no key in KALENDS_ENCRYPTION_KEYS decrypts this value") from None

    def _signing_key(self, raw_key: bytes, purpose: str) -> bytes:
        return hmac.new(raw_key, b"kalends-sign:" + purpose.encode(), hashlib.sha256).digest()

    def sign(self, purpose: str, message: bytes) -> str:
        """A url-safe MAC of message for one purpose (a state for Google is not a feed credential)."""
        mac = hmac.new(self._signing_key(self._raw_keys[0], purpose), message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()

    def verify(self, purpose: str, message: bytes, signature: str) -> bool:
        """True when any configured key made this signature; constant time per key."""
        for raw_key in self._raw_keys:
            mac = hmac.new(self._signing_key(raw_key, purpose), message, hashlib.sha256).digest()
            expected = base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
            if hmac.compare_digest(expected, signature):
                return True
        return False
