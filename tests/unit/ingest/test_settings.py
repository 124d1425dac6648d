"""Ingest's limits and the relay's come from KALENDS_* variables, validated at start."""

from __future__ import annotations

import pytest

from services.ingest.services import Limits
from services.ingest.settings import IngestSettings
from shared.crypto import SecretBox
from shared.settings import PlatformSettings, SettingsError

# Ingest will not start without a key (KALENDS_ENCRYPTION_KEYS), so every environment here has one.
KEY = {"KALENDS_ENCRYPTION_KEYS": SecretBox.generate_key()}


def test_limits_default_to_the_documented_values_and_follow_their_variables() -> None:
    platform = PlatformSettings()
    assert IngestSettings.from_platform(platform, KEY).limits == Limits(
        manual_events_per_subscription=200, events_per_calendar=5000
    )
    environ = {**KEY, "KALENDS_MAX_MANUAL_EVENTS_PER_SUBSCRIPTION": "20", "KALENDS_MAX_EVENTS_PER_CALENDAR": "100"}
    assert IngestSettings.from_platform(platform, environ).limits == Limits(20, 100)


@pytest.mark.parametrize("name", ["KALENDS_MAX_MANUAL_EVENTS_PER_SUBSCRIPTION", "KALENDS_MAX_EVENTS_PER_CALENDAR"])
def test_a_limit_below_one_or_not_a_number_refuses_to_start(name: str) -> None:
    for value in ("0", "many"):
        with pytest.raises(SettingsError, match=name):
            IngestSettings.from_platform(PlatformSettings(), {**KEY, name: value})


def test_the_relay_limits_default_to_rabbitmqs_max_message_size_and_five_attempts() -> None:
    assert PlatformSettings.from_env({}).outbox_max_message_bytes == 128 * 1024 * 1024
    assert PlatformSettings.from_env({}).outbox_max_attempts == 5
    custom = PlatformSettings.from_env(
        {"KALENDS_OUTBOX_MAX_MESSAGE_BYTES": "65536", "KALENDS_OUTBOX_MAX_ATTEMPTS": "2"}
    )
    assert (custom.outbox_max_message_bytes, custom.outbox_max_attempts) == (65536, 2)
    with pytest.raises(SettingsError, match="KALENDS_OUTBOX_MAX_ATTEMPTS"):
        PlatformSettings.from_env({"KALENDS_OUTBOX_MAX_ATTEMPTS": "0"})
