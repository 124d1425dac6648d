"""The benchmarks' CPU meter counts a server's forked workers with it, and nothing else."""

from __future__ import annotations

import subprocess
import sys
import time

from bench.cputime import CpuMeter, tree_cpu_seconds

# A parent that forks a worker; both spin for the given seconds of CPU, then wait to be killed.
SPIN = """
import os, sys, time
def spin(seconds):
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass
pid = os.fork()
spin(float(sys.argv[1]))
print("spun", flush=True)
time.sleep(60)
"""


def test_the_meter_counts_the_root_and_its_forked_worker() -> None:
    process = subprocess.Popen([sys.executable, "-c", SPIN, "0.4"], stdout=subprocess.PIPE, text=True)
    try:
        with CpuMeter([process.pid]) as meter:
            assert process.stdout is not None
            assert process.stdout.readline() == "spun\n"
            assert process.stdout.readline() == "spun\n"
            time.sleep(0.05)
        # Two processes spun 0.4 s each; the interpreter's start-up adds a little on top.
        assert 0.75 <= meter.seconds <= 1.6
        assert 0.75 <= meter.per_request_ms(1000) <= 1.6
    finally:
        process.kill()
        process.wait()


def test_an_unrelated_process_is_not_counted() -> None:
    idle = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    busy = subprocess.Popen([sys.executable, "-c", SPIN, "0.3"], stdout=subprocess.PIPE, text=True)
    try:
        with CpuMeter([idle.pid]) as meter:
            assert busy.stdout is not None
            assert busy.stdout.readline() == "spun\n"
        assert meter.seconds < 0.1
        assert tree_cpu_seconds(busy.pid) >= 0.55
        assert meter.per_request_ms(0) == 0.0
    finally:
        for process in (idle, busy):
            process.kill()
            process.wait()
