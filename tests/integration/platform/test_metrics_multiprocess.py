"""`/metrics` of a `--workers 2` service is the whole pod's: both processes' counts in every scrape."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.integration.platform.test_service_process import FakeService, who

WHO_COUNT = re.compile(r'^http_requests_total\{method="GET",route="/who",status="200"\} (\S+)$', re.MULTILINE)


@pytest.fixture
def started(tmp_path: Path) -> Iterator[list[FakeService]]:
    services: list[FakeService] = []
    yield services
    for service in services:
        if service.process.poll() is None:
            service.process.kill()
            service.process.wait()


async def test_every_scrape_of_a_two_worker_service_counts_the_requests_both_processes_served(
    tmp_path: Path, started: list[FakeService], monkeypatch: pytest.MonkeyPatch
) -> None:
    metrics_root = tmp_path / "metrics"
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(metrics_root))  # FakeService passes os.environ on
    service = FakeService(tmp_path, "--workers", "2", "--role", "all")
    started.append(service)
    await service.wait_ready()

    served: dict[int, int] = {}
    deadline = time.monotonic() + 20
    while (len(served) < 2 or sum(served.values()) < 40) and time.monotonic() < deadline:
        pid = int(str((await who(service.url))["pid"]))
        served[pid] = served.get(pid, 0) + 1
    assert len(served) == 2, f"one process answered every connection: {served}"
    total = sum(served.values())

    # Each scrape lands on either process (a new connection each): every one shows the pod's total.
    for _ in range(12):
        async with aiohttp.ClientSession() as session, session.get(service.url + "/metrics") as response:
            assert response.status == 200
            text = await response.text()
        counts = [float(v) for v in WHO_COUNT.findall(text)]
        assert counts == [total], f"served {served}, scraped {counts}"
    # Both processes write their own file in one fresh directory under the operator's.
    (metrics_dir,) = metrics_root.iterdir()
    assert sorted(p.name for p in metrics_dir.glob("counter_*.db")) == sorted(f"counter_{pid}.db" for pid in served)

    assert service.stop() == 0
    assert not metrics_dir.exists(), "the service removes its metrics directory when it stops"


async def test_a_single_process_keeps_its_metrics_in_memory(tmp_path: Path, started: list[FakeService]) -> None:
    env_had = os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    try:
        service = FakeService(tmp_path)
    finally:
        if env_had is not None:
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = env_had
    started.append(service)
    await service.wait_ready()
    for _ in range(3):
        await who(service.url)
    async with aiohttp.ClientSession() as session, session.get(service.url + "/metrics") as response:
        text = await response.text()
    assert [float(v) for v in WHO_COUNT.findall(text)] == [3.0]
    # In memory, prometheus_client also exports each counter's creation time (files do not).
    assert "http_requests_created{" in text
