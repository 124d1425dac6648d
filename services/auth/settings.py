"""The auth service's settings: the platform's plus token lifetimes, signing, key rotation and rate limits."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields

from shared.crypto import SecretBox
from shared.settings import PlatformSettings, SettingsError, env_int, env_str, env_url

# ES256 by default: signing a token costs about 30 µs of CPU against RS256's 250 µs, and every
# verifier (shared.tokens) accepts both. RS256 stays available for clients that only know RSA.
TOKEN_ALGORITHMS = ("ES256", "RS256")
DEFAULT_TOKEN_ALGORITHM = "ES256"


@dataclass(frozen=True)
class AuthSettings:
    platform: PlatformSettings
    access_token_ttl: int = 300
    # The algorithm new access tokens are signed with (KALENDS_TOKEN_ALG); changing it rotates the
    # signing key at the next start, and tokens of the old key keep verifying until they expire.
    token_algorithm: str = DEFAULT_TOKEN_ALGORITHM
    refresh_token_ttl: int = 3600
    # A signing key older than this is rotated automatically (0: only by the admin command).
    signing_key_max_age: int = 30 * 24 * 3600
    # How long a process keeps signing with the key it loaded before looking for a newer one.
    signing_key_cache: int = 30
    # Failed client authentications allowed per window, per client id and per address.
    failures_per_client: int = 10
    failures_per_address: int = 100
    failure_window: int = 60
    # Console users (services/auth/users.py): failed logins allowed per email and per address within
    # the lockout window, past which every login of that email or address waits for the window to end.
    login_failures_per_email: int = 5
    login_failures_per_address: int = 100
    login_lockout: int = 900
    # How long a `create-user` / `password-link` one-time link stays valid, and where it points.
    password_link_ttl: int = 72 * 3600
    public_web_url: str = "http://127.0.0.1:8087"
    # Encrypts private signing keys at rest (KALENDS_ENCRYPTION_KEYS); the service needs it, the
    # admin commands that touch no signing key do not.
    box: SecretBox | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AuthSettings:
        settings = cls(
            platform=PlatformSettings.from_env(environ),
            access_token_ttl=env_int("KALENDS_ACCESS_TOKEN_TTL", 300, environ, minimum=1),
            token_algorithm=_token_algorithm(environ),
            refresh_token_ttl=env_int("KALENDS_REFRESH_TOKEN_TTL", 3600, environ, minimum=1),
            signing_key_max_age=env_int("KALENDS_SIGNING_KEY_MAX_AGE", 30 * 24 * 3600, environ, minimum=0),
            signing_key_cache=env_int("KALENDS_SIGNING_KEY_CACHE", 30, environ, minimum=0),
            failures_per_client=env_int("KALENDS_AUTH_FAILURES_PER_CLIENT", 10, environ, minimum=1),
            failures_per_address=env_int("KALENDS_AUTH_FAILURES_PER_ADDRESS", 100, environ, minimum=1),
            failure_window=env_int("KALENDS_AUTH_FAILURE_WINDOW", 60, environ, minimum=1),
            login_failures_per_email=env_int("KALENDS_LOGIN_FAILURES_PER_EMAIL", 5, environ, minimum=1),
            login_failures_per_address=env_int("KALENDS_LOGIN_FAILURES_PER_ADDRESS", 100, environ, minimum=1),
            login_lockout=env_int("KALENDS_LOGIN_LOCKOUT", 900, environ, minimum=1),
            password_link_ttl=env_int("KALENDS_PASSWORD_LINK_TTL", 72 * 3600, environ, minimum=60),
            public_web_url=env_url(
                "KALENDS_PUBLIC_WEB_URL", "http://127.0.0.1:8087", {"http", "https"}, environ
            ).rstrip("/"),
            box=SecretBox.from_env_optional(environ),
        )
        if 0 < settings.signing_key_max_age <= settings.access_token_ttl:
            raise SettingsError("KALENDS_SIGNING_KEY_MAX_AGE must be longer than KALENDS_ACCESS_TOKEN_TTL")
        return settings

    @classmethod
    def from_platform(cls, platform: PlatformSettings, environ: Mapping[str, str] | None = None) -> AuthSettings:
        base = cls.from_env(environ)
        return cls(platform=platform, **{f.name: getattr(base, f.name) for f in fields(cls) if f.name != "platform"})

    @property
    def issuer(self) -> str:
        return self.platform.auth_url

    @property
    def secret_box(self) -> SecretBox:
        """The key list, or a SettingsError that says how to set one."""
        return self.box if self.box is not None else SecretBox.from_env({})

    def for_log(self) -> dict[str, object]:
        hidden = ("platform", "box")
        out: dict[str, object] = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in hidden}
        out["platform"] = self.platform.for_log()
        return out


def _token_algorithm(environ: Mapping[str, str] | None) -> str:
    raw = env_str("KALENDS_TOKEN_ALG", DEFAULT_TOKEN_ALGORITHM, environ).strip()
    value = raw.upper()
    if value not in TOKEN_ALGORITHMS:
        raise SettingsError(f"KALENDS_TOKEN_ALG must be one of {', '.join(TOKEN_ALGORITHMS)}, got {raw!r}")
    return value
