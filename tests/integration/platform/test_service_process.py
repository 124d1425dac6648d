"""shared.service as a real process: --role, --workers over SO_REUSEPORT, clean stop on SIGTERM, logging."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from shared.testing import ROOT, free_port

SERVICE = textwrap.dedent(
    """
    import asyncio
    import os
    from aiohttp import web
    from shared.logging import get_logger
    from shared.service import run
    from shared.web import Route, add_routes, create_base_app, json_response

    log = get_logger("fake")


    def build(settings, role):
        app = create_base_app("fake")

        async def who(request):
            log.info("fake.step", step="before")
            log.info("fake.step", step="after")
            return json_response({"pid": os.getpid(), "role": role})

        async def resources(app):
            if role != "api":  # the background half's start (queues declared, say) may take a while
                await asyncio.sleep(float(os.environ.get("FAKE_START_SECONDS", "0")))
            log.info("fake.started", role=role)
            yield
            log.info("fake.cleanup", role=role)

        app.cleanup_ctx.append(resources)
        add_routes(app, [Route("GET", "/who", who, "who answers", public=True)])
        return app


    run("fake", 0, build)
    """
)


class FakeService:
    def __init__(self, tmp: Path, *args: str, port: int | None = None, env: dict[str, str] | None = None) -> None:
        self.port = port or free_port()
        self.log = tmp / f"fake-{self.port}-{time.monotonic_ns()}.log"
        script = tmp / "fake_service.py"
        script.write_text(SERVICE)
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, str(script), "--port", str(self.port), *args],
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT), "KALENDS_LOG_FORMAT": "json", **(env or {})},
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def lines(self) -> list[dict[str, object]]:
        out = []
        for line in self.log.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                out.append(json.loads(line))
        return out

    async def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise AssertionError(f"exited with {self.process.returncode}: {self.log.read_text()[-2000:]}")
                try:
                    async with session.get(self.url + "/healthz") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
        raise AssertionError("not ready: " + self.log.read_text()[-2000:])

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(15)


@pytest.fixture
def services(tmp_path: Path) -> Iterator[list[FakeService]]:
    started: list[FakeService] = []
    yield started
    for service in started:
        if service.process.poll() is None:
            service.process.kill()
            service.process.wait()


async def who(url: str, request_id: str | None = None) -> dict[str, object]:
    # A new connection each time: SO_REUSEPORT spreads connections, not requests.
    headers = {"X-Request-Id": request_id} if request_id else {}
    async with aiohttp.ClientSession() as session, session.get(url + "/who", headers=headers) as response:
        body: dict[str, object] = await response.json()
        return body


async def roles_by_pid(service: FakeService, count: int) -> dict[object, object]:
    """The role each process answers with, by pid, once `count` processes answered (or 20 s passed)."""
    deadline = time.monotonic() + 20
    roles: dict[object, object] = {}
    while len(roles) < count and time.monotonic() < deadline:
        body = await who(service.url)
        roles[body["pid"]] = body["role"]
    return roles


async def test_sigterm_stops_the_service_cleanly_unwinding_what_it_started(
    tmp_path: Path, services: list[FakeService]
) -> None:
    service = FakeService(tmp_path, "--role", "worker")
    services.append(service)
    await service.wait_ready()
    assert (await who(service.url))["role"] == "worker"

    assert service.stop() == 0

    events = [line["event"] for line in service.lines()]
    assert events.index("fake.started") < events.index("service.listening") < events.index("service.stopping")
    assert events.index("service.stopping") < events.index("fake.cleanup") < events.index("service.stopped")


async def test_several_workers_share_the_port_and_all_stop_together(
    tmp_path: Path, services: list[FakeService]
) -> None:
    service = FakeService(tmp_path, "--workers", "2", "--role", "all")
    services.append(service)
    await service.wait_ready()
    answers = await roles_by_pid(service, 2)
    assert len(answers) == 2, f"one process answered every connection: {answers}"
    # The first process keeps the role's background work; the forked ones serve the API only.
    assert answers[service.process.pid] == "all"
    assert sorted(map(str, answers.values())) == ["all", "api"]

    assert service.stop() == 0
    for pid in answers:
        with pytest.raises(ProcessLookupError):
            os.kill(int(str(pid)), 0)


async def test_forked_workers_open_the_port_only_once_the_background_process_has_started(
    tmp_path: Path, services: list[FakeService]
) -> None:
    # Before, a forked API worker answered /readyz while the first process still declared its queues:
    # a caller's change published then found no queue bound (a feed missed its calendar in CI).
    service = FakeService(tmp_path, "--workers", "3", "--role", "all", env={"FAKE_START_SECONDS": "1.5"})
    services.append(service)
    await service.wait_ready()
    roles = await roles_by_pid(service, 3)
    assert sorted(map(str, roles.values())) == ["all", "api", "api"], roles
    events = [(line["event"], line.get("role"), line.get("pid")) for line in service.lines()]
    primary = events.index(("service.listening", "all", service.process.pid))
    workers = [i for i, (event, role, _) in enumerate(events) if event == "fake.started" and role == "api"]
    assert len(workers) == 2 and min(workers) > primary, events

    assert service.stop() == 0


async def test_forked_workers_stop_when_their_parent_is_killed(tmp_path: Path, services: list[FakeService]) -> None:
    service = FakeService(tmp_path, "--workers", "2", "--role", "all")
    services.append(service)
    await service.wait_ready()
    pids = {int(str(pid)) for pid in await roles_by_pid(service, 2)}
    (worker,) = pids - {service.process.pid}
    service.process.kill()
    service.process.wait(10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(worker, 0)
        except ProcessLookupError:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError(f"worker {worker} outlived its SIGKILLed parent")


async def test_a_single_process_refuses_a_port_already_taken_instead_of_sharing_it(
    tmp_path: Path, services: list[FakeService]
) -> None:
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        service = FakeService(tmp_path, port=taken.getsockname()[1])
        services.append(service)
        assert service.process.wait(20) == 1
    failure = next(line for line in service.lines() if line["event"] == "service.failed")
    assert "address already in use" in str(failure["error"]).lower()


async def test_every_log_line_of_a_request_carries_its_request_id(tmp_path: Path, services: list[FakeService]) -> None:
    service = FakeService(tmp_path)
    services.append(service)
    await service.wait_ready()
    await asyncio.gather(*(who(service.url, request_id=f"req-{n}") for n in range(5)))
    service.stop()
    for n in range(5):
        mine = [line for line in service.lines() if line.get("request_id") == f"req-{n}"]
        assert [line["event"] for line in mine] == ["fake.step", "fake.step", "request"], mine
        assert all(line["service"] == "fake" for line in mine)
    steps = [line for line in service.lines() if line["event"] == "fake.step"]
    assert len(steps) == 10 and all(str(line.get("request_id", "")).startswith("req-") for line in steps)


async def test_bad_settings_stop_the_service_before_it_starts_with_a_clear_message(tmp_path: Path) -> None:
    script = tmp_path / "fake_service.py"
    script.write_text(SERVICE)
    done = subprocess.run(
        [sys.executable, str(script), "--port", "0"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "KALENDS_DATABASE_URL": "mysql://db/x"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert "KALENDS_DATABASE_URL must be a postgres/postgresql URL" in done.stderr


async def test_the_container_healthcheck_passes_while_the_service_runs_and_fails_after(
    tmp_path: Path, services: list[FakeService]
) -> None:
    service = FakeService(tmp_path)
    services.append(service)
    await service.wait_ready()
    env = {**os.environ, "KALENDS_HEALTHCHECK_URL": f"{service.url}/healthz"}

    def healthcheck() -> int:
        command = [sys.executable, "-m", "shared.healthcheck"]
        return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, timeout=30).returncode

    assert await asyncio.to_thread(healthcheck) == 0
    service.stop()
    assert await asyncio.to_thread(healthcheck) == 1
