"""`make run` and KALENDS_ENCRYPTION_KEYS: a development key generated into .env.local, loaded later."""

from __future__ import annotations

import asyncio
import signal
import stat
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from dotenv import dotenv_values

from shared.crypto import SecretBox
from shared.testing import drop_database, free_port, random_name, with_database
from tests.integration.platform.test_run_script import RunScript, run_env


@pytest.fixture
def fresh_db(server_db_url: str) -> Iterator[str]:
    name = random_name("kalends_run")
    yield with_database(server_db_url, name)
    asyncio.run(drop_database(server_db_url, name))


# A service that, like ingest, cannot start without the key: it refuses with shared.service's message.
NEEDS_KEY_MAIN = textwrap.dedent(
    """
    from shared.crypto import SecretBox
    from shared.service import run
    from shared.web import create_base_app


    def build(settings, role):
        SecretBox.from_env()
        return create_base_app("keyed")


    run("keyed", 0, build)
    """
)


def keyed_services(root: Path) -> Path:
    package = root / "keysvcs"
    (package / "keyed").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "keyed" / "__init__.py").write_text("")
    (package / "keyed" / "__main__.py").write_text(NEEDS_KEY_MAIN)
    return package


def without_key(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k != "KALENDS_ENCRYPTION_KEYS"}


def run_until_up(services: Path, env: dict[str, str], env_file: Path) -> list[str]:
    script = RunScript(services, env, "--env-file", str(env_file))
    try:
        script.wait_for_line("all services are up")
        script.process.send_signal(signal.SIGTERM)
        assert script.finish() == 0, script.lines[-20:]
    finally:
        if script.process.poll() is None:
            script.process.kill()
    return script.lines


def test_run_generates_a_development_key_once_and_loads_it_on_later_runs(
    tmp_path: Path, fresh_db: str, amqp_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KALENDS_ENCRYPTION_KEYS", raising=False)  # RunScript passes this process's environment on
    services = keyed_services(tmp_path)
    env_file = tmp_path / ".env.local"
    env = without_key(run_env(fresh_db, {"keyed": free_port()}, amqp_url))
    first = run_until_up(services, env, env_file)
    assert any("generated a development key" in line for line in first), first
    key = dotenv_values(env_file)["KALENDS_ENCRYPTION_KEYS"]
    assert key and SecretBox([key])  # a valid Fernet key, which the keyed service started with
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600

    second = run_until_up(services, env, env_file)
    assert not any("generated" in line for line in second), second
    assert any("loaded KALENDS_ENCRYPTION_KEYS" in line for line in second), second
    assert dotenv_values(env_file)["KALENDS_ENCRYPTION_KEYS"] == key


def test_a_key_in_the_environment_wins_and_no_file_is_written(tmp_path: Path, fresh_db: str, amqp_url: str) -> None:
    env_file = tmp_path / ".env.local"
    lines = run_until_up(keyed_services(tmp_path), run_env(fresh_db, {"keyed": free_port()}, amqp_url), env_file)
    assert not env_file.exists()
    assert not any("generated" in line or "loaded" in line for line in lines)
