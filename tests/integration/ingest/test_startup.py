"""`python -m services.ingest` refuses to start, saying why, when KALENDS_ENCRYPTION_KEYS is missing."""

from __future__ import annotations

import os
import subprocess
import sys

from shared.testing import ROOT, free_port


def test_ingest_without_an_encryption_key_exits_with_a_message_naming_the_setting() -> None:
    env = {k: v for k, v in os.environ.items() if k != "KALENDS_ENCRYPTION_KEYS"}
    env["KALENDS_INGEST_PORT"] = str(free_port())
    done = subprocess.run(
        [sys.executable, "-m", "services.ingest"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert "KALENDS_ENCRYPTION_KEYS is not set" in done.stderr
    assert "make run" in done.stderr  # and how to get one
    assert "Traceback" not in done.stderr
