"""Google's settings: off without a client id, a clear error for a half-made configuration."""

from __future__ import annotations

import pytest

from services.sync.google_settings import GoogleSettings
from shared.settings import SettingsError


def test_without_a_client_id_google_is_off() -> None:
    assert GoogleSettings.from_env({}) is None
    assert GoogleSettings.from_env({"KALENDS_GOOGLE_CLIENT_ID": "  "}) is None


def test_a_client_id_without_its_secret_is_refused_at_start() -> None:
    with pytest.raises(SettingsError, match="KALENDS_GOOGLE_CLIENT_SECRET"):
        GoogleSettings.from_env({"KALENDS_GOOGLE_CLIENT_ID": "id"})


def test_endpoints_default_to_googles_and_can_point_at_a_double() -> None:
    settings = GoogleSettings.from_env({"KALENDS_GOOGLE_CLIENT_ID": "id", "KALENDS_GOOGLE_CLIENT_SECRET": "s"})
    assert settings is not None
    assert settings.token_url == "https://oauth2.googleapis.com/token"
    assert settings.api_url == "https://www.googleapis.com/calendar/v3"
    assert "client_secret" not in repr(settings)  # never logged
    double = GoogleSettings.from_env(
        {
            "KALENDS_GOOGLE_CLIENT_ID": "id",
            "KALENDS_GOOGLE_CLIENT_SECRET": "s",
            "KALENDS_GOOGLE_API_URL": "http://127.0.0.1:9999/calendar/v3/",
        }
    )
    assert double is not None and double.api_url == "http://127.0.0.1:9999/calendar/v3"
    with pytest.raises(SettingsError, match="KALENDS_GOOGLE_TOKEN_URL"):
        GoogleSettings.from_env(
            {"KALENDS_GOOGLE_CLIENT_ID": "i", "KALENDS_GOOGLE_CLIENT_SECRET": "s", "KALENDS_GOOGLE_TOKEN_URL": "nope"}
        )
