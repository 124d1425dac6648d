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
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from dotenv import dotenv_values

from shared.settings import SettingsError

ENV_NAME = "KALENDS_ENCRYPTION_KEYS"
# Where `make run` keeps a development key when KALENDS_ENCRYPTION_KEYS is unset (never committed).
DEVELOPMENT_KEYS_FILE = Path(__file__).resolve().parent.parent / ".env.local"


def development_keys(path: Path = DEVELOPMENT_KEYS_FILE, *, create: bool = False) -> str | None:
    """The key list written in `path` (`KALENDS_ENCRYPTION_KEYS=...`); with `create`, a new key is
    generated and written there (readable by its owner only) when there is none."""
    if path.exists():
        # Read as scripts/run.py reads the same file (python-dotenv): quotes, `export`, comments.
        value = (dotenv_values(path).get(ENV_NAME) or "").strip()
        if value:
            return value
    if not create:
        return None
    key = Fernet.generate_key().decode()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(descriptor, "a", encoding="utf-8") as out:
        out.write(f"{ENV_NAME}={key}\n")
    return key


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
        """The configured key list; in a process's own environment (not a given mapping) an unset
        variable falls back to the development key `make run` wrote into .env.local."""
        box = cls.from_env_optional(environ)
        if box is None:
            raise SettingsError(
                f"{ENV_NAME} is not set: secrets at rest need at least one Fernet key "
                "(`make run` writes a development key into .env.local)"
            )
        return box

    @classmethod
    def from_env_optional(cls, environ: Mapping[str, str] | None = None) -> SecretBox | None:
        """As `from_env`, but None when no key is configured (for commands that may not need one)."""
        raw = (environ if environ is not None else os.environ).get(ENV_NAME, "")
        if not raw.strip() and environ is None:
            raw = development_keys() or ""
        keys = [key.strip() for key in raw.split(",") if key.strip()]
        return cls(keys) if keys else None

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

    def is_current(self, token: str) -> bool:
        """True when the first key opens `token`: nothing to re-encrypt after a rotation."""
        try:
            self._fernets[0].decrypt(token.encode())
        except InvalidToken:
            return False
        return True

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
