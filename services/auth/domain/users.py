"""Console users' credentials: email and password rules, argon2id hashing, one-time tokens, lockout.

Pure: no database, no HTTP. Passwords are hashed with argon2id (argon2-cffi's defaults, RFC 9106's
second recommended parameter set); the encoded hash carries its own parameters, so raising them
later only needs `needs_rehash` at the next login.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_PASSWORD = 10
MAX_PASSWORD = 256  # argon2 takes any length; a bound keeps one request's CPU bounded
MAX_EMAIL = 254  # RFC 5321's path limit
# Deliberately loose: one @, something before it, a dotted domain, no spaces. Whether the address
# receives mail is not ours to judge at creation (the operator types it).
EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s.]+(\.[^@\s.]+)+")

_hasher = PasswordHasher()
# Compared against when the email is unknown, so both paths cost one argon2 verification.
_UNKNOWN_USER_HASH = _hasher.hash("\x00no such user")


class UnacceptablePassword(ValueError):
    """The password breaks a rule; the message says which."""


def normalize_email(email: str) -> str:
    """Trimmed and lowercased, or ValueError naming what is wrong."""
    value = email.strip().lower()
    if not value:
        raise ValueError("email is required")
    if len(value) > MAX_EMAIL or not EMAIL.fullmatch(value):
        raise ValueError(f"{email.strip()[:80]!r} is not an email address")
    return value


def check_password(password: str, email: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise UnacceptablePassword(f"the password must be at least {MIN_PASSWORD} characters long")
    if len(password) > MAX_PASSWORD:
        raise UnacceptablePassword(f"the password must be at most {MAX_PASSWORD} characters long")
    if password.strip().lower() == email.lower() or password.lower() == email.split("@")[0].lower():
        raise UnacceptablePassword("the password must not be the email address")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def password_matches(password: str, stored: str | None) -> bool:
    """Constant work whether or not there is a stored hash (an unknown or not yet activated user)."""
    try:
        return _hasher.verify(stored or _UNKNOWN_USER_HASH, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return _hasher.check_needs_rehash(stored)


def new_one_time_token() -> str:
    return "pt_" + secrets.token_urlsafe(32)


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


@dataclass(frozen=True)
class LoginLimits:
    """Failed logins allowed per email, and per source address, within `window` seconds; past either,
    every attempt (the right password too) is refused until the window ends: a password, unlike a
    client secret, can be guessed."""

    per_email: int
    per_address: int
    window: int


def email_bucket(email: str) -> str:
    return "user:" + email[:MAX_EMAIL]


def login_address_bucket(address: str) -> str:
    return "login-addr:" + address[:100]
