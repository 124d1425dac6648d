"""`make demo` (scripts/demo.py): with no stack running it starts one, walks the contract's routes, and stops it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from shared.crypto import SecretBox
from shared.testing import ROOT, drop_database, free_port, random_name, remember_prefix, with_database


@pytest.fixture
def demo_env(server_db_url: str, amqp_url: str) -> Iterator[dict[str, str]]:
    database = random_name("kalends_demo")
    prefix = random_name("demo") + "."
    remember_prefix(amqp_url, prefix)
    ports = {name: free_port() for name in ("auth", "ingest", "feed", "webhook", "sync")}
    yield {
        "KALENDS_DATABASE_URL": with_database(server_db_url, database),
        "KALENDS_AMQP_URL": amqp_url,
        "KALENDS_AMQP_PREFIX": prefix,
        "KALENDS_AUTH_URL": f"http://127.0.0.1:{ports['auth']}",
        "KALENDS_PUBLIC_FEED_URL": f"http://127.0.0.1:{ports['feed']}",
        "KALENDS_PUBLIC_SYNC_URL": f"http://127.0.0.1:{ports['sync']}",
        "KALENDS_WEBHOOK_ALLOW_PRIVATE": "1",
        "KALENDS_ENCRYPTION_KEYS": SecretBox.generate_key(),  # else make run writes .env.local here
        **{f"KALENDS_{name.upper()}_PORT": str(port) for name, port in ports.items()},
    }
    asyncio.run(drop_database(server_db_url, database))


def test_the_demo_starts_a_stack_and_shows_a_subscribers_feed_of_tagged_events(demo_env: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "scripts.demo"],
        cwd=ROOT,
        env={**os.environ, **demo_env},
        capture_output=True,
        text=True,
        timeout=240,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    feed_port = demo_env["KALENDS_FEED_PORT"]
    assert f"webcal://127.0.0.1:{feed_port}/v1/webcal/" in output
    assert "BEGIN:VCALENDAR" in output and "BEGIN:VEVENT" in output
    # The subscription chose the home games: two of the three events.
    assert "2 events in this subscriber's feed: Demo FC vs Rivals United; Demo FC vs Hill Rovers" in output
    assert "clientSecret" in output and "(hidden)" in output
    assert "stack stopped" in output
