"""`make run` (scripts/run.py) against real PostgreSQL: database, migrations, children, and stopping them."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from shared.crypto import SecretBox
from shared.testing import ROOT, drop_database, free_port, random_name, with_database

SERVICE_MAIN = textwrap.dedent(
    """
    import os
    import sys
    from pathlib import Path

    from shared import lifecycle
    from shared.service import run
    from shared.web import create_base_app


    def build(settings, role):
        app = create_base_app("{name}")
        app.cleanup_ctx.append(lifecycle.database(settings, "{name}", Path(__file__).with_name("migrations")))
        if os.environ.get("FAKE_{upper}_DIE_AFTER"):
            async def die(app):
                import asyncio
                async def later():
                    await asyncio.sleep(float(os.environ["FAKE_{upper}_DIE_AFTER"]))
                    os._exit(3)
                asyncio.get_running_loop().create_task(later())
            app.on_startup.append(die)
        return app


    run("{name}", 0, build)
    """
)


def make_services(root: Path, names: list[str]) -> Path:
    package = root / "fakesvcs"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name in names:
        service = package / name
        (service / "migrations").mkdir(parents=True)
        (service / "__init__.py").write_text("")
        (service / "__main__.py").write_text(SERVICE_MAIN.format(name=name, upper=name.upper()))
        (service / "migrations" / "001_things.sql").write_text("CREATE TABLE things (id int PRIMARY KEY);\n")
    # A directory without __main__.py is not a service and must not be started.
    (package / "notaservice").mkdir()
    return package


class RunScript:
    def __init__(self, services: Path, env: dict[str, str], *args: str) -> None:
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "scripts.run", "--services-dir", str(services), "--ready-timeout", "30", *args],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def wait_for_line(self, needle: str, timeout: float = 40.0) -> str:
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            self.lines.append(line.rstrip("\n"))
            if needle in line:
                return line
        raise AssertionError(f"no line with {needle!r}; output:\n" + "\n".join(self.lines[-60:]))

    def finish(self, timeout: float = 30.0) -> int:
        out, _ = self.process.communicate(timeout=timeout)
        self.lines += out.splitlines()
        return self.process.returncode


@pytest.fixture
def fresh_db(server_db_url: str) -> Iterator[str]:
    name = random_name("kalends_run")
    yield with_database(server_db_url, name)
    asyncio.run(drop_database(server_db_url, name))


def run_env(database_url: str, ports: dict[str, int], amqp_url: str) -> dict[str, str]:
    return {
        "KALENDS_DATABASE_URL": database_url,
        "KALENDS_AMQP_URL": amqp_url,
        "KALENDS_LOG_FORMAT": "json",
        # Given, so the script does not write a development key into the checkout's .env.local.
        "KALENDS_ENCRYPTION_KEYS": SecretBox.generate_key(),
        **{f"KALENDS_{name.upper()}_PORT": str(port) for name, port in ports.items()},
    }


def test_run_creates_the_database_migrates_starts_every_service_and_stops_them_all_on_sigterm(
    tmp_path: Path, fresh_db: str, amqp_url: str
) -> None:
    services = make_services(tmp_path, ["alpha", "beta"])
    ports = {"alpha": free_port(), "beta": free_port()}
    script = RunScript(services, run_env(fresh_db, ports, amqp_url))
    try:
        assert "created database" in script.wait_for_line("created database")
        script.wait_for_line("all services are up")
        url_lines = [script.wait_for_line(f"http://127.0.0.1:{ports[name]}") for name in ("alpha", "beta")]
        assert "alpha" in url_lines[0] and "beta" in url_lines[1]

        async def migrated_tables() -> set[str]:
            conn = await asyncpg.connect(fresh_db)
            try:
                rows = await conn.fetch(
                    "SELECT table_schema || '.' || table_name AS t FROM information_schema.tables"
                    " WHERE table_name IN ('things', 'outbox')"
                )
                return {r["t"] for r in rows}
            finally:
                await conn.close()

        assert asyncio.run(migrated_tables()) == {"alpha.things", "alpha.outbox", "beta.things", "beta.outbox"}
        children = [int(line.split("pid ")[1].split(")")[0]) for line in script.lines if "started " in line]
        assert len(children) == 2
        assert not any("notaservice" in line for line in script.lines)
        script.process.send_signal(signal.SIGTERM)
        assert script.finish() == 0
        for pid in children:
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
        assert any("[alpha]" in line and "service.stopped" in line for line in script.lines), script.lines[-20:]
    finally:
        if script.process.poll() is None:
            script.process.kill()


def test_run_stops_the_other_services_and_fails_when_one_dies(tmp_path: Path, fresh_db: str, amqp_url: str) -> None:
    services = make_services(tmp_path, ["alpha", "beta"])
    ports = {"alpha": free_port(), "beta": free_port()}
    env = {**run_env(fresh_db, ports, amqp_url), "FAKE_BETA_DIE_AFTER": "1.5"}
    script = RunScript(services, env)
    try:
        script.wait_for_line("beta exited unexpectedly with status 3")
        assert script.finish() == 1
        alpha_pid = next(int(line.split("pid ")[1].split(")")[0]) for line in script.lines if "started alpha" in line)
        with pytest.raises(ProcessLookupError):
            os.kill(alpha_pid, 0)
    finally:
        if script.process.poll() is None:
            script.process.kill()


def test_run_says_so_when_there_is_no_service(tmp_path: Path, fresh_db: str, amqp_url: str) -> None:
    (tmp_path / "emptysvcs").mkdir()
    script = RunScript(tmp_path / "emptysvcs", run_env(fresh_db, {}, amqp_url))
    assert script.finish() == 1
    assert any("no services to run" in line for line in script.lines)


def test_run_refuses_to_start_when_a_services_port_is_taken(tmp_path: Path, fresh_db: str, amqp_url: str) -> None:
    services = make_services(tmp_path, ["alpha"])
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        script = RunScript(services, run_env(fresh_db, {"alpha": port}, amqp_url))
        assert script.finish() == 1
    assert any(f"port {port} of alpha is already in use" in line for line in script.lines), script.lines
    assert not any("started alpha" in line for line in script.lines)
