"""Processes sharing one stderr (the forked workers of `--workers N`) never glue their JSON lines together."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from shared.testing import ROOT

# Four forked processes log as fast as they can into the stderr they inherited, as `--workers 4` does.
WRITERS = textwrap.dedent(
    """
    import os
    from shared.logging import configure_logging, get_logger

    configure_logging("json", "info", "lines")
    log = get_logger("lines")
    children = []
    for _ in range(3):
        pid = os.fork()
        if pid == 0:
            children = []
            break
        children.append(pid)
    for n in range(3000):
        log.info("line.written", n=n, pid=os.getpid(), padding="x" * 150)
    for pid in children:
        os.waitpid(pid, 0)
    """
)


def test_lines_logged_at_once_by_forked_processes_stay_one_json_object_each(tmp_path: Path) -> None:
    out = tmp_path / "stderr.log"
    with out.open("wb") as stderr:
        subprocess.run([sys.executable, "-c", WRITERS], cwd=ROOT, stderr=stderr, check=True, timeout=60)
    lines = out.read_text().splitlines()
    assert len(lines) == 4 * 3000
    written: dict[int, int] = {}
    for line in lines:
        record = json.loads(line)  # two lines glued together are not one JSON object
        written[record["pid"]] = written.get(record["pid"], 0) + 1
    assert sorted(written.values()) == [3000] * 4
