"""The webhook settings: the retry schedule, timeout and private-address switch from KALENDS_* variables."""

from __future__ import annotations

import pytest

from services.webhook.settings import DEFAULT_RETRY_SCHEDULE, WebhookSettings, parse_retry_schedule
from shared.settings import SettingsError


def test_defaults_are_the_contracts() -> None:
    settings = WebhookSettings.from_env({})
    assert settings.retry_schedule == DEFAULT_RETRY_SCHEDULE == (0, 60, 180, 420, 900, 1800)
    assert settings.timeout == 15
    assert settings.allow_private is False


def test_the_variables_are_read() -> None:
    settings = WebhookSettings.from_env(
        {
            "KALENDS_WEBHOOK_RETRY_SCHEDULE": "0, 1,2,3",
            "KALENDS_WEBHOOK_TIMEOUT": "2.5",
            "KALENDS_WEBHOOK_ALLOW_PRIVATE": "1",
        }
    )
    assert settings.retry_schedule == (0, 1, 2, 3)
    assert settings.timeout == 2.5
    assert settings.allow_private is True


@pytest.mark.parametrize("raw", ["", "1,2,3", "0,5,5", "0,10,5", "0,a", "0,-1"])
def test_a_schedule_that_does_not_start_at_zero_and_strictly_increase_is_refused(raw: str) -> None:
    with pytest.raises(SettingsError, match="KALENDS_WEBHOOK_RETRY_SCHEDULE"):
        parse_retry_schedule(raw)


def test_a_bad_timeout_or_switch_is_refused() -> None:
    with pytest.raises(SettingsError, match="KALENDS_WEBHOOK_TIMEOUT"):
        WebhookSettings.from_env({"KALENDS_WEBHOOK_TIMEOUT": "0"})
    with pytest.raises(SettingsError, match="KALENDS_WEBHOOK_ALLOW_PRIVATE"):
        WebhookSettings.from_env({"KALENDS_WEBHOOK_ALLOW_PRIVATE": "maybe"})
