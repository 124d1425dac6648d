"""Google's settings (KALENDS_GOOGLE_*): the OAuth client and the endpoints, which tests point at a double.

Without KALENDS_GOOGLE_CLIENT_ID Google is off: a Google subscription is refused with 409 and a
subscriber routed to Google by their device gets webcal.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from shared.settings import SettingsError, env_url

DEFAULTS = {
    "auth_url": ("KALENDS_GOOGLE_AUTH_URL", "https://accounts.google.com/o/oauth2/v2/auth"),
    "token_url": ("KALENDS_GOOGLE_TOKEN_URL", "https://oauth2.googleapis.com/token"),
    "userinfo_url": ("KALENDS_GOOGLE_USERINFO_URL", "https://openidconnect.googleapis.com/v1/userinfo"),
    "revoke_url": ("KALENDS_GOOGLE_REVOKE_URL", "https://oauth2.googleapis.com/revoke"),
    "api_url": ("KALENDS_GOOGLE_API_URL", "https://www.googleapis.com/calendar/v3"),
    "batch_url": ("KALENDS_GOOGLE_BATCH_URL", "https://www.googleapis.com/batch/calendar/v3"),
}


@dataclass(frozen=True)
class GoogleSettings:
    client_id: str
    client_secret: str = field(repr=False)
    auth_url: str = DEFAULTS["auth_url"][1]
    token_url: str = DEFAULTS["token_url"][1]
    userinfo_url: str = DEFAULTS["userinfo_url"][1]
    revoke_url: str = DEFAULTS["revoke_url"][1]
    api_url: str = DEFAULTS["api_url"][1]
    batch_url: str = DEFAULTS["batch_url"][1]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> GoogleSettings | None:
        """The settings, or None when no client id is configured (Google off)."""
        env = environ if environ is not None else os.environ
        client_id = env.get("KALENDS_GOOGLE_CLIENT_ID", "").strip()
        if not client_id:
            return None
        secret = env.get("KALENDS_GOOGLE_CLIENT_SECRET", "").strip()
        if not secret:
            raise SettingsError("KALENDS_GOOGLE_CLIENT_SECRET must be set when KALENDS_GOOGLE_CLIENT_ID is")
        urls = {
            name: env_url(variable, default, {"http", "https"}, environ).rstrip("/")
            for name, (variable, default) in DEFAULTS.items()
        }
        return cls(client_id=client_id, client_secret=secret, **urls)

    def for_log(self) -> dict[str, object]:
        return {"google_client_id": self.client_id, "google_api_url": self.api_url}
