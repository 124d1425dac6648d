"""Country of an IP address from a MaxMind database (KALENDS_GEOIP_DB), for seed 002's
`countryCode` (ISO 3166 alpha-2) and `geoCountry` (its English name).

Lookups read a memory-mapped file: microseconds, so they run inline. Any MaxMind database with a
`country` (GeoLite2/GeoIP2 Country or City) works; `registered_country` is used when `country` is absent.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import maxminddb
from maxminddb.errors import InvalidDatabaseError

from shared.settings import SettingsError


class CountryLookup:
    def __init__(self, path: str) -> None:
        if not Path(path).is_file():
            raise SettingsError(f"KALENDS_GEOIP_DB names {path!r}, which is not a file")
        try:
            self._reader = maxminddb.open_database(path)
        except (InvalidDatabaseError, ValueError, OSError) as exc:
            raise SettingsError(f"KALENDS_GEOIP_DB {path!r} is not a MaxMind database: {exc}") from None

    def details(self, ip_address: str | None) -> dict[str, str]:
        """`country_code` and `geo_country` of the address, or nothing when unknown or not an IP."""
        if not ip_address:
            return {}
        try:
            address = ipaddress.ip_address(ip_address.strip())
            record: Any = self._reader.get(address)
        except ValueError:
            return {}
        if not isinstance(record, dict):
            return {}
        country = record.get("country") or record.get("registered_country")
        if not isinstance(country, dict) or not isinstance(country.get("iso_code"), str):
            return {}
        found = {"country_code": country["iso_code"]}
        names = country.get("names")
        if isinstance(names, dict) and isinstance(names.get("en"), str):
            found["geo_country"] = names["en"]
        return found

    def close(self) -> None:
        self._reader.close()
