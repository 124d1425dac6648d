"""The benchmarks' CPU meter counts a server's forked workers with it, and nothing else."""

from __future__ import annotations

import subprocess
import sys
import time

from bench.cputime import CpuMeter, tree_cpu_seconds

# A parent that forks a worker; both spin for the given seconds of CPU, then wait to be killed.
SPIN = """
import os, sys, time
print("ready", flush=True)
sys.stdin.readline()
def spin(seconds):
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass
pid = os.fork()
spin(float(sys.argv[1]))
os.write(1, b"spun\\n")  # one write each: the parent and its child share the pipe
time.sleep(60)
"""


def test_the_meter_counts_the_root_and_its_forked_worker() -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", SPIN, "0.4"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        assert process.stdout.readline() == "ready\n"  # the interpreter's start-up is behind us
        with CpuMeter([process.pid]) as meter:
            process.stdin.write("go\n")
            process.stdin.flush()
            assert process.stdout.readline() == "spun\n"
            assert process.stdout.readline() == "spun\n"
            time.sleep(0.05)
        # Two processes spun 0.4 s each (the fork and the wait add a little).
        assert 0.75 <= meter.seconds <= 1.2
        assert 0.75 <= meter.per_request_ms(1000) <= 1.2
    finally:
        process.kill()
        process.wait()


def test_an_unrelated_process_is_not_counted() -> None:
    idle = subprocess.Popen(
        [sys.executable, "-c", "print('ready', flush=True); import time; time.sleep(60)"],
        stdout=subprocess.PIPE,
        text=True,
    )
    busy = subprocess.Popen(
        [sys.executable, "-c", SPIN, "0.3"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert idle.stdout is not None and busy.stdin is not None and busy.stdout is not None
    try:
        assert idle.stdout.readline() == "ready\n" and busy.stdout.readline() == "ready\n"
        with CpuMeter([idle.pid]) as meter:
            busy.stdin.write("go\n")
            busy.stdin.flush()
            assert busy.stdout.readline() == "spun\n"
            assert busy.stdout.readline() == "spun\n"  # the parent and its forked child each spun
        assert meter.seconds < 0.1
        assert tree_cpu_seconds(busy.pid) >= 0.55
        assert meter.per_request_ms(0) == 0.0
    finally:
        for process in (idle, busy):
            process.kill()
            process.wait()
