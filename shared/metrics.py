"""One `/metrics` view per pod: every process of a `--workers N` service counted in each scrape.

With `--workers N` the kernel spreads connections, scrapes included, over N processes sharing the
port (SO_REUSEPORT). Each process keeps its own metrics, so a scrape would see one process's
counts, a different one each time. prometheus_client's multiprocess mode fixes that: before any
metric exists (`shared.service.run`, before it forks), `enable_multiprocess` points every metric
value at a memory-mapped file per process in a fresh directory, and `exposition` answers a scrape,
in whichever process it lands, by merging every process's file (counters and histograms summed;
gauges by their `multiprocess_mode`). A lone process (`--workers 1`) keeps the in-memory registry.

Counters and histograms are whole-pod figures then; a gauge names how processes combine
(`outbox_backlog` is `livemax`: the relay in one process measures the same table the others see).
Collectors that are not prometheus_client metrics (a hand-written `Collector`) are not in the
files: code that has one checks `multiprocess()` and uses a real metric instead.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest, values
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess() -> bool:
    """True when metric values live in per-process files (this process's metrics are merged on scrape)."""
    return bool(getattr(values.ValueClass, "_multiprocess", False))


def enable_multiprocess(service: str) -> Path:
    """Switch to multiprocess collection in a fresh directory; call before the first metric is made.

    The directory is made under `PROMETHEUS_MULTIPROC_DIR` when the operator set one (a volume of
    the pod), else under the temporary directory, and is new per start: files of an earlier run,
    whose counts belong to processes gone, are never merged in. `remove_multiprocess_dir` deletes it.
    """
    base = os.environ.get(MULTIPROC_ENV) or tempfile.gettempdir()
    Path(base).mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=f"kalends-{service}-metrics-", dir=base))
    os.environ[MULTIPROC_ENV] = str(path)
    # The library picks its value class at import from the environment; this process imported it
    # already, so it is set here. Forked children inherit it and write files of their own pid.
    values.ValueClass = values.MultiProcessValue()
    return path


def remove_multiprocess_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def exposition(registry: CollectorRegistry) -> bytes:
    """The Prometheus text of this process's `registry`, or of every process of the pod when multiprocess."""
    if not multiprocess():
        return generate_latest(registry)
    merged = CollectorRegistry()
    MultiProcessCollector(merged)
    return generate_latest(merged)
