"""countryCode/geoCountry from ipAddress when KALENDS_GEOIP_DB names a MaxMind database."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.ingest.app import create_app
from services.ingest.settings import IngestSettings
from shared.crypto import SecretBox
from shared.settings import PlatformSettings, SettingsError
from tests.integration.ingest.conftest import Harness
from tests.tools.geoip import write_country_db


@pytest.fixture
def ingest_environ(tmp_path: Path) -> dict[str, str]:
    database = write_country_db(tmp_path / "countries.mmdb")
    return {"KALENDS_ENCRYPTION_KEYS": SecretBox.generate_key(), "KALENDS_GEOIP_DB": str(database)}


async def test_the_country_of_the_ip_address_is_kept_shown_and_published(harness: Harness) -> None:
    h, m = harness, harness.merchant()
    response = await h.client.post(f"/v1/calendars/{m.code}", json={"code": "geo", "name": "Geo"}, headers=m.headers)
    assert response.status == 201
    for subscriber, ip in (("au", "150.101.114.215"), ("us", "64.64.64.64"), ("none", "10.0.0.1"), ("bad", "x")):
        body = {"subscriberId": subscriber, "ipAddress": ip, "subscriptionMethod": "webcal"}
        response = await h.client.post(f"/v1/subscribe/{m.code}/geo", json=body, headers=m.headers)
        assert response.status == 200, await response.text()
    shown = {}
    for subscriber in ("au", "us", "none", "bad"):
        response = await h.client.get(f"/v1/subscription/{m.code}/geo/{subscriber}", headers=m.headers)
        (details,) = await response.json()
        shown[subscriber] = (details.get("countryCode"), details.get("geoCountry"))
    assert shown == {
        "au": ("AU", "Australia"),
        "us": ("US", "United States"),
        "none": (None, None),
        "bad": (None, None),
    }
    received = await h.messages.wait_for(5)
    created = {m["data"]["subscriberId"]: m["data"] for m in received if m["type"] == "subscription.created"}
    assert (created["au"]["countryCode"], created["au"]["geoCountry"]) == ("AU", "Australia")
    assert created["none"].get("countryCode") is None


def test_a_geoip_setting_that_is_not_a_maxmind_database_stops_the_start(tmp_path: Path) -> None:
    platform = PlatformSettings()
    for path in (tmp_path / "missing.mmdb", Path(__file__)):
        environ = {"KALENDS_ENCRYPTION_KEYS": SecretBox.generate_key(), "KALENDS_GEOIP_DB": str(path)}
        with pytest.raises(SettingsError, match="KALENDS_GEOIP_DB"):
            create_app(platform, "api", IngestSettings.from_platform(platform, environ))
