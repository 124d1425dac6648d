"""A tiny MaxMind country database for tests (KALENDS_GEOIP_DB), written with mmdb-writer."""

from __future__ import annotations

from pathlib import Path

from mmdb_writer import MMDBWriter
from netaddr import IPSet

# The seed's example addresses and the countries this database gives them.
COUNTRIES = {
    "64.64.64.0/24": ("US", "United States"),
    "150.101.114.0/24": ("AU", "Australia"),
}


def write_country_db(path: Path) -> Path:
    writer = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoLite2-Country", languages=["en"])
    for network, (code, name) in COUNTRIES.items():
        writer.insert_network(IPSet([network]), {"country": {"iso_code": code, "names": {"en": name}}})
    writer.to_db_file(str(path))
    return path
